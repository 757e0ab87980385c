// The config.changed fan-out (docs/config.md, "Events"): a write that may change the effective
// configuration of devices records a job in its own transaction (recordConfigFanout); the jobs are
// then worked off in order, one page of devices per transaction, each page announcing the devices
// whose configuration id differs from the one last announced for them, in the event outbox.
import type { CloudEvent } from '../../events/cloudevent.ts'
import type { ConfigObject, ConfigParts } from '../device-config.ts'
import { configId, effectiveDocument } from '../device-config.ts'
import type { ConfigChange, ConfigRuleSpec, ConfigScope, FanoutPage } from '../model.ts'
import type { SqlClient, SqlDatabase } from './client.ts'
import { loadConfigInputs } from './config-inputs.ts'
import { appendEvent } from './files.ts'
import { read } from './write.ts'

/** Advisory lock held by the one transaction (of any process) working a fan-out page. */
export const CONFIG_FANOUT_LOCK = 7_151_227_304
const MAX_PAGE = 10_000

type Labels = Readonly<Record<string, string>>
type Rule = ConfigRuleSpec & { readonly name: string }

export type ConfigFanoutJob =
  | {
      readonly kind: 'document'
      readonly scope: ConfigScope
      readonly previous: Readonly<Record<string, unknown>>
    }
  /** A rule was created, replaced or deleted; `previous` is the rule before (null: it is new). */
  | { readonly kind: 'rule'; readonly rule: string; readonly previous: Rule | null }
  /** A device's labels or appVersion changed; these are the ones it had before. */
  | {
      readonly kind: 'device'
      readonly device: string
      readonly previousAppVersion: string | null
      readonly previousLabels: Labels
    }

/** Records the job of a write in the write's transaction. */
export async function recordConfigFanout(tx: SqlClient, tenant: string, job: ConfigFanoutJob): Promise<void> {
  const level = job.kind === 'document' ? job.scope.level : job.kind === 'rule' ? 'rule' : 'device'
  const previous =
    job.kind === 'document'
      ? job.previous
      : job.kind === 'rule' && job.previous !== null
        ? {
            name: job.previous.name,
            selector: job.previous.selector,
            priority: job.previous.priority,
            document: job.previous.document,
          }
        : null
  await tx.query(
    `INSERT INTO config_fanout
       (tenant, kind, level, app_version, device, rule, previous, previous_app_version, previous_labels)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9::jsonb)`,
    [
      tenant,
      job.kind === 'device' ? 'device' : 'document',
      level,
      job.kind === 'document' && job.scope.level === 'app-version' ? job.scope.appVersion : null,
      job.kind === 'device'
        ? job.device
        : job.kind === 'document' && job.scope.level === 'device'
          ? job.scope.device
          : null,
      job.kind === 'rule' ? job.rule : null,
      previous === null ? null : JSON.stringify(previous),
      job.kind === 'device' ? job.previousAppVersion : null,
      job.kind === 'device' ? JSON.stringify(job.previousLabels) : null,
    ],
  )
}

interface JobRow {
  seq: string | number
  tenant: string
  /** 'app-version': a device job written before labels were recorded (previous_labels null). */
  kind: 'document' | 'device' | 'app-version'
  level: ConfigScope['level'] | 'rule'
  app_version: string | null
  device: string | null
  rule: string | null
  previous: ConfigObject | Rule | null
  previous_app_version: string | null
  previous_labels: Labels | null
  after_device: string | null
}

interface DeviceRow {
  id: string
  app_version: string | null
  labels: Labels
}

/** The devices of the job's next page, in id order. */
async function devicesOf(tx: SqlClient, job: JobRow, limit: number): Promise<DeviceRow[]> {
  const after = job.after_device
  const { rows } = await (job.level === 'device'
    ? tx.query<DeviceRow>(
        `SELECT id, app_version, labels FROM devices WHERE tenant = $1 AND id = $2
           AND ($3::text IS NULL OR id > $3)`,
        [job.tenant, job.device, after],
      )
    : job.level === 'app-version'
      ? tx.query<DeviceRow>(
          `SELECT id, app_version, labels FROM devices WHERE tenant = $1 AND app_version = $2
             AND ($3::text IS NULL OR id > $3) ORDER BY id LIMIT $4`,
          [job.tenant, job.app_version, after, limit],
        )
      : job.level === 'rule'
        ? // Devices the rule matches now or matched before: the others keep their id.
          tx.query<DeviceRow>(
            `SELECT id, app_version, labels FROM devices WHERE tenant = $1
               AND ($2::text IS NULL OR id > $2)
               AND (labels @> COALESCE((SELECT selector FROM config_rules WHERE tenant = $1 AND name = $4), 'null')
                    OR labels @> COALESCE($5::jsonb, 'null'))
             ORDER BY id LIMIT $3`,
            [
              job.tenant,
              after,
              limit,
              job.rule,
              job.previous === null ? null : JSON.stringify((job.previous as Rule).selector),
            ],
          )
        : tx.query<DeviceRow>(
            `SELECT id, app_version, labels FROM devices WHERE tenant = $1
               AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3`,
            [job.tenant, after, limit],
          ))
  return rows
}

