// API token statements: create, read, look up by id (the token's public part), list and delete.
import { uuidv7 } from '../../events/ids.ts'
import type { ApiToken, ListOptions, Page } from '../model.ts'
import type { NewApiToken, Precondition } from '../store.ts'
import type { SqlDatabase } from './client.ts'
import { decodeCursor, pageLimit, toPage } from './page.ts'
import type { ApiTokenRow } from './rows.ts'
import { toApiToken } from './rows.ts'
import { expectedVersion, inserted, noRowWritten, now, read, tenantName, write } from './write.ts'

const one = async (pending: Promise<{ rows: ApiTokenRow[] }>): Promise<ApiToken | undefined> => {
  const { rows } = await pending
  return rows[0] === undefined ? undefined : toApiToken(rows[0])
}

export function apiTokenStatements(db: SqlDatabase) {
  return {
    createApiToken: (token: NewApiToken): Promise<ApiToken> =>
      write(
        db,
        {
          api_tokens_tenant_fkey: `${tenantName(token.tenant)} does not exist`,
          api_tokens_pkey: 'an API token with this id exists already',
        },
        async (tx) => {
          const id = uuidv7()
          const { rows } = await tx.query<ApiTokenRow>(
            `INSERT INTO api_tokens (id, tenant, name, role, token_hash, expires_at, version, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, $7) RETURNING *`,
            [id, token.tenant, token.name, token.role, token.tokenHash, token.expiresAt, now()],
          )
          return {
            result: toApiToken(inserted(rows)),
            change: { op: 'created', resource: 'api-token', tenant: token.tenant, id, version: 1 },
          }
        },
      ),

    getApiToken: (tenant: string, id: string): Promise<ApiToken | undefined> =>
      read(() => one(db.query('SELECT * FROM api_tokens WHERE tenant = $1 AND id = $2', [tenant, id]))),

    // Expired tokens are returned too; the caller checks expiresAt.
    findApiToken: (id: string): Promise<ApiToken | undefined> =>
      read(() => one(db.query('SELECT * FROM api_tokens WHERE id = $1', [id]))),

    listApiTokens: async (tenant: string, options?: ListOptions): Promise<Page<ApiToken>> => {
      const limit = pageLimit(options)
      const after = decodeCursor(options?.after)
      return read(async () => {
        const { rows } = await db.query<ApiTokenRow>(
          'SELECT * FROM api_tokens WHERE tenant = $1 AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3',
          [tenant, after, limit + 1],
        )
        return toPage(rows, limit, toApiToken, (t) => t.id)
      })
    },

    deleteApiToken: async (tenant: string, id: string, pre?: Precondition): Promise<void> => {
      const ifVersion = expectedVersion(pre?.ifVersion)
      return write(db, {}, async (tx) => {
        const { rows } = await tx.query<{ version: number }>(
          'DELETE FROM api_tokens WHERE tenant = $1 AND id = $2 AND ($3::integer IS NULL OR version = $3) RETURNING version',
          [tenant, id, ifVersion],
        )
        const row =
          rows[0] ??
          (await noRowWritten(
            tx,
            { sql: 'SELECT version FROM api_tokens WHERE tenant = $1 AND id = $2', params: [tenant, id] },
            `API token ${JSON.stringify(id)} of ${tenantName(tenant)}`,
            pre?.ifVersion,
          ))
        return {
          result: undefined,
          change: { op: 'deleted', resource: 'api-token', tenant, id, version: row.version },
        }
      })
    },
  }
}
