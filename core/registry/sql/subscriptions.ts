// Webhook subscription statements: create within the per-tenant limit, read, list (one tenant, or
// every tenant for the delivery engines), replace, change state, request a replay, delete. The
// service checks the fields (validate-subscriptions.ts) and encrypts the signing secret first.
import { TributaryError } from '../../errors.ts'
import type { ListOptions, Page, RetryPolicy, SubscriptionFilter, WebhookSubscription } from '../model.ts'
import { MAX_SUBSCRIPTIONS_PER_TENANT } from '../model.ts'
import type { NewSubscription, Precondition } from '../store.ts'
import type { SqlDatabase } from './client.ts'
import { decodeCursor, pageLimit, toPage } from './page.ts'
import { lockTenant } from './put.ts'
import type { Timestamp } from './rows.ts'
import { iso } from './rows.ts'
import { expectedVersion, inserted, noRowWritten, now, read, tenantName, write } from './write.ts'

interface SubscriptionRow {
  tenant: string
  id: string
  url: string
  filter: SubscriptionFilter
  mode: WebhookSubscription['mode']
  batch_size: number | null
  secret_encrypted: string
  headers: Record<string, string>
  timeout_ms: number
  retry: RetryPolicy
  state: WebhookSubscription['state']
  replay_from: Timestamp | null
  replay_generation: number
  version: number
  created_at: Timestamp
  updated_at: Timestamp
}

const toSubscription = (row: SubscriptionRow): WebhookSubscription => ({
  tenant: row.tenant,
  id: row.id,
  url: row.url,
  filter: row.filter,
  mode: row.mode,
  batchSize: row.batch_size,
  secretEncrypted: row.secret_encrypted,
  headers: row.headers,
  timeoutMs: row.timeout_ms,
  retry: row.retry,
  state: row.state,
  replayFrom: row.replay_from === null ? null : iso(row.replay_from),
  replayGeneration: row.replay_generation,
  version: row.version,
  createdAt: iso(row.created_at),
  updatedAt: iso(row.updated_at),
})

const subscriptionName = (tenant: string, id: string): string =>
  `webhook subscription ${JSON.stringify(id)} of ${tenantName(tenant)}`

const currentVersion = (tenant: string, id: string) => ({
  sql: 'SELECT version FROM webhook_subscriptions WHERE tenant = $1 AND id = $2',
  params: [tenant, id],
})

/** The cursor of listAllSubscriptions names a (tenant, id) pair; tenant ids hold no newline. */
const SEPARATOR = '\n'

/** The settable columns url … state, in the order both INSERT and UPDATE bind them. */
const settingsParams = (s: NewSubscription): unknown[] => [
  s.url,
  JSON.stringify(s.filter),
  s.mode,
  s.batchSize,
  s.secretEncrypted,
  JSON.stringify(s.headers),
  s.timeoutMs,
  JSON.stringify(s.retry),
  s.state,
]

