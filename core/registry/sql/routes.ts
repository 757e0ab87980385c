// Route table statements: one table of rules per tenant, read (version 0 and no rules until it is
// first written) and replaced whole. The rules are checked by the service (validate-routes.ts).
import { TributaryError } from '../../errors.ts'
import type { RouteRule, RouteTable } from '../model.ts'
import type { Precondition } from '../store.ts'
import type { SqlDatabase } from './client.ts'
import { checkPutVersion, lockTenant, putVersion } from './put.ts'
import type { RouteTableRow, Timestamp } from './rows.ts'
import { iso, toRouteTable } from './rows.ts'
import { inserted, now, read, tenantName, write } from './write.ts'

const tableName = (tenant: string): string => `route table of ${tenantName(tenant)}`

export function routeTableStatements(db: SqlDatabase) {
  return {
    getRouteTable: (tenant: string): Promise<RouteTable> =>
      read(async () => {
        const { rows } = await db.query<Partial<RouteTableRow> & { tenant_created_at: Timestamp }>(
          `SELECT t.created_at AS tenant_created_at, r.* FROM tenants t
           LEFT JOIN route_tables r ON r.tenant = t.id WHERE t.id = $1`,
          [tenant],
        )
        const row = rows[0]
        if (row === undefined) {
          throw new TributaryError('REGISTRY_NOT_FOUND', `${tenantName(tenant)} does not exist`)
        }
        if (row.rules === undefined || row.rules === null) {
          // Never written: an empty table as old as its tenant.
          const at = iso(row.tenant_created_at)
          return { tenant, rules: [], version: 0, createdAt: at, updatedAt: at }
        }
        return toRouteTable(row as RouteTableRow)
      }),

    putRouteTable: async (
      tenant: string,
      rules: readonly RouteRule[],
      pre?: Precondition,
    ): Promise<RouteTable> => {
      const ifVersion = putVersion(pre)
      return write(db, {}, async (tx) => {
        await lockTenant(tx, tenant)
        const current = await tx.query<{ version: number }>(
          'SELECT version FROM route_tables WHERE tenant = $1',
          [tenant],
        )
        const version = current.rows[0]?.version ?? 0
        checkPutVersion(version, ifVersion, tableName(tenant))
        const { rows } = await tx.query<RouteTableRow>(
          version === 0
            ? `INSERT INTO route_tables (tenant, rules, version, created_at, updated_at)
               VALUES ($1, $2::jsonb, 1, $3, $3) RETURNING *`
            : `UPDATE route_tables SET rules = $2::jsonb, version = version + 1, updated_at = $3
               WHERE tenant = $1 RETURNING *`,
          [tenant, JSON.stringify(rules), now()],
        )
        const table = toRouteTable(inserted(rows))
        return {
          result: table,
          change: {
            op: version === 0 ? 'created' : 'updated',
            resource: 'routes',
            tenant,
            version: table.version,
          },
        }
      })
    },
  }
}
