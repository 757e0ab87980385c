// Tenant statements: create, read, list, update and delete (which cascades to everything it owns
// and leaves a tombstone, so the tenant's topics are removed after a grace period).
import type { ListOptions, Page, Tenant, TenantSpec } from '../model.ts'
import type { Precondition } from '../store.ts'
import type { SqlDatabase } from './client.ts'
import { decodeCursor, pageLimit, toPage } from './page.ts'
import type { TenantRow } from './rows.ts'
import { toTenant } from './rows.ts'
import { expectedVersion, inserted, noRowWritten, now, read, tenantName, write } from './write.ts'

const specParams = (spec: TenantSpec): unknown[] => [
  spec.enabled,
  spec.oidc === null ? null : JSON.stringify(spec.oidc),
  JSON.stringify(spec.quotas),
  JSON.stringify(spec.authMethods),
  JSON.stringify(spec.trustAnchors),
  JSON.stringify(spec.settings),
]

const currentVersion = (id: string) => ({ sql: 'SELECT version FROM tenants WHERE id = $1', params: [id] })

export function tenantStatements(db: SqlDatabase) {
  return {
    createTenant: (id: string, spec: TenantSpec): Promise<Tenant> =>
      write(db, { tenants_pkey: `${tenantName(id)} exists already` }, async (tx) => {
        const at = now()
        const { rows } = await tx.query<TenantRow>(
          `INSERT INTO tenants (id, enabled, oidc, quotas, auth_methods, trust_anchors, settings, version, created_at, updated_at)
           VALUES ($1, $2, $3::jsonb, $4::jsonb, $5::jsonb, $6::jsonb, $7::jsonb, 1, $8, $8) RETURNING *`,
          [id, ...specParams(spec), at],
        )
        // A tenant created again under a deleted one's id takes over its topics: they must stay.
        await tx.query('DELETE FROM tenant_tombstones WHERE tenant = $1', [id])
        const tenant = toTenant(inserted(rows))
        return { result: tenant, change: { op: 'created', resource: 'tenant', tenant: id, version: 1 } }
      }),

    getTenant: (id: string): Promise<Tenant | undefined> =>
      read(async () => {
        const { rows } = await db.query<TenantRow>('SELECT * FROM tenants WHERE id = $1', [id])
        return rows[0] === undefined ? undefined : toTenant(rows[0])
      }),

    listTenants: async (options?: ListOptions): Promise<Page<Tenant>> => {
      const limit = pageLimit(options)
      const after = decodeCursor(options?.after)
      return read(async () => {
        const { rows } = await db.query<TenantRow>(
          'SELECT * FROM tenants WHERE ($1::text IS NULL OR id > $1) ORDER BY id LIMIT $2',
          [after, limit + 1],
        )
        return toPage(rows, limit, toTenant, (t) => t.id)
      })
    },

    updateTenant: async (id: string, spec: TenantSpec, pre?: Precondition): Promise<Tenant> => {
      const ifVersion = expectedVersion(pre?.ifVersion)
      return write(db, {}, async (tx) => {
        const { rows } = await tx.query<TenantRow>(
          `UPDATE tenants SET enabled = $2, oidc = $3::jsonb, quotas = $4::jsonb, auth_methods = $5::jsonb,
             trust_anchors = $6::jsonb, settings = $7::jsonb, version = version + 1, updated_at = $8
           WHERE id = $1 AND ($9::integer IS NULL OR version = $9) RETURNING *`,
          [id, ...specParams(spec), now(), ifVersion],
        )
        const row = rows[0] ?? (await noRowWritten(tx, currentVersion(id), tenantName(id), pre?.ifVersion))
        const tenant = toTenant(row)
        return {
          result: tenant,
          change: { op: 'updated', resource: 'tenant', tenant: id, version: tenant.version },
        }
      })
    },

    deleteTenant: async (id: string, pre?: Precondition): Promise<void> => {
      const ifVersion = expectedVersion(pre?.ifVersion)
      return write(db, {}, async (tx) => {
        // Devices, credentials and API tokens go with it (ON DELETE CASCADE); one change covers them.
        const { rows } = await tx.query<{ version: number }>(
          'DELETE FROM tenants WHERE id = $1 AND ($2::integer IS NULL OR version = $2) RETURNING version',
          [id, ifVersion],
        )
        const row = rows[0] ?? (await noRowWritten(tx, currentVersion(id), tenantName(id), pre?.ifVersion))
        await tx.query(
          `INSERT INTO tenant_tombstones (tenant, deleted_at) VALUES ($1, $2)
           ON CONFLICT (tenant) DO UPDATE SET deleted_at = EXCLUDED.deleted_at`,
          [id, now()],
        )
        return {
          result: undefined,
          change: { op: 'deleted', resource: 'tenant', tenant: id, version: row.version },
        }
      })
    },
  }
}
