// Webhook subscription routes: create (the signing secret returned once), list, read, change and
// delete a tenant's subscriptions, pause and resume them, and rotate the secret (replay and errors:
// subscription-operations.ts). Readers read; managers and admins write.
import type { OpenAPIHono } from '@hono/zod-openapi'
import { createRoute } from '@hono/zod-openapi'
import type { RegistryService, SubscriptionView } from '../../core/registry/service.ts'
import type { Precondition } from '../../core/registry/store.ts'
import { API_PREFIX, requireJson, requires } from '../auth.ts'
import type { ApiEnv } from '../env.ts'
import { etag, precondition } from '../etag.ts'
import {
  CreatedSubscription,
  IfMatchHeaders,
  ListQuery,
  Subscription,
  SubscriptionAction,
  SubscriptionCreate,
  SubscriptionParams,
  SubscriptionPatch,
  TenantParams,
  page,
} from '../schemas.ts'
import {
  NO_CONTENT,
  READ_PROBLEMS,
  WRITE_PROBLEMS,
  jsonBody,
  jsonResponse,
  path,
  problems,
} from './common.ts'

const SubscriptionPage = page(Subscription, 'SubscriptionPage')
const tags = ['subscriptions']
const SUBSCRIPTIONS = `${API_PREFIX}/tenants/{tenant}/subscriptions`
const SUBSCRIPTION = `${SUBSCRIPTIONS}/{id}`

/** The actions take no input: no body, or `{}`. */
const NO_INPUT = {
  required: false,
  description: 'Nothing, or `{}`.',
  content: { 'application/json': { schema: SubscriptionAction } },
}

/** Each field picked by name: the encrypted secret (or anything added later) never reaches a response. */
export function subscriptionView(s: SubscriptionView) {
  const { types, channels, devices, labels } = s.filter
  return {
    tenant: s.tenant,
    id: s.id,
    url: s.url,
    filter: {
      ...(types === undefined ? {} : { types: [...types] }),
      ...(channels === undefined ? {} : { channels: [...channels] }),
      ...(devices === undefined ? {} : { devices: [...devices] }),
      ...(labels === undefined ? {} : { labels: { ...labels } }),
    },
    mode: s.mode,
    batchSize: s.batchSize,
    headers: { ...s.headers },
    timeoutMs: s.timeoutMs,
    retry: {
      maxAttempts: s.retry.maxAttempts,
      initialBackoffMs: s.retry.initialBackoffMs,
      maxBackoffMs: s.retry.maxBackoffMs,
    },
    state: s.state,
    replayFrom: s.replayFrom,
    replayGeneration: s.replayGeneration,
    version: s.version,
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
  }
}

const list = createRoute({
  method: 'get',
  path: SUBSCRIPTIONS,
  operationId: 'listSubscriptions',
  tags,
  summary: 'List webhook subscriptions',
  description: 'Paged, in id (creation) order. Never a secret.',
  middleware: [requires('reader')],
  request: { params: TenantParams, query: ListQuery },
  responses: {
    200: jsonResponse(SubscriptionPage, 'A page of subscriptions.'),
    ...problems(...READ_PROBLEMS),
  },
})

const create = createRoute({
  method: 'post',
  path: SUBSCRIPTIONS,
  operationId: 'createSubscription',
  tags,
  summary: 'Subscribe a URL to the tenant’s events',
  description:
    'Matching events are POSTed to the URL as CloudEvents, signed per Standard Webhooks with the secret returned here only. A tenant has at most 100 subscriptions (403 past that).',
  middleware: [requires('manager'), requireJson],
  request: { params: TenantParams, body: jsonBody(SubscriptionCreate, 'The subscription.') },
  responses: {
    201: jsonResponse(CreatedSubscription, 'Created; the secret is shown this once.', 'created'),
    ...problems(...WRITE_PROBLEMS),
  },
})

const get = createRoute({
  method: 'get',
  path: SUBSCRIPTION,
  operationId: 'getSubscription',
  tags,
  summary: 'Read a webhook subscription',
  middleware: [requires('reader')],
  request: { params: SubscriptionParams },
  responses: { 200: jsonResponse(Subscription, 'The subscription.', 'etag'), ...problems(...READ_PROBLEMS) },
})

const patch = createRoute({
  method: 'patch',
  path: SUBSCRIPTION,
  operationId: 'updateSubscription',
  tags,
  summary: 'Change a webhook subscription',
  description: 'Omitted fields keep their value; `retry` fields merge into the current policy.',
  middleware: [requires('manager'), requireJson],
  request: {
    params: SubscriptionParams,
    headers: IfMatchHeaders,
    body: jsonBody(SubscriptionPatch, 'The fields to change.'),
  },
  responses: {
    200: jsonResponse(Subscription, 'The changed subscription.', 'etag'),
    ...problems(...WRITE_PROBLEMS),
  },
})

