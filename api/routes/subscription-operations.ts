// Webhook subscription operations: replay from a time (managers and admins), the recent delivery
// errors and the delivery stats (readers and up), all through the registry database, whichever
// process delivers.
import type { OpenAPIHono } from '@hono/zod-openapi'
import { createRoute } from '@hono/zod-openapi'
import { TributaryError } from '../../core/errors.ts'
import type { RegistryService } from '../../core/registry/service.ts'
import type { RegistryStore } from '../../core/registry/store.ts'
import { API_PREFIX, requireJson, requires } from '../auth.ts'
import type { ApiEnv } from '../env.ts'
import { etag, precondition } from '../etag.ts'
import {
  IfMatchHeaders,
  Subscription,
  SubscriptionErrors,
  SubscriptionParams,
  SubscriptionReplay,
  SubscriptionStats,
} from '../schemas.ts'
import { READ_PROBLEMS, WRITE_PROBLEMS, jsonBody, jsonResponse, problems } from './common.ts'
import { subscriptionView } from './subscriptions.ts'

const tags = ['subscriptions']
const SUBSCRIPTION = `${API_PREFIX}/tenants/{tenant}/subscriptions/{id}`

const replay = createRoute({
  method: 'post',
  path: `${SUBSCRIPTION}/replay`,
  operationId: 'replaySubscription',
  tags,
  summary: 'Replay a webhook subscription from a time',
  description:
    'Delivers every matching event from `from` on again, in order, with the same webhook-id as before (receivers that drop duplicates drop them). Deliveries after `from` that are still in flight may arrive twice.',
  middleware: [requires('manager'), requireJson],
  request: {
    params: SubscriptionParams,
    headers: IfMatchHeaders,
    body: jsonBody(SubscriptionReplay, 'Where to start.'),
  },
  responses: {
    200: jsonResponse(Subscription, 'The subscription with the replay recorded.', 'etag'),
    ...problems(...WRITE_PROBLEMS),
  },
})

const errors = createRoute({
  method: 'get',
  path: `${SUBSCRIPTION}/errors`,
  operationId: 'listSubscriptionErrors',
  tags,
  summary: 'Recent delivery errors of a webhook subscription',
  description:
    'The newest 20 failed attempts, newest first, whichever process delivers. Events whose last attempt failed are in the subscription’s dead letters.',
  middleware: [requires('reader')],
  request: { params: SubscriptionParams },
  responses: { 200: jsonResponse(SubscriptionErrors, 'The recent errors.'), ...problems(...READ_PROBLEMS) },
})

const stats = createRoute({
  method: 'get',
  path: `${SUBSCRIPTION}/stats`,
  operationId: 'getSubscriptionStats',
  tags,
  summary: 'Delivery stats of a webhook subscription',
  description:
    'Counters summed over every delivery engine since the subscription was created, and its consumer lag. Engines add what they counted every 5 s, so the figures trail by that much.',
  middleware: [requires('reader')],
  request: { params: SubscriptionParams },
  responses: { 200: jsonResponse(SubscriptionStats, 'The stats.'), ...problems(...READ_PROBLEMS) },
})

/** The stats route: it reads the registry store, which the service does not expose. */
export function subscriptionStatsRoutes(
  app: OpenAPIHono<ApiEnv>,
  registry: RegistryService,
  store: Pick<RegistryStore, 'getWebhookStats'> | undefined,
): void {
  app.openapi(stats, async (c) => {
    const { tenant, id } = c.req.valid('param')
    // 404 for an unknown tenant or subscription, as on every subscription route.
    await registry.getSubscription(tenant, id)
    if (store === undefined) {
      throw new TributaryError('REGISTRY_UNAVAILABLE', 'this process serves no delivery stats')
    }
    const s = await store.getWebhookStats(tenant, id)
    // Each field picked by name, as in subscriptionView.
    return c.json(
      {
        attempts: s.attempts,
        delivered: s.delivered,
        failedAttempts: s.failedAttempts,
        deadLettered: s.deadLettered,
        lastSuccessAt: s.lastSuccessAt,
        lastFailureAt: s.lastFailureAt,
        lag: s.lag,
        lagAt: s.lagAt,
      },
      200,
    )
  })
}

export function subscriptionOperationRoutes(app: OpenAPIHono<ApiEnv>, registry: RegistryService): void {
  app.openapi(errors, async (c) => {
    const { tenant, id } = c.req.valid('param')
    const found = await registry.listSubscriptionErrors(tenant, id)
    // Each field picked by name, as in subscriptionView.
    const items = found.map((e) => ({
      at: e.at,
      webhookId: e.webhookId,
      attempt: e.attempt,
      status: e.status,
      error: e.error,
    }))
    return c.json({ items }, 200)
  })

  app.openapi(replay, async (c) => {
    const { tenant, id } = c.req.valid('param')
    const pre = precondition(c.req.valid('header')['if-match'])
    const replayed = await registry.replaySubscription(tenant, id, c.req.valid('json').from, pre)
    c.header('ETag', etag(replayed.version))
    return c.json(subscriptionView(replayed), 200)
  })
}
