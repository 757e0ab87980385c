// Desired configuration statements: one document per level (tenant default, application version,
// device), read (version 0 and `{}` until first written) and replaced whole under a precondition.
import { TributaryError } from '../../errors.ts'
import type { ConfigDocument, ConfigScope } from '../model.ts'
import type { Precondition } from '../store.ts'
import type { SqlClient, SqlDatabase } from './client.ts'
import { recordConfigFanout } from './config-fanout.ts'
import { loadConfigInputs } from './config-inputs.ts'
import { checkPutVersion, lockTenant, putVersion } from './put.ts'
import type { Timestamp } from './rows.ts'
import { iso } from './rows.ts'
import { deviceName, inserted, now, read, tenantName, write } from './write.ts'

interface DocumentRow {
  document: Record<string, unknown>
  version: number
  created_at: Timestamp
  updated_at: Timestamp
}

const scopeName = (tenant: string, scope: ConfigScope): string =>
  scope.level === 'tenant'
    ? `configuration of ${tenantName(tenant)}`
    : scope.level === 'app-version'
      ? `configuration of app version ${JSON.stringify(scope.appVersion)} of ${tenantName(tenant)}`
      : `configuration of ${deviceName(tenant, scope.device)}`

/** The level's row (absent: never written) and when its owner was created; 404 when the owner is gone. */
async function load(
  db: SqlDatabase | SqlClient,
  tenant: string,
  scope: ConfigScope,
): Promise<{ row: DocumentRow | undefined; ownerCreatedAt: Timestamp }> {
  const { rows } = await (scope.level === 'device'
    ? db.query<Partial<DocumentRow> & { owner_created_at: Timestamp }>(
        `SELECT o.created_at AS owner_created_at, c.* FROM devices o
         LEFT JOIN device_configs c ON c.tenant = o.tenant AND c.device = o.id
         WHERE o.tenant = $1 AND o.id = $2`,
        [tenant, scope.device],
      )
    : db.query<Partial<DocumentRow> & { owner_created_at: Timestamp }>(
        `SELECT o.created_at AS owner_created_at, c.* FROM tenants o
         LEFT JOIN config_documents c ON c.tenant = o.id AND c.app_version = $2
         WHERE o.id = $1`,
        [tenant, scope.level === 'tenant' ? '' : scope.appVersion],
      ))
  const found = rows[0]
  if (found === undefined) {
    const owner = scope.level === 'device' ? deviceName(tenant, scope.device) : tenantName(tenant)
    throw new TributaryError('REGISTRY_NOT_FOUND', `${owner} does not exist`)
  }
  const row = found.document === undefined || found.document === null ? undefined : (found as DocumentRow)
  return { row, ownerCreatedAt: found.owner_created_at }
}

async function lockDevice(tx: SqlClient, tenant: string, device: string): Promise<void> {
  const { rows } = await tx.query('SELECT 1 FROM devices WHERE tenant = $1 AND id = $2 FOR NO KEY UPDATE', [
    tenant,
    device,
  ])
  if (rows.length === 0)
    throw new TributaryError('REGISTRY_NOT_FOUND', `${deviceName(tenant, device)} does not exist`)
}

function toDocument(tenant: string, scope: ConfigScope, row: DocumentRow | undefined, at: Timestamp) {
  if (row === undefined) {
    // Never written: an empty document as old as its owner.
    const created = iso(at)
    return { tenant, scope, document: {}, version: 0, createdAt: created, updatedAt: created }
  }
  return {
    tenant,
    scope,
    document: row.document,
    version: row.version,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  }
}

export function configStatements(db: SqlDatabase) {
  return {
    configInputs: (tenant: string, devices: readonly string[]) =>
      read(() => loadConfigInputs(db, tenant, devices)),

    getConfigDocument: (tenant: string, scope: ConfigScope): Promise<ConfigDocument> =>
      read(async () => {
        const { row, ownerCreatedAt } = await load(db, tenant, scope)
        return toDocument(tenant, scope, row, ownerCreatedAt)
      }),

    putConfigDocument: async (
      tenant: string,
      scope: ConfigScope,
      document: Readonly<Record<string, unknown>>,
      pre?: Precondition,
    ): Promise<ConfigDocument> => {
      const ifVersion = putVersion(pre)
      return write(db, {}, async (tx) => {
        // Locking the owner (tenant or device) makes the writes of one document run one at a time;
        // the read after it takes a new snapshot (READ COMMITTED), so it sees the winner's row.
        if (scope.level === 'device') await lockDevice(tx, tenant, scope.device)
        else await lockTenant(tx, tenant)
        const { row } = await load(tx, tenant, scope)
        const version = row?.version ?? 0
        checkPutVersion(version, ifVersion, scopeName(tenant, scope))
        const at = now()
        const json = JSON.stringify(document)
        const { rows } = await (scope.level === 'device'
          ? tx.query<DocumentRow>(
              version === 0
                ? `INSERT INTO device_configs (tenant, device, document, version, created_at, updated_at)
                   VALUES ($1, $2, $3::jsonb, 1, $4, $4) RETURNING *`
                : `UPDATE device_configs SET document = $3::jsonb, version = version + 1, updated_at = $4
                   WHERE tenant = $1 AND device = $2 RETURNING *`,
              [tenant, scope.device, json, at],
            )
          : tx.query<DocumentRow>(
              version === 0
                ? `INSERT INTO config_documents (tenant, app_version, document, version, created_at, updated_at)
                   VALUES ($1, $2, $3::jsonb, 1, $4, $4) RETURNING *`
                : `UPDATE config_documents SET document = $3::jsonb, version = version + 1, updated_at = $4
                   WHERE tenant = $1 AND app_version = $2 RETURNING *`,
              [tenant, scope.level === 'tenant' ? '' : scope.appVersion, json, at],
            ))
        const written = inserted(rows)
        await recordConfigFanout(tx, tenant, { kind: 'document', scope, previous: row?.document ?? {} })
        return {
          result: toDocument(tenant, scope, written, written.created_at),
          change: {
            op: version === 0 ? 'created' : 'updated',
            resource: 'config',
            tenant,
            ...(scope.level === 'device' ? { device: scope.device } : {}),
            ...(scope.level === 'app-version' ? { id: scope.appVersion } : {}),
            version: written.version,
          },
        }
      })
    },
  }
}