/** Announces the page's devices whose id changed; the job moves on or is done, in the same transaction. */
async function workPage(
  tx: SqlClient,
  job: JobRow,
  limit: number,
  announce: (change: ConfigChange) => CloudEvent,
): Promise<number> {
  const { tenant } = job
  const devices = await devicesOf(tx, job, limit)
  const ids = devices.map((d) => d.id)
  const inputs = await loadConfigInputs(
    tx,
    tenant,
    ids,
    job.previous_app_version === null ? [] : [job.previous_app_version],
  )
  const announced = new Map<string, string>()
  for (const row of (
    await tx.query<{ device: string; config_id: string }>(
      'SELECT device, config_id FROM config_announced WHERE tenant = $1 AND device = ANY($2::text[])',
      [tenant, ids],
    )
  ).rows)
    announced.set(row.device, row.config_id)
  const { rules } = inputs

  const idOf = (appVersion: string | null, labels: Labels, over: Partial<ConfigParts>) =>
    configId(
      effectiveDocument(
        {
          tenant: over.tenant ?? inputs.tenant.document,
          app:
            appVersion === null
              ? undefined
              : (over.app ?? inputs.appVersions.get(appVersion)?.document ?? {}),
          rules: over.rules ?? rules,
          device: over.device ?? {},
        },
        labels,
      ),
    )
  const time = new Date()
  let count = 0
  for (const device of devices) {
    const own = inputs.devices.get(device.id)?.own.document ?? {}
    const current = idOf(device.app_version, device.labels, { device: own })
    // First announcement of the device: the id it had before this job's write.
    const before = (): string => {
      const { labels } = device
      if (job.kind !== 'document') {
        return idOf(job.previous_app_version, job.previous_labels ?? labels, { device: own })
      }
      if (job.level === 'rule') {
        const others = rules.filter((rule) => rule.name !== job.rule)
        const previous = job.previous as Rule | null
        return idOf(device.app_version, labels, {
          device: own,
          rules: previous === null ? others : [...others, previous],
        })
      }
      const previous = (job.previous ?? {}) as ConfigObject
      if (job.level === 'tenant') return idOf(device.app_version, labels, { tenant: previous, device: own })
      if (job.level === 'app-version') return idOf(device.app_version, labels, { app: previous, device: own })
      return idOf(device.app_version, labels, { device: previous })
    }
    const previousConfigId = announced.get(device.id) ?? before()
    if (previousConfigId === current) continue
    await appendEvent(tx, announce({ tenant, device: device.id, configId: current, previousConfigId, time }))
    await tx.query(
      `INSERT INTO config_announced (tenant, device, config_id) VALUES ($1, $2, $3)
       ON CONFLICT (tenant, device) DO UPDATE SET config_id = EXCLUDED.config_id`,
      [tenant, device.id, current],
    )
    count++
  }
  const last = devices.at(-1)
  if (job.level === 'device' || last === undefined || devices.length < limit) {
    await tx.query('DELETE FROM config_fanout WHERE seq = $1', [job.seq])
  } else {
    await tx.query('UPDATE config_fanout SET after_device = $2 WHERE seq = $1', [job.seq, last.id])
  }
  return count
}

export function configFanoutStatements(db: SqlDatabase) {
  return {
    /**
     * Works one page (at most `limit` devices) of the oldest fan-out job in one transaction: events
     * and progress commit together. `pending: false` when there is no job, or when another
     * transaction is working one (jobs run one page at a time across processes, in order).
     */
    configFanoutPage: (
      limit: number,
      announce: (change: ConfigChange) => CloudEvent,
    ): Promise<FanoutPage> => {
      const size = Math.min(Math.max(1, Math.trunc(limit)), MAX_PAGE)
      return read(() =>
        db.transaction(async (tx) => {
          const { rows: locked } = await tx.query<{ ok: boolean }>(
            'SELECT pg_try_advisory_xact_lock($1) AS ok',
            [CONFIG_FANOUT_LOCK],
          )
          if (locked[0]?.ok !== true) return { pending: false, announced: 0 }
          const { rows } = await tx.query<JobRow>('SELECT * FROM config_fanout ORDER BY seq LIMIT 1')
          const job = rows[0]
          if (job === undefined) return { pending: false, announced: 0 }
          return { pending: true, announced: await workPage(tx, job, size, announce) }
        }),
      )
    },
  }
}