const remove = createRoute({
  method: 'delete',
  path: SUBSCRIPTION,
  operationId: 'deleteSubscription',
  tags,
  summary: 'Delete a webhook subscription',
  middleware: [requires('manager')],
  request: { params: SubscriptionParams, headers: IfMatchHeaders },
  responses: { 204: NO_CONTENT, ...problems(...READ_PROBLEMS, 412) },
})

function action(name: 'pause' | 'resume', operationId: string, summary: string, description: string) {
  return createRoute({
    method: 'post',
    path: `${SUBSCRIPTION}/${name}`,
    operationId,
    tags,
    summary,
    description,
    middleware: [requires('manager')],
    request: { params: SubscriptionParams, headers: IfMatchHeaders, body: NO_INPUT },
    responses: {
      200: jsonResponse(Subscription, 'The subscription in its new state.', 'etag'),
      ...problems(...READ_PROBLEMS, 412),
    },
  })
}

const pause = action(
  'pause',
  'pauseSubscription',
  'Pause a webhook subscription',
  'Nothing is delivered until it is resumed. Pausing a paused subscription changes nothing.',
)
const resume = action(
  'resume',
  'resumeSubscription',
  'Resume a webhook subscription',
  'Makes a paused subscription, or one disabled because its endpoint answered 410 Gone, active again.',
)

const rotate = createRoute({
  method: 'post',
  path: `${SUBSCRIPTION}/rotate-secret`,
  operationId: 'rotateSubscriptionSecret',
  tags,
  summary: 'Rotate the signing secret of a webhook subscription',
  description: 'Generates a new secret, returned this once; deliveries are signed with it from now on.',
  middleware: [requires('manager')],
  request: { params: SubscriptionParams, headers: IfMatchHeaders, body: NO_INPUT },
  responses: {
    200: jsonResponse(CreatedSubscription, 'The new secret, shown this once.', 'etag'),
    ...problems(...READ_PROBLEMS, 412),
  },
})

export function subscriptionRoutes(app: OpenAPIHono<ApiEnv>, registry: RegistryService): void {
  app.openapi(list, async (c) => {
    const { limit, after } = c.req.valid('query')
    const result = await registry.listSubscriptions(c.req.valid('param').tenant, { limit, after })
    return c.json({ items: result.items.map(subscriptionView), next: result.next }, 200)
  })

  app.openapi(create, async (c) => {
    const { tenant } = c.req.valid('param')
    const created = await registry.createSubscription(tenant, c.req.valid('json'))
    const subscription = subscriptionView(created.subscription)
    c.header('Location', `${API_PREFIX}/tenants/${path(tenant, 'subscriptions', subscription.id)}`)
    c.header('ETag', etag(subscription.version))
    return c.json({ subscription, secret: created.secret }, 201)
  })

  app.openapi(get, async (c) => {
    const { tenant, id } = c.req.valid('param')
    const found = await registry.getSubscription(tenant, id)
    c.header('ETag', etag(found.version))
    return c.json(subscriptionView(found), 200)
  })

  app.openapi(patch, async (c) => {
    const { tenant, id } = c.req.valid('param')
    const pre = precondition(c.req.valid('header')['if-match'])
    const updated = await registry.updateSubscription(tenant, id, c.req.valid('json'), pre)
    c.header('ETag', etag(updated.version))
    return c.json(subscriptionView(updated), 200)
  })

  app.openapi(remove, async (c) => {
    const { tenant, id } = c.req.valid('param')
    await registry.deleteSubscription(tenant, id, precondition(c.req.valid('header')['if-match']))
    return c.body(null, 204)
  })

  for (const [route, run] of [
    [pause, (t: string, id: string, pre?: Precondition) => registry.pauseSubscription(t, id, pre)],
    [resume, (t: string, id: string, pre?: Precondition) => registry.resumeSubscription(t, id, pre)],
  ] as const) {
    app.openapi(route, async (c) => {
      const { tenant, id } = c.req.valid('param')
      const changed = await run(tenant, id, precondition(c.req.valid('header')['if-match']))
      c.header('ETag', etag(changed.version))
      return c.json(subscriptionView(changed), 200)
    })
  }

  app.openapi(rotate, async (c) => {
    const { tenant, id } = c.req.valid('param')
    const rotated = await registry.rotateSubscriptionSecret(
      tenant,
      id,
      precondition(c.req.valid('header')['if-match']),
    )
    c.header('ETag', etag(rotated.subscription.version))
    return c.json({ subscription: subscriptionView(rotated.subscription), secret: rotated.secret }, 200)
  })
}
