// API token routes (tenant admins only) and whoami. A created token's secret is returned once.
import type { OpenAPIHono } from '@hono/zod-openapi'
import { createRoute } from '@hono/zod-openapi'
import type { RegistryService } from '../../core/registry/service.ts'
import { API_PREFIX, requireJson, requires } from '../auth.ts'
import type { ApiEnv } from '../env.ts'
import { etag, precondition } from '../etag.ts'
import {
  ApiToken,
  ApiTokenCreate,
  CreatedApiToken,
  IfMatchHeaders,
  ListQuery,
  TenantParams,
  TokenParams,
  Whoami,
  WhoamiQuery,
  page,
} from '../schemas.ts'
import { apiTokenView } from '../views.ts'
import {
  NO_CONTENT,
  READ_PROBLEMS,
  WRITE_PROBLEMS,
  jsonBody,
  jsonResponse,
  path,
  problems,
} from './common.ts'

const ApiTokenPage = page(ApiToken, 'ApiTokenPage')
const tags = ['tokens']
const TOKENS = `${API_PREFIX}/tenants/{tenant}/tokens`

const list = createRoute({
  method: 'get',
  path: TOKENS,
  operationId: 'listApiTokens',
  tags,
  summary: 'List API tokens (tenant admin)',
  middleware: [requires('admin')],
  request: { params: TenantParams, query: ListQuery },
  responses: {
    200: jsonResponse(ApiTokenPage, 'A page of tokens (never a secret).'),
    ...problems(...READ_PROBLEMS),
  },
})

const create = createRoute({
  method: 'post',
  path: TOKENS,
  operationId: 'createApiToken',
  tags,
  summary: 'Create an API token (tenant admin)',
  middleware: [requires('admin'), requireJson],
  request: { params: TenantParams, body: jsonBody(ApiTokenCreate, 'Name, role and expiry.') },
  responses: {
    201: jsonResponse(CreatedApiToken, 'Created; `secret` is shown this once.', 'created'),
    ...problems(...WRITE_PROBLEMS),
  },
})

const get = createRoute({
  method: 'get',
  path: `${TOKENS}/{id}`,
  operationId: 'getApiToken',
  tags,
  summary: 'Read an API token (tenant admin)',
  middleware: [requires('admin')],
  request: { params: TokenParams },
  responses: {
    200: jsonResponse(ApiToken, 'The token (never its secret).', 'etag'),
    ...problems(...READ_PROBLEMS),
  },
})

const remove = createRoute({
  method: 'delete',
  path: `${TOKENS}/{id}`,
  operationId: 'deleteApiToken',
  tags,
  summary: 'Revoke an API token (tenant admin)',
  middleware: [requires('admin')],
  request: { params: TokenParams, headers: IfMatchHeaders },
  responses: { 204: NO_CONTENT, ...problems(...READ_PROBLEMS, 412) },
})

const whoami = createRoute({
  method: 'get',
  path: `${API_PREFIX}/whoami`,
  operationId: 'whoami',
  tags: ['identity'],
  summary: "The caller's identity and roles",
  description: 'An OIDC token is checked against the issuer of the tenant named by `tenant`.',
  middleware: [requires('authenticated')],
  request: { query: WhoamiQuery },
  responses: {
    200: jsonResponse(Whoami, 'Who the bearer token stands for.'),
    ...problems(400, 401, 403, 503),
  },
})

export function tokenRoutes(app: OpenAPIHono<ApiEnv>, registry: RegistryService): void {
  app.openapi(list, async (c) => {
    const query = c.req.valid('query')
    const result = await registry.listApiTokens(c.req.valid('param').tenant, {
      limit: query.limit,
      after: query.after,
    })
    return c.json({ items: result.items.map(apiTokenView), next: result.next }, 200)
  })

  app.openapi(create, async (c) => {
    const { tenant } = c.req.valid('param')
    const created = await registry.createApiToken(tenant, c.req.valid('json'))
    const token = apiTokenView(created.token)
    c.header('Location', `${API_PREFIX}/tenants/${path(tenant, 'tokens', token.id)}`)
    c.header('ETag', etag(token.version))
    return c.json({ token, secret: created.secret }, 201)
  })

  app.openapi(get, async (c) => {
    const { tenant, id } = c.req.valid('param')
    const token = await registry.getApiToken(tenant, id)
    c.header('ETag', etag(token.version))
    return c.json(apiTokenView(token), 200)
  })

  app.openapi(remove, async (c) => {
    const { tenant, id } = c.req.valid('param')
    const pre = precondition(c.req.valid('header')['if-match'])
    await registry.deleteApiToken(tenant, id, pre)
    return c.body(null, 204)
  })

  app.openapi(whoami, (c) => {
    const p = c.get('principal')
    return c.json(
      {
        kind: p.kind,
        subject: p.subject,
        tenant: p.tenant,
        roles: [...p.roles],
        globalAdmin: p.kind === 'admin',
      },
      200,
    )
  })
}
