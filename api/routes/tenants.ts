// Tenant routes: only the admin token creates, lists all and deletes tenants; a tenant's own callers
// read it, and its admins change its OIDC issuer, authentication methods, trust anchors and settings.
import { isDeepStrictEqual } from 'node:util'
import type { OpenAPIHono } from '@hono/zod-openapi'
import { createRoute } from '@hono/zod-openapi'
import { TributaryError } from '../../core/errors.ts'
import type { RegistryService, TenantInput } from '../../core/registry/service.ts'
import { OPERATOR_SETTINGS } from '../../core/registry/validate-tenant.ts'
import type { z } from 'zod'
import { API_PREFIX, requireJson, requires } from '../auth.ts'
import type { ApiEnv } from '../env.ts'
import { etag, precondition } from '../etag.ts'
import {
  IfMatchHeaders,
  ListQuery,
  Tenant,
  TenantCreate,
  TenantParams,
  TenantPatch,
  page,
} from '../schemas.ts'
import { tenantView } from '../views.ts'
import {
  NO_CONTENT,
  READ_PROBLEMS,
  WRITE_PROBLEMS,
  jsonBody,
  jsonResponse,
  path,
  problems,
} from './common.ts'

const TenantPage = page(Tenant, 'TenantPage')
const tags = ['tenants']

const list = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants`,
  operationId: 'listTenants',
  tags,
  summary: 'List tenants',
  description: 'The admin token sees every tenant; any other caller sees only its own.',
  middleware: [requires('authenticated')],
  request: { query: ListQuery },
  responses: { 200: jsonResponse(TenantPage, 'A page of tenants.'), ...problems(...READ_PROBLEMS) },
})

const create = createRoute({
  method: 'post',
  path: `${API_PREFIX}/tenants`,
  operationId: 'createTenant',
  tags,
  summary: 'Create a tenant (admin token only)',
  middleware: [requires('global-admin'), requireJson],
  request: { body: jsonBody(TenantCreate, 'The tenant id and its settings.') },
  responses: { 201: jsonResponse(Tenant, 'Created.', 'created'), ...problems(...WRITE_PROBLEMS) },
})

const get = createRoute({
  method: 'get',
  path: `${API_PREFIX}/tenants/{tenant}`,
  operationId: 'getTenant',
  tags,
  summary: 'Read a tenant',
  middleware: [requires('reader')],
  request: { params: TenantParams },
  responses: { 200: jsonResponse(Tenant, 'The tenant.', 'etag'), ...problems(...READ_PROBLEMS) },
})

const patch = createRoute({
  method: 'patch',
  path: `${API_PREFIX}/tenants/{tenant}`,
  operationId: 'updateTenant',
  tags,
  summary: 'Change a tenant',
  description:
    'Fields left out keep their value. `enabled`, `quotas` and the topic settings (`settings.topicPartitions`, `settings.topicRetentionMs`) only the admin token may change; the tenant admin role may change the rest.',
  middleware: [requires('admin'), requireJson],
  request: {
    params: TenantParams,
    headers: IfMatchHeaders,
    body: jsonBody(TenantPatch, 'The fields to change.'),
  },
  responses: { 200: jsonResponse(Tenant, 'The changed tenant.', 'etag'), ...problems(...WRITE_PROBLEMS) },
})

const remove = createRoute({
  method: 'delete',
  path: `${API_PREFIX}/tenants/{tenant}`,
  operationId: 'deleteTenant',
  tags,
  summary: 'Delete a tenant with its devices, credentials and tokens (admin token only)',
  middleware: [requires('global-admin')],
  request: { params: TenantParams, headers: IfMatchHeaders },
  responses: { 204: NO_CONTENT, ...problems(...READ_PROBLEMS, 412) },
})

type TenantFields = z.infer<typeof TenantPatch>

/** The fields a body gives (a quota left out keeps its value; null is a value: no limit). */
function definedOnly<T extends object>(fields: T): { [K in keyof T]?: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]?: Exclude<T[K], undefined>
  }
}

function toInput(body: TenantFields): TenantInput {
  return {
    enabled: body.enabled,
    oidc:
      body.oidc === undefined || body.oidc === null
        ? body.oidc
        : {
            issuer: body.oidc.issuer,
            audience: body.oidc.audience,
            jwksUri: body.oidc.jwksUri,
            jwks: body.oidc.jwks,
            rolesClaim: body.oidc.rolesClaim ?? 'roles',
          },
    quotas: body.quotas === undefined ? undefined : definedOnly(body.quotas),
    authMethods: body.authMethods,
    trustAnchors: body.trustAnchors,
    settings: body.settings,
  }
}

/** Refuses a settings object that changes (or drops) a setting only the operator may change. */
async function keepOperatorSettings(
  registry: RegistryService,
  id: string,
  settings: Readonly<Record<string, unknown>>,
): Promise<void> {
  const current = (await registry.getTenant(id)).settings
  for (const key of OPERATOR_SETTINGS) {
    if (!isDeepStrictEqual(settings[key], current[key])) {
      throw new TributaryError('AUTH_FORBIDDEN', `only the admin token may change settings.${key}`)
    }
  }
}

export function tenantRoutes(app: OpenAPIHono<ApiEnv>, registry: RegistryService): void {
  app.openapi(list, async (c) => {
    const principal = c.get('principal')
    if (principal.kind !== 'admin') {
      const own = await registry.getTenant(principal.tenant)
      return c.json({ items: [tenantView(own)], next: null }, 200)
    }
    const query = c.req.valid('query')
    const result = await registry.listTenants({ limit: query.limit, after: query.after })
    return c.json({ items: result.items.map(tenantView), next: result.next }, 200)
  })

  app.openapi(create, async (c) => {
    const { id, ...fields } = c.req.valid('json')
    const tenant = await registry.createTenant(id, toInput(fields))
    c.header('Location', `${API_PREFIX}/tenants/${path(tenant.id)}`)
    c.header('ETag', etag(tenant.version))
    return c.json(tenantView(tenant), 201)
  })

  app.openapi(get, async (c) => {
    const tenant = await registry.getTenant(c.req.valid('param').tenant)
    c.header('ETag', etag(tenant.version))
    return c.json(tenantView(tenant), 200)
  })

  app.openapi(patch, async (c) => {
    const { tenant: id } = c.req.valid('param')
    const body = c.req.valid('json')
    const pre = precondition(c.req.valid('header')['if-match'])
    // A tenant's own admin may not lift its quotas, size its topics or re-enable itself.
    if (c.get('principal').kind !== 'admin') {
      if (body.quotas !== undefined || body.enabled !== undefined) {
        throw new TributaryError('AUTH_FORBIDDEN', 'only the admin token may change enabled or quotas')
      }
      if (body.settings !== undefined) await keepOperatorSettings(registry, id, body.settings)
    }
    const tenant = await registry.updateTenant(id, toInput(body), pre)
    c.header('ETag', etag(tenant.version))
    return c.json(tenantView(tenant), 200)
  })

  app.openapi(remove, async (c) => {
    const pre = precondition(c.req.valid('header')['if-match'])
    await registry.deleteTenant(c.req.valid('param').tenant, pre)
    return c.body(null, 204)
  })
}
