// Channel schema statements: create-or-replace within the per-tenant limit, read, list by channel,
// delete. The schema itself is checked by the service (json-schema.ts) before it gets here.
import { TributaryError } from '../../errors.ts'
import type { ChannelSchema, ListOptions, Page } from '../model.ts'
import type { Precondition } from '../store.ts'
import type { SqlDatabase } from './client.ts'
import { decodeCursor, pageLimit, toPage } from './page.ts'
import { checkPutVersion, lockTenant, putVersion } from './put.ts'
import type { ChannelSchemaRow } from './rows.ts'
import { toChannelSchema } from './rows.ts'
import { expectedVersion, inserted, noRowWritten, now, read, tenantName, write } from './write.ts'

/** Most channel schemas one tenant may have. */
export const MAX_CHANNEL_SCHEMAS = 1000

const schemaName = (tenant: string, channel: string): string =>
  `schema of channel ${JSON.stringify(channel)} of ${tenantName(tenant)}`

const currentVersion = (tenant: string, channel: string) => ({
  sql: 'SELECT version FROM channel_schemas WHERE tenant = $1 AND channel = $2',
  params: [tenant, channel],
})

export function channelSchemaStatements(db: SqlDatabase) {
  return {
    putChannelSchema: async (
      tenant: string,
      channel: string,
      schema: Readonly<Record<string, unknown>>,
      pre?: Precondition,
    ): Promise<ChannelSchema> => {
      const ifVersion = putVersion(pre)
      return write(db, {}, async (tx) => {
        await lockTenant(tx, tenant)
        // FOR UPDATE: a delete of this schema (which does not lock the tenant) cannot slip in between.
        const current = await tx.query<{ version: number }>(
          'SELECT version FROM channel_schemas WHERE tenant = $1 AND channel = $2 FOR UPDATE',
          [tenant, channel],
        )
        const version = current.rows[0]?.version ?? 0
        checkPutVersion(version, ifVersion, schemaName(tenant, channel))
        const at = now()
        if (version > 0) {
          const { rows } = await tx.query<ChannelSchemaRow>(
            `UPDATE channel_schemas SET schema = $3::jsonb, version = version + 1, updated_at = $4
             WHERE tenant = $1 AND channel = $2 RETURNING *`,
            [tenant, channel, JSON.stringify(schema), at],
          )
          const updated = toChannelSchema(inserted(rows))
          return {
            result: updated,
            change: { op: 'updated', resource: 'schema', tenant, id: channel, version: updated.version },
          }
        }
        const counted = await tx.query<{ n: number }>(
          'SELECT count(*)::integer AS n FROM channel_schemas WHERE tenant = $1',
          [tenant],
        )
        const count = counted.rows[0]?.n ?? 0
        if (count >= MAX_CHANNEL_SCHEMAS) {
          throw new TributaryError(
            'REGISTRY_QUOTA_EXCEEDED',
            `${tenantName(tenant)} has ${count} channel schemas, the most a tenant may have`,
            { details: { maxChannelSchemas: MAX_CHANNEL_SCHEMAS } },
          )
        }
        const { rows } = await tx.query<ChannelSchemaRow>(
          `INSERT INTO channel_schemas (tenant, channel, schema, version, created_at, updated_at)
           VALUES ($1, $2, $3::jsonb, 1, $4, $4) RETURNING *`,
          [tenant, channel, JSON.stringify(schema), at],
        )
        return {
          result: toChannelSchema(inserted(rows)),
          change: { op: 'created', resource: 'schema', tenant, id: channel, version: 1 },
        }
      })
    },

    getChannelSchema: (tenant: string, channel: string): Promise<ChannelSchema | undefined> =>
      read(async () => {
        const { rows } = await db.query<ChannelSchemaRow>(
          'SELECT * FROM channel_schemas WHERE tenant = $1 AND channel = $2',
          [tenant, channel],
        )
        return rows[0] === undefined ? undefined : toChannelSchema(rows[0])
      }),

    listChannelSchemas: async (tenant: string, options?: ListOptions): Promise<Page<ChannelSchema>> => {
      const limit = pageLimit(options)
      const after = decodeCursor(options?.after)
      return read(async () => {
        const { rows } = await db.query<ChannelSchemaRow>(
          `SELECT * FROM channel_schemas WHERE tenant = $1 AND ($2::text IS NULL OR channel > $2)
           ORDER BY channel LIMIT $3`,
          [tenant, after, limit + 1],
        )
        return toPage(rows, limit, toChannelSchema, (s) => s.channel)
      })
    },

    deleteChannelSchema: async (tenant: string, channel: string, pre?: Precondition): Promise<void> => {
      const ifVersion = expectedVersion(pre?.ifVersion)
      return write(db, {}, async (tx) => {
        const { rows } = await tx.query<{ version: number }>(
          `DELETE FROM channel_schemas WHERE tenant = $1 AND channel = $2 AND ($3::integer IS NULL OR version = $3)
           RETURNING version`,
          [tenant, channel, ifVersion],
        )
        const row =
          rows[0] ??
          (await noRowWritten(
            tx,
            currentVersion(tenant, channel),
            schemaName(tenant, channel),
            pre?.ifVersion,
          ))
        return {
          result: undefined,
          change: { op: 'deleted', resource: 'schema', tenant, id: channel, version: row.version },
        }
      })
    },
  }
}
