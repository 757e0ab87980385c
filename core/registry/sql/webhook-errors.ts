// Webhook error statements: the failed delivery attempts the delivery engines report, the newest
// few per subscription, for the API. Facts, not configuration: no version, no outbox change.
import { TributaryError } from '../../errors.ts'
import type { WebhookError } from '../model.ts'
import { WEBHOOK_ERRORS_KEPT } from '../model.ts'
import type { SqlDatabase } from './client.ts'
import type { Timestamp } from './rows.ts'
import { iso } from './rows.ts'
import { read } from './write.ts'

/** Longest error text kept, in characters; a longer one is cut. */
export const WEBHOOK_ERROR_MAX = 1024
const WEBHOOK_ID_MAX = 256

interface WebhookErrorRow {
  tenant: string
  subscription: string
  at: Timestamp
  webhook_id: string
  attempt: number
  status: number | null
  error: string
}

const toWebhookError = (row: WebhookErrorRow): WebhookError => ({
  tenant: row.tenant,
  subscription: row.subscription,
  at: iso(row.at),
  webhookId: row.webhook_id,
  attempt: row.attempt,
  status: row.status,
  error: row.error,
})

/** PostgreSQL text holds no NUL and JSON no lone surrogates: both become U+FFFD. Then cut to `max`. */
const clean = (value: string, max: number): string =>
  value.toWellFormed().replaceAll('\0', '\uFFFD').slice(0, max)

function toRecord(e: WebhookError): Record<string, unknown> {
  const ms = Date.parse(e.at)
  const whole = (n: number | null): boolean =>
    n === null || (Number.isSafeInteger(n) && n >= 0 && n < 2 ** 31)
  if (!Number.isFinite(ms) || !whole(e.attempt) || !whole(e.status)) {
    throw new TributaryError(
      'REGISTRY_INVALID',
      'a webhook error needs a time, an attempt and a status ≥ 0',
      {
        details: { at: e.at, attempt: e.attempt, status: e.status },
      },
    )
  }
  return {
    tenant: e.tenant,
    subscription: e.subscription,
    at: new Date(ms).toISOString(),
    webhook_id: clean(e.webhookId, WEBHOOK_ID_MAX),
    attempt: e.attempt,
    status: e.status,
    error: clean(e.error, WEBHOOK_ERROR_MAX),
  }
}

export function webhookErrorStatements(db: SqlDatabase) {
  return {
    recordWebhookErrors: async (errors: readonly WebhookError[]): Promise<void> => {
      if (errors.length === 0) return
      const records = JSON.stringify(errors.map((e, n) => ({ ...toRecord(e), n })))
      // In the given order, so that seq orders them; then each subscription's older ones go.
      await read(async () => {
        await db.query(
          `INSERT INTO webhook_errors (tenant, subscription, at, webhook_id, attempt, status, error)
           SELECT e.tenant, e.subscription, e.at, e.webhook_id, e.attempt, e.status, e.error
           FROM jsonb_to_recordset($1::jsonb)
             AS e(tenant text, subscription text, at timestamptz, webhook_id text, attempt integer,
                  status integer, error text, n bigint)
           WHERE EXISTS (SELECT 1 FROM webhook_subscriptions s WHERE s.tenant = e.tenant AND s.id = e.subscription)
           ORDER BY e.n`,
          [records],
        )
        await db.query(
          `DELETE FROM webhook_errors w
           USING (SELECT DISTINCT e.tenant, e.subscription
                  FROM jsonb_to_recordset($1::jsonb) AS e(tenant text, subscription text)) AS touched
           WHERE w.tenant = touched.tenant AND w.subscription = touched.subscription
             AND w.seq <= (SELECT seq FROM webhook_errors k
                           WHERE k.tenant = touched.tenant AND k.subscription = touched.subscription
                           ORDER BY seq DESC OFFSET $2 LIMIT 1)`,
          [records, WEBHOOK_ERRORS_KEPT],
        )
      })
    },

    listWebhookErrors: (tenant: string, subscription: string): Promise<WebhookError[]> =>
      read(async () => {
        const { rows } = await db.query<WebhookErrorRow>(
          `SELECT * FROM webhook_errors WHERE tenant = $1 AND subscription = $2 ORDER BY seq DESC LIMIT $3`,
          [tenant, subscription, WEBHOOK_ERRORS_KEPT],
        )
        return rows.map(toWebhookError)
      }),
  }
}
