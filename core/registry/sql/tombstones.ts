// Tenant tombstones: deleteTenant leaves one in its transaction, createTenant removes it, and the
// processors read the old ones to delete the topics of tenants gone longer than the grace period.
import { TributaryError } from '../../errors.ts'
import type { TenantTombstone } from '../model.ts'
import type { SqlDatabase } from './client.ts'
import type { Timestamp } from './rows.ts'
import { iso } from './rows.ts'
import { read } from './write.ts'

const MAX_TOMBSTONES = 1000

export function tombstoneStatements(db: SqlDatabase) {
  return {
    tenantTombstones: async (before: Date, limit: number): Promise<TenantTombstone[]> => {
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_TOMBSTONES) {
        throw new TributaryError('REGISTRY_INVALID', `limit must be an integer from 1 to ${MAX_TOMBSTONES}`)
      }
      if (Number.isNaN(before.getTime())) throw new TributaryError('REGISTRY_INVALID', 'before is not a date')
      return read(async () => {
        const { rows } = await db.query<{ tenant: string; deleted_at: Timestamp }>(
          `SELECT tenant, deleted_at FROM tenant_tombstones WHERE deleted_at <= $1
           ORDER BY deleted_at, tenant LIMIT $2`,
          [before.toISOString(), limit],
        )
        return rows.map((row) => ({ tenant: row.tenant, deletedAt: iso(row.deleted_at) }))
      })
    },

    // Not a configuration change: no version and no outbox event; forgetting one twice is harmless.
    dropTenantTombstone: (tenant: string): Promise<void> =>
      read(async () => {
        await db.query('DELETE FROM tenant_tombstones WHERE tenant = $1', [tenant])
      }),
  }
}
