// Device statements: create within the tenant's quota, read, list by label, update, delete, touch.
import { TributaryError } from '../../errors.ts'
import type { Device, DeviceListOptions, DeviceSpec, Page, TenantQuotas } from '../model.ts'
import type { Precondition } from '../store.ts'
import type { SqlDatabase } from './client.ts'
import { recordConfigFanout } from './config-fanout.ts'
import { decodeCursor, pageLimit, toPage } from './page.ts'
import type { DeviceRow } from './rows.ts'
import { toDevice } from './rows.ts'
import { deviceName, expectedVersion, inserted, noRowWritten, now, read, tenantName, write } from './write.ts'

const currentVersion = (tenant: string, id: string) => ({
  sql: 'SELECT version FROM devices WHERE tenant = $1 AND id = $2',
  params: [tenant, id],
})

const sameLabels = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean =>
  Object.keys(a).length === Object.keys(b).length &&
  Object.entries(a).every(([key, value]) => b[key] === value)

export function deviceStatements(db: SqlDatabase) {
  return {
    createDevice: (tenant: string, id: string, spec: DeviceSpec): Promise<Device> =>
      write(db, { devices_pkey: `${deviceName(tenant, id)} exists already` }, async (tx) => {
        // Locking the tenant row serializes device creation per tenant, so two creations at the
        // quota's edge cannot both count the same number of devices. NO KEY UPDATE still lets
        // other writers reference the tenant (foreign key checks take KEY SHARE).
        const owner = await tx.query<{ quotas: TenantQuotas }>(
          'SELECT quotas FROM tenants WHERE id = $1 FOR NO KEY UPDATE',
          [tenant],
        )
        const quotas = owner.rows[0]?.quotas
        if (quotas === undefined)
          throw new TributaryError('REGISTRY_NOT_FOUND', `${tenantName(tenant)} does not exist`)
        if (quotas.maxDevices !== null) {
          const counted = await tx.query<{ n: number }>(
            'SELECT count(*)::integer AS n FROM devices WHERE tenant = $1',
            [tenant],
          )
          const count = counted.rows[0]?.n ?? 0
          if (count >= quotas.maxDevices) {
            throw new TributaryError(
              'REGISTRY_QUOTA_EXCEEDED',
              `${tenantName(tenant)} has ${count} devices, its quota is ${quotas.maxDevices}`,
              { details: { maxDevices: quotas.maxDevices } },
            )
          }
        }
        const at = now()
        const { rows } = await tx.query<DeviceRow>(
          `INSERT INTO devices (tenant, id, enabled, labels, gateways, app_version, last_seen, version, created_at, updated_at)
           VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $7, NULL, 1, $6, $6) RETURNING *`,
          [
            tenant,
            id,
            spec.enabled,
            JSON.stringify(spec.labels),
            JSON.stringify(spec.gateways),
            at,
            spec.appVersion,
          ],
        )
        return {
          result: toDevice(inserted(rows)),
          change: { op: 'created', resource: 'device', tenant, device: id, version: 1 },
        }
      }),

    getDevice: (tenant: string, id: string): Promise<Device | undefined> =>
      read(async () => {
        const { rows } = await db.query<DeviceRow>('SELECT * FROM devices WHERE tenant = $1 AND id = $2', [
          tenant,
          id,
        ])
        return rows[0] === undefined ? undefined : toDevice(rows[0])
      }),

    listDevices: async (tenant: string, options?: DeviceListOptions): Promise<Page<Device>> => {
      const limit = pageLimit(options)
      const after = decodeCursor(options?.after)
      const labels = options?.labels === undefined ? null : JSON.stringify(options.labels)
      return read(async () => {
        const { rows } = await db.query<DeviceRow>(
          `SELECT * FROM devices
           WHERE tenant = $1 AND ($2::text IS NULL OR id > $2) AND ($3::jsonb IS NULL OR labels @> $3::jsonb)
           ORDER BY id LIMIT $4`,
          [tenant, after, labels, limit + 1],
        )
        return toPage(rows, limit, toDevice, (d) => d.id)
      })
    },

    updateDevice: async (
      tenant: string,
      id: string,
      spec: DeviceSpec,
      pre?: Precondition,
    ): Promise<Device> => {
      const ifVersion = expectedVersion(pre?.ifVersion)
      return write(db, {}, async (tx) => {
        const { rows: before } = await tx.query<{
          app_version: string | null
          labels: Record<string, string>
        }>('SELECT app_version, labels FROM devices WHERE tenant = $1 AND id = $2 FOR NO KEY UPDATE', [
          tenant,
          id,
        ])
        const { rows } = await tx.query<DeviceRow>(
          `UPDATE devices SET enabled = $3, labels = $4::jsonb, gateways = $5::jsonb, app_version = $8,
             version = version + 1, updated_at = $6
           WHERE tenant = $1 AND id = $2 AND ($7::integer IS NULL OR version = $7) RETURNING *`,
          [
            tenant,
            id,
            spec.enabled,
            JSON.stringify(spec.labels),
            JSON.stringify(spec.gateways),
            now(),
            ifVersion,
            spec.appVersion,
          ],
        )
        const row =
          rows[0] ??
          (await noRowWritten(tx, currentVersion(tenant, id), deviceName(tenant, id), pre?.ifVersion))
        const device = toDevice(row)
        // What selects the device's configuration: its application version and its labels (rules).
        const previousAppVersion = before[0]?.app_version ?? null
        const previousLabels = before[0]?.labels ?? {}
        if (previousAppVersion !== device.appVersion || !sameLabels(previousLabels, device.labels)) {
          await recordConfigFanout(tx, tenant, {
            kind: 'device',
            device: id,
            previousAppVersion,
            previousLabels,
          })
        }
        return {
          result: device,
          change: { op: 'updated', resource: 'device', tenant, device: id, version: device.version },
        }
      })
    },

    deleteDevice: async (tenant: string, id: string, pre?: Precondition): Promise<void> => {
      const ifVersion = expectedVersion(pre?.ifVersion)
      return write(db, {}, async (tx) => {
        // Its credentials go with it (ON DELETE CASCADE); one change covers them.
        const { rows } = await tx.query<{ version: number }>(
          'DELETE FROM devices WHERE tenant = $1 AND id = $2 AND ($3::integer IS NULL OR version = $3) RETURNING version',
          [tenant, id, ifVersion],
        )
        const row =
          rows[0] ??
          (await noRowWritten(tx, currentVersion(tenant, id), deviceName(tenant, id), pre?.ifVersion))
        return {
          result: undefined,
          change: { op: 'deleted', resource: 'device', tenant, device: id, version: row.version },
        }
      })
    },

    touchDevice: (tenant: string, id: string, at: Date): Promise<void> =>
      // Only moves forward, so adapters reporting out of order never set it back; a device that is
      // gone is not an error here (it may be deleted while its last messages are in flight).
      read(async () => {
        await db.query(
          'UPDATE devices SET last_seen = $3 WHERE tenant = $1 AND id = $2 AND (last_seen IS NULL OR last_seen < $3)',
          [tenant, id, at.toISOString()],
        )
      }),
  }
}
