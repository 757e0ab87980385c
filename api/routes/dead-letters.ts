// Dead-letter routes: a tenant's refused events as the dead-letter index holds them (newest first,
// paged, filtered by device, reason and webhook subscription), one subscription's letters (readers
// and up), and their re-drive to the subscription's endpoint (managers and admins).
import type { OpenAPIHono } from '@hono/zod-openapi'
import { createRoute } from '@hono/zod-openapi'
import { TributaryError } from '../../core/errors.ts'
import type { DeadLetter as DeadLetterModel } from '../../core/registry/model.ts'
import type { RegistryService } from '../../core/registry/service.ts'
import type { RegistryStore } from '../../core/registry/store.ts'
import { API_PREFIX, requires } from '../auth.ts'
import type { ApiEnv } from '../env.ts'
import { TenantParams, page } from '../schemas/common.ts'
import { DeadLetter, DeadLetterListQuery, SubscriptionDeadLetterQuery } from '../schemas/dead-letters.ts'
import { RedriveQueued, SubscriptionParams, SubscriptionRedrive } from '../schemas/subscriptions.ts'
import { READ_PROBLEMS, WRITE_PROBLEMS, jsonResponse, problems } from './common.ts'
import { subscriptionStatsRoutes } from './subscription-operations.ts'

/**
 * Where the routes read letters from and write re-drive requests to: the registry store, which the
 * processors' index fills; also the delivery stats the engines write (subscription-operations.ts).
 */
export type DeadLetterReader = Pick<RegistryStore, 'listDeadLetters' | 'requestRedrive' | 'getWebhookStats'>

const DeadLetterPage = page(DeadLetter, 'DeadLetterPage')

const list = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/dead-letters`,
  operationId: 'listDeadLetters',
  tags: ['dead-letters'],
  summary: 'List dead letters',
  description:
    'Events the processors refused and webhook deliveries that failed, newest first, paged; ' +
    '`device`, `reason` and `subscription` narrow the list. ' +
    'The index keeps the newest TRIBUTARY_DEADLETTER_KEEP letters per tenant; the dead-letter topic keeps them all.',
  middleware: [requires('reader')],
  request: { params: TenantParams, query: DeadLetterListQuery },
  responses: { 200: jsonResponse(DeadLetterPage, 'A page of dead letters.'), ...problems(...READ_PROBLEMS) },
})

const listOfSubscription = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}/subscriptions/{id}/dead-letters`,
  operationId: 'listSubscriptionDeadLetters',
  tags: ['subscriptions'],
  summary: 'List the dead letters of a webhook subscription',
  description:
    'Events whose delivery to this subscription failed for good (step `webhook`, reason ' +
    '`retries-exhausted` or `rejected`), newest first, paged; `device` and `reason` narrow the list.',
  middleware: [requires('reader')],
  request: { params: SubscriptionParams, query: SubscriptionDeadLetterQuery },
  responses: { 200: jsonResponse(DeadLetterPage, 'A page of dead letters.'), ...problems(...READ_PROBLEMS) },
})

const redrive = createRoute({
  method: 'post',
  path: `${API_PREFIX}/tenants/{tenant}/subscriptions/{id}/dead-letters/redrive`,
  operationId: 'redriveSubscriptionDeadLetters',
  tags: ['subscriptions'],
  summary: 'Re-drive the dead letters of a webhook subscription',
  description:
    'Queues the subscription’s dead letters (those of `ids`, else all) for delivery again to its URL, ' +
    'with the same signing and retry policy. A letter delivered, or dead-lettered again as a new letter, ' +
    'leaves the list. A paused subscription re-drives once resumed; a disabled one answers 409.',
  middleware: [requires('manager')],
  request: {
    params: SubscriptionParams,
    body: {
      required: false,
      description: 'Nothing (every letter), or the ids of the letters to re-drive.',
      content: { 'application/json': { schema: SubscriptionRedrive } },
    },
  },
  responses: {
    202: jsonResponse(RedriveQueued, 'How many letters were queued.'),
    ...problems(...WRITE_PROBLEMS),
  },
})

/** Each field picked by name, so that nothing the store may add later reaches a response. */
function deadLetterView(l: DeadLetterModel) {
  return {
    tenant: l.tenant,
    id: l.id,
    partition: l.partition,
    offset: l.offset,
    device: l.device,
    type: l.type,
    subject: l.subject,
    step: l.step,
    reason: l.reason,
    detail: l.detail,
    firstFailure: l.firstFailure,
    deadLetteredAt: l.deadLetteredAt,
    contentType: l.contentType,
    data: l.data,
    subscription: l.subscription,
  }
}

export function deadLetterRoutes(
  app: OpenAPIHono<ApiEnv>,
  registry: RegistryService,
  deadLetters: DeadLetterReader | undefined,
): void {
  app.openapi(list, async (c) => {
    const { tenant } = c.req.valid('param')
    const query = c.req.valid('query')
    // A tenant that does not exist is a 404, as on every tenant route, not an empty list.
    await registry.getTenant(tenant)
    if (deadLetters === undefined) {
      throw new TributaryError('REGISTRY_UNAVAILABLE', 'this process serves no dead-letter index')
    }
    const result = await deadLetters.listDeadLetters(tenant, {
      limit: query.limit,
      after: query.after,
      device: query.device,
      reason: query.reason,
      subscription: query.subscription,
    })
    return c.json({ items: result.items.map(deadLetterView), next: result.next }, 200)
  })

  app.openapi(listOfSubscription, async (c) => {
    const { tenant, id } = c.req.valid('param')
    const query = c.req.valid('query')
    // 404 for an unknown tenant or subscription, as on every subscription route.
    await registry.getSubscription(tenant, id)
    if (deadLetters === undefined) {
      throw new TributaryError('REGISTRY_UNAVAILABLE', 'this process serves no dead-letter index')
    }
    const result = await deadLetters.listDeadLetters(tenant, {
      limit: query.limit,
      after: query.after,
      device: query.device,
      reason: query.reason,
      subscription: id,
    })
    return c.json({ items: result.items.map(deadLetterView), next: result.next }, 200)
  })
  app.openapi(redrive, async (c) => {
    const { tenant, id } = c.req.valid('param')
    // No body is `{}` (every letter); a body of another media type is refused (415) by the route.
    const body = c.req.valid('json')
    // The tenant is checked as on every tenant route (404); the store checks the subscription.
    await registry.getTenant(tenant)
    if (deadLetters === undefined) {
      throw new TributaryError('REGISTRY_UNAVAILABLE', 'this process serves no dead-letter index')
    }
    const queued = await deadLetters.requestRedrive(tenant, id, body.ids)
    return c.json({ queued }, 202)
  })

  subscriptionStatsRoutes(app, registry, deadLetters)
}