export function subscriptionStatements(db: SqlDatabase) {
  const guardedUpdate = async (
    tenant: string,
    id: string,
    set: string,
    values: readonly unknown[],
    pre: Precondition | undefined,
  ): Promise<WebhookSubscription> => {
    const ifVersion = expectedVersion(pre?.ifVersion)
    return write(db, {}, async (tx) => {
      const at = values.length + 3
      const { rows } = await tx.query<SubscriptionRow>(
        `UPDATE webhook_subscriptions SET ${set}, version = version + 1, updated_at = $${at}
         WHERE tenant = $1 AND id = $2 AND ($${at + 1}::integer IS NULL OR version = $${at + 1}) RETURNING *`,
        [tenant, id, ...values, now(), ifVersion],
      )
      const row =
        rows[0] ??
        (await noRowWritten(tx, currentVersion(tenant, id), subscriptionName(tenant, id), pre?.ifVersion))
      const updated = toSubscription(row)
      return {
        result: updated,
        change: { op: 'updated', resource: 'subscription', tenant, id, version: updated.version },
      }
    })
  }

  return {
    createSubscription: (s: NewSubscription): Promise<WebhookSubscription> =>
      write(
        db,
        { webhook_subscriptions_pkey: 'a webhook subscription with this id exists already' },
        async (tx) => {
          await lockTenant(tx, s.tenant)
          const counted = await tx.query<{ n: number }>(
            'SELECT count(*)::integer AS n FROM webhook_subscriptions WHERE tenant = $1',
            [s.tenant],
          )
          const count = counted.rows[0]?.n ?? 0
          if (count >= MAX_SUBSCRIPTIONS_PER_TENANT) {
            throw new TributaryError(
              'REGISTRY_QUOTA_EXCEEDED',
              `${tenantName(s.tenant)} has ${count} webhook subscriptions, the most a tenant may have`,
              { details: { maxSubscriptions: MAX_SUBSCRIPTIONS_PER_TENANT } },
            )
          }
          const { rows } = await tx.query<SubscriptionRow>(
            `INSERT INTO webhook_subscriptions (tenant, id, url, filter, mode, batch_size, secret_encrypted,
             headers, timeout_ms, retry, state, version, created_at, updated_at)
           VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8::jsonb, $9, $10::jsonb, $11, 1, $12, $12) RETURNING *`,
            [s.tenant, s.id, ...settingsParams(s), now()],
          )
          return {
            result: toSubscription(inserted(rows)),
            change: { op: 'created', resource: 'subscription', tenant: s.tenant, id: s.id, version: 1 },
          }
        },
      ),

    getSubscription: (tenant: string, id: string): Promise<WebhookSubscription | undefined> =>
      read(async () => {
        const { rows } = await db.query<SubscriptionRow>(
          'SELECT * FROM webhook_subscriptions WHERE tenant = $1 AND id = $2',
          [tenant, id],
        )
        return rows[0] === undefined ? undefined : toSubscription(rows[0])
      }),

    listSubscriptions: async (tenant: string, options?: ListOptions): Promise<Page<WebhookSubscription>> => {
      const limit = pageLimit(options)
      const after = decodeCursor(options?.after)
      return read(async () => {
        const { rows } = await db.query<SubscriptionRow>(
          `SELECT * FROM webhook_subscriptions WHERE tenant = $1 AND ($2::text IS NULL OR id > $2)
           ORDER BY id LIMIT $3`,
          [tenant, after, limit + 1],
        )
        return toPage(rows, limit, toSubscription, (s) => s.id)
      })
    },

    listAllSubscriptions: async (options?: ListOptions): Promise<Page<WebhookSubscription>> => {
      const limit = pageLimit(options)
      const cursor = decodeCursor(options?.after)
      const at = cursor === null ? -1 : cursor.indexOf(SEPARATOR)
      if (cursor !== null && at < 1) {
        throw new TributaryError(
          'REGISTRY_INVALID',
          'the page cursor is invalid; use a `next` value as given',
        )
      }
      const [afterTenant, afterId] =
        cursor === null ? [null, null] : [cursor.slice(0, at), cursor.slice(at + 1)]
      return read(async () => {
        const { rows } = await db.query<SubscriptionRow>(
          `SELECT * FROM webhook_subscriptions
           WHERE $1::text IS NULL OR (tenant, id) > ($1::text COLLATE "C", $2::text COLLATE "C")
           ORDER BY tenant, id LIMIT $3`,
          [afterTenant, afterId, limit + 1],
        )
        return toPage(rows, limit, toSubscription, (s) => `${s.tenant}${SEPARATOR}${s.id}`)
      })
    },

    updateSubscription: (s: WebhookSubscription, pre?: Precondition): Promise<WebhookSubscription> =>
      guardedUpdate(
        s.tenant,
        s.id,
        `url = $3, filter = $4::jsonb, mode = $5, batch_size = $6, secret_encrypted = $7, headers = $8::jsonb,
         timeout_ms = $9, retry = $10::jsonb, state = $11`,
        settingsParams(s),
        pre,
      ),

    setSubscriptionState: (
      tenant: string,
      id: string,
      state: WebhookSubscription['state'],
      pre?: Precondition,
    ): Promise<WebhookSubscription> => guardedUpdate(tenant, id, 'state = $3', [state], pre),

    replaySubscription: (
      tenant: string,
      id: string,
      from: string,
      pre?: Precondition,
    ): Promise<WebhookSubscription> =>
      guardedUpdate(
        tenant,
        id,
        'replay_from = $3::timestamptz, replay_generation = replay_generation + 1',
        [from],
        pre,
      ),

    deleteSubscription: async (tenant: string, id: string, pre?: Precondition): Promise<void> => {
      const ifVersion = expectedVersion(pre?.ifVersion)
      return write(db, {}, async (tx) => {
        const { rows } = await tx.query<{ version: number }>(
          `DELETE FROM webhook_subscriptions WHERE tenant = $1 AND id = $2 AND ($3::integer IS NULL OR version = $3)
           RETURNING version`,
          [tenant, id, ifVersion],
        )
        const row =
          rows[0] ??
          (await noRowWritten(tx, currentVersion(tenant, id), subscriptionName(tenant, id), pre?.ifVersion))
        return {
          result: undefined,
          change: { op: 'deleted', resource: 'subscription', tenant, id, version: row.version },
        }
      })
    },
  }
}
