// Webhook delivery statistics: counters per subscription that every delivery engine adds to
// (additive upserts of what it counted since its last flush), and the group lag it last measured.
// Facts, not configuration: no version, no outbox change.
import { TributaryError } from '../../errors.ts'
import type { WebhookStats, WebhookStatsDelta } from '../model.ts'
import type { SqlDatabase } from './client.ts'
import type { Timestamp } from './rows.ts'
import { iso } from './rows.ts'
import { read } from './write.ts'

interface WebhookStatsRow {
  tenant: string
  subscription: string
  attempts: number | string
  delivered: number | string
  failed_attempts: number | string
  dead_lettered: number | string
  last_success_at: Timestamp | null
  last_failure_at: Timestamp | null
  lag: number | string | null
  lag_at: Timestamp | null
}

const orNull = <T, R>(value: T | null, map: (v: T) => R): R | null => (value === null ? null : map(value))

const toStats = (row: WebhookStatsRow): WebhookStats => ({
  tenant: row.tenant,
  subscription: row.subscription,
  // `pg` returns bigint as a string, PGlite as a number.
  attempts: Number(row.attempts),
  delivered: Number(row.delivered),
  failedAttempts: Number(row.failed_attempts),
  deadLettered: Number(row.dead_lettered),
  lastSuccessAt: orNull(row.last_success_at, iso),
  lastFailureAt: orNull(row.last_failure_at, iso),
  lag: orNull(row.lag, Number),
  lagAt: orNull(row.lag_at, iso),
})

function count(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new TributaryError('REGISTRY_INVALID', `webhook stats ${field} must be a whole number ≥ 0`, {
      details: { [field]: value },
    })
  }
  return value
}

function time(value: string | null, field: string): string | null {
  if (value === null) return null
  const ms = Date.parse(value)
  if (!Number.isFinite(ms)) {
    throw new TributaryError('REGISTRY_INVALID', `webhook stats ${field} is not a time`, {
      details: { [field]: value },
    })
  }
  return new Date(ms).toISOString()
}

function toRecord(d: WebhookStatsDelta): Record<string, unknown> {
  return {
    tenant: d.tenant,
    subscription: d.subscription,
    attempts: count(d.attempts, 'attempts'),
    delivered: count(d.delivered, 'delivered'),
    failed_attempts: count(d.failedAttempts, 'failedAttempts'),
    dead_lettered: count(d.deadLettered, 'deadLettered'),
    last_success_at: time(d.lastSuccessAt, 'lastSuccessAt'),
    last_failure_at: time(d.lastFailureAt, 'lastFailureAt'),
    lag: d.lag === null ? null : count(d.lag, 'lag'),
    lag_at: d.lag === null ? null : time(d.lagAt, 'lagAt'),
  }
}

const ZERO = { attempts: 0, delivered: 0, failedAttempts: 0, deadLettered: 0 }

export function webhookStatsStatements(db: SqlDatabase) {
  return {
    addWebhookStats: async (deltas: readonly WebhookStatsDelta[]): Promise<void> => {
      if (deltas.length === 0) return
      // Deltas of one subscription are folded first: one row may be upserted once per statement.
      const folded = new Map<string, Record<string, unknown>>()
      for (const delta of deltas) {
        const record = toRecord(delta)
        const key = `${delta.tenant}\n${delta.subscription}`
        const seen = folded.get(key)
        folded.set(key, seen === undefined ? record : fold(seen, record))
      }
      // Counters add up; times keep the latest (greatest() ignores nulls); the lag is the newest
      // measurement. Subscriptions deleted meanwhile are skipped.
      await read(() =>
        db.query(
          `INSERT INTO webhook_stats AS w (tenant, subscription, attempts, delivered, failed_attempts,
             dead_lettered, last_success_at, last_failure_at, lag, lag_at)
           SELECT s.tenant, s.subscription, s.attempts, s.delivered, s.failed_attempts, s.dead_lettered,
             s.last_success_at, s.last_failure_at, s.lag, s.lag_at
           FROM jsonb_to_recordset($1::jsonb) AS s(tenant text, subscription text, attempts bigint,
             delivered bigint, failed_attempts bigint, dead_lettered bigint, last_success_at timestamptz,
             last_failure_at timestamptz, lag bigint, lag_at timestamptz)
           WHERE EXISTS (SELECT 1 FROM webhook_subscriptions x WHERE x.tenant = s.tenant AND x.id = s.subscription)
           ORDER BY s.tenant, s.subscription
           ON CONFLICT (tenant, subscription) DO UPDATE SET
             attempts = w.attempts + EXCLUDED.attempts,
             delivered = w.delivered + EXCLUDED.delivered,
             failed_attempts = w.failed_attempts + EXCLUDED.failed_attempts,
             dead_lettered = w.dead_lettered + EXCLUDED.dead_lettered,
             last_success_at = greatest(w.last_success_at, EXCLUDED.last_success_at),
             last_failure_at = greatest(w.last_failure_at, EXCLUDED.last_failure_at),
             lag = CASE WHEN EXCLUDED.lag_at IS NOT NULL AND (w.lag_at IS NULL OR EXCLUDED.lag_at >= w.lag_at)
                        THEN EXCLUDED.lag ELSE w.lag END,
             lag_at = greatest(w.lag_at, EXCLUDED.lag_at)`,
          [JSON.stringify([...folded.values()])],
        ),
      )
    },

    /** Zeros (and nulls) for a subscription no engine has reported on yet. */
    getWebhookStats: (tenant: string, subscription: string): Promise<WebhookStats> =>
      read(async () => {
        const { rows } = await db.query<WebhookStatsRow>(
          'SELECT * FROM webhook_stats WHERE tenant = $1 AND subscription = $2',
          [tenant, subscription],
        )
        const row = rows[0]
        if (row !== undefined) return toStats(row)
        const none = { lastSuccessAt: null, lastFailureAt: null, lag: null, lagAt: null }
        return { tenant, subscription, ...ZERO, ...none }
      }),
  }
}

/** Two records of one subscription as one: sums, and the later times and lag. */
function fold(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const sum = (k: string): number => (a[k] as number) + (b[k] as number)
  const later = (k: string): unknown => {
    const x = a[k] as string | null
    const y = b[k] as string | null
    return x === null ? y : y === null ? x : x > y ? x : y
  }
  const newerLag =
    b['lag_at'] !== null && (a['lag_at'] === null || (b['lag_at'] as string) >= (a['lag_at'] as string))
  return {
    ...a,
    attempts: sum('attempts'),
    delivered: sum('delivered'),
    failed_attempts: sum('failed_attempts'),
    dead_lettered: sum('dead_lettered'),
    last_success_at: later('last_success_at'),
    last_failure_at: later('last_failure_at'),
    lag: newerLag ? b['lag'] : a['lag'],
    lag_at: later('lag_at'),
  }
}
