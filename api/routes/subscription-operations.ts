// Webhook subscription operations: replay from a time (managers and admins) and the recent
// delivery errors (readers and up), both through the registry database, whichever process delivers.
import type { OpenAPIHono } from '@hono/zod-openapi'
import { createRoute } from '@hono/zod-openapi'
import type { RegistryService } from '../../core/registry/service.ts'
import { API_PREFIX, requireJson, requires } from '../auth.ts'
import type { ApiEnv } from '../env.ts'
import { etag, precondition } from '../etag.ts'
import {
  IfMatchHeaders,
  Subscription,
  SubscriptionErrors,
  SubscriptionParams,
  SubscriptionReplay,
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
