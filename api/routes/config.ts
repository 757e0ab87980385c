// Desired device configuration routes: read, replace and merge-patch the document of each level
// (tenant default, application version, device) and the label-selector rules with ETags, and read a
// device's effective configuration. Readers read; managers and admins write.
import type { OpenAPIHono } from '@hono/zod-openapi'
import { createRoute } from '@hono/zod-openapi'
import type { z } from '@hono/zod-openapi'
import type { MiddlewareHandler } from 'hono'
import { TributaryError } from '../../core/errors.ts'
import type { ConfigScope } from '../../core/registry/model.ts'
import type { RegistryService } from '../../core/registry/service.ts'
import { API_PREFIX, requireJson, requires } from '../auth.ts'
import type { ApiEnv } from '../env.ts'
import { etag, existingPrecondition, precondition, putPrecondition } from '../etag.ts'
import {
  AppVersionParams,
  ConfigBody,
  ConfigDocument,
  ConfigRule,
  ConfigRuleBody,
  ConfigRuleList,
  ConfigRuleParams,
  ConfigStatus,
  DeviceParams,
  EffectiveConfig,
  IfMatchHeaders,
  PutPreconditionHeaders,
  TenantParams,
} from '../schemas.ts'
import { configDocumentView, configRuleView, effectiveConfigView } from '../views.ts'
import {
  NO_CONTENT,
  READ_PROBLEMS,
  WRITE_PROBLEMS,
  jsonBody,
  jsonResponse,
  path,
  problems,
} from './common.ts'

const tags = ['config']
const TENANT_CONFIG = `${API_PREFIX}/tenants/{tenant}/config`
const DEVICE_CONFIG = `${API_PREFIX}/tenants/{tenant}/devices/{device}/config`

/** RFC 7396 §4: application/merge-patch+json; plain application/json is taken too. */
const requireMergePatch: MiddlewareHandler<ApiEnv> = async (c, next) => {
  const media = c.req.header('content-type')?.split(';', 1)[0]?.trim().toLowerCase()
  if (media === 'application/merge-patch+json') return next()
  return requireJson(c, next)
}

interface Level<P extends z.ZodObject> {
  readonly path: string
  readonly params: P
  /** operationId suffix and summary wording. */
  readonly name: string
  readonly what: string
  readonly scope: (params: z.infer<P>) => ConfigScope
}

function levelRoutes<P extends z.ZodObject>(
  app: OpenAPIHono<ApiEnv>,
  registry: RegistryService,
  level: Level<P>,
): void {
  const get = createRoute({
    method: 'get',
    path: level.path,
    operationId: `get${level.name}Config`,
    tags,
    summary: `Read the desired configuration of ${level.what}`,
    description: 'Version 0 (ETag `"0"`) and `{}` until the document is first written.',
    middleware: [requires('reader')],
    request: { params: level.params },
    responses: { 200: jsonResponse(ConfigDocument, 'The document.', 'etag'), ...problems(...READ_PROBLEMS) },
  })
  const put = createRoute({
    method: 'put',
    path: level.path,
    operationId: `put${level.name}Config`,
    tags,
    summary: `Replace the desired configuration of ${level.what}`,
    description:
      'The body is the whole document (a JSON object). Devices whose effective configuration changes get it pushed. `If-Match: "0"` or `If-None-Match: *` writes only a document never written.',
    middleware: [requires('manager'), requireJson],
    request: {
      params: level.params,
      headers: PutPreconditionHeaders,
      body: jsonBody(ConfigBody, 'The document.'),
    },
    responses: {
      200: jsonResponse(ConfigDocument, 'The new document.', 'etag'),
      ...problems(...WRITE_PROBLEMS),
    },
  })
  const patch = createRoute({
    method: 'patch',
    path: level.path,
    operationId: `patch${level.name}Config`,
    tags,
    summary: `Merge-patch the desired configuration of ${level.what}`,
    description:
      'An RFC 7396 JSON merge patch (`application/merge-patch+json`, or `application/json`): `null` removes a key, objects merge, anything else replaces.',
    middleware: [requires('manager'), requireMergePatch],
    request: {
      params: level.params,
      headers: IfMatchHeaders,
      body: {
        required: true,
        description: 'The merge patch.',
        content: { 'application/merge-patch+json': { schema: ConfigBody } },
      },
    },
    responses: {
      200: jsonResponse(ConfigDocument, 'The patched document.', 'etag'),
      ...problems(...WRITE_PROBLEMS),
    },
  })

  // The route's validators have checked params, headers and body before these run; the three levels
  // share the handlers, so they read what was checked through the untyped accessors.
  app.openapi(get, async (c) => {
    const params = c.req.param()
    const document = await registry.getConfig(tenantOf(params), level.scope(params as z.infer<P>))
    c.header('ETag', etag(document.version))
    return c.json(configDocumentView(document), 200)
  })
  app.openapi(put, async (c) => {
    const params = c.req.param()
    const asked = putPrecondition(c.req.header('if-match'), c.req.header('if-none-match'))
    // Every level always has a document (at first `{}`, version 0), so If-Match: * asks nothing.
    const pre = asked === 'exists' ? undefined : asked
    const body = await c.req.json<Record<string, unknown>>()
    const document = await registry.putConfig(tenantOf(params), level.scope(params as z.infer<P>), body, pre)
    c.header('ETag', etag(document.version))
    return c.json(configDocumentView(document), 200)
  })
  app.openapi(patch, async (c) => {
    const params = c.req.param()
    const pre = precondition(c.req.header('if-match'))
    const body: unknown = await c.req.json()
    const document = await registry.patchConfig(
      tenantOf(params),
      level.scope(params as z.infer<P>),
      body,
      pre,
    )
    c.header('ETag', etag(document.version))
    return c.json(configDocumentView(document), 200)
  })
}

function tenantOf(params: unknown): string {
  const tenant = (params as { tenant?: unknown }).tenant
  if (typeof tenant !== 'string') throw new TributaryError('REQUEST_INVALID', 'the path names no tenant')
  return tenant
}

const effective = createRoute({
  method: 'get',
  path: `${DEVICE_CONFIG}/effective`,
  operationId: 'getEffectiveConfig',
  tags,
  summary: "Read the device's effective configuration",
  description:
    'The tenant default, the document of the device’s appVersion, the rules its labels match and the device document merged, with its id (a content hash, also the ETag). This is what the device is sent.',
  middleware: [requires('reader')],
  request: { params: DeviceParams },
  responses: {
    200: jsonResponse(EffectiveConfig, 'The merged configuration; ETag: the configuration id.', 'etag'),
    ...problems(...READ_PROBLEMS),
  },
})

const RULES = `${TENANT_CONFIG}/rules`
const RULE = `${RULES}/{rule}`

const listRules = createRoute({
  method: 'get',
  path: RULES,
  operationId: 'listConfigRules',
  tags,
  summary: 'List the configuration rules',
  description: 'In the order they merge: ascending priority, then name (at most 100 per tenant).',
  middleware: [requires('reader')],
  request: { params: TenantParams },
  responses: { 200: jsonResponse(ConfigRuleList, 'The rules.'), ...problems(...READ_PROBLEMS) },
})

const getRule = createRoute({
  method: 'get',
  path: RULE,
  operationId: 'getConfigRule',
  tags,
  summary: 'Read a configuration rule',
  middleware: [requires('reader')],
  request: { params: ConfigRuleParams },
  responses: { 200: jsonResponse(ConfigRule, 'The rule.', 'etag'), ...problems(...READ_PROBLEMS) },
})

const putRule = createRoute({
  method: 'put',
  path: RULE,
  operationId: 'putConfigRule',
  tags,
  summary: 'Create or replace a configuration rule',
  description:
    'Devices whose labels include every selector pair get `config` merged after their application version’s document and before their own. Devices whose effective configuration changes get it pushed. `If-None-Match: *` creates only; `If-Match` replaces only that version.',
  middleware: [requires('manager'), requireJson],
  request: {
    params: ConfigRuleParams,
    headers: PutPreconditionHeaders,
    body: jsonBody(ConfigRuleBody, 'The rule.'),
  },
  responses: {
    200: jsonResponse(ConfigRule, 'The replaced rule.', 'etag'),
    201: jsonResponse(ConfigRule, 'The new rule.', 'etag'),
    ...problems(...WRITE_PROBLEMS),
  },
})

const patchRule = createRoute({
  method: 'patch',
  path: RULE,
  operationId: 'patchConfigRule',
  tags,
  summary: 'Merge-patch a configuration rule',
  description:
    'An RFC 7396 JSON merge patch of `{selector, priority, config}`: `{"config": {"led": null}}` removes one key of the document.',
  middleware: [requires('manager'), requireMergePatch],
  request: {
    params: ConfigRuleParams,
    headers: IfMatchHeaders,
    body: {
      required: true,
      description: 'The merge patch.',
      content: { 'application/merge-patch+json': { schema: ConfigBody } },
    },
  },
  responses: { 200: jsonResponse(ConfigRule, 'The patched rule.', 'etag'), ...problems(...WRITE_PROBLEMS) },
})

const deleteRule = createRoute({
  method: 'delete',
  path: RULE,
  operationId: 'deleteConfigRule',
  tags,
  summary: 'Delete a configuration rule',
  description: 'The devices it applied to get their configuration without it.',
  middleware: [requires('manager')],
  request: { params: ConfigRuleParams, headers: IfMatchHeaders },
  responses: { 204: NO_CONTENT, ...problems(...READ_PROBLEMS, 412) },
})

function ruleRoutes(app: OpenAPIHono<ApiEnv>, registry: RegistryService): void {
  app.openapi(listRules, async (c) => {
    const { tenant } = c.req.valid('param')
    const rules = await registry.listConfigRules(tenant)
    return c.json({ tenant, items: rules.map(configRuleView) }, 200)
  })
  app.openapi(getRule, async (c) => {
    const { tenant, rule } = c.req.valid('param')
    const found = await registry.getConfigRule(tenant, rule)
    c.header('ETag', etag(found.version))
    return c.json(configRuleView(found), 200)
  })
  app.openapi(putRule, async (c) => {
    const { tenant, rule } = c.req.valid('param')
    const headers = c.req.valid('header')
    const pre = await existingPrecondition(
      putPrecondition(headers['if-match'], headers['if-none-match']),
      () => registry.getConfigRule(tenant, rule),
      `If-Match: * but there is no rule ${rule}`,
    )
    const stored = await registry.putConfigRule(tenant, rule, c.req.valid('json'), pre)
    c.header('ETag', etag(stored.version))
    if (stored.version === 1) {
      c.header('Location', `${API_PREFIX}/tenants/${path(tenant, 'config', 'rules', rule)}`)
      return c.json(configRuleView(stored), 201)
    }
    return c.json(configRuleView(stored), 200)
  })
  app.openapi(patchRule, async (c) => {
    const { tenant, rule } = c.req.valid('param')
    const pre = precondition(c.req.header('if-match'))
    const stored = await registry.patchConfigRule(tenant, rule, await c.req.json(), pre)
    c.header('ETag', etag(stored.version))
    return c.json(configRuleView(stored), 200)
  })
  app.openapi(deleteRule, async (c) => {
    const { tenant, rule } = c.req.valid('param')
    await registry.deleteConfigRule(tenant, rule, precondition(c.req.valid('header')['if-match']))
    return c.body(null, 204)
  })
}

const status = createRoute({
  method: 'get',
  path: `${TENANT_CONFIG}/status`,
  operationId: 'getConfigStatus',
  tags,
  summary: 'Count devices by configuration id and report',
  description:
    'Each device counts once, under the configuration id it was sent last: applied (it reported 200), rejected (400-599) or pending (no report of that id yet). Devices never sent a configuration are not counted.',
  middleware: [requires('reader')],
  request: { params: TenantParams },
  responses: { 200: jsonResponse(ConfigStatus, 'The counts.'), ...problems(...READ_PROBLEMS) },
})

export function configRoutes(app: OpenAPIHono<ApiEnv>, registry: RegistryService): void {
  levelRoutes(app, registry, {
    path: TENANT_CONFIG,
    params: TenantParams,
    name: 'Tenant',
    what: 'the tenant (default of every device)',
    scope: () => ({ level: 'tenant' }),
  })
  levelRoutes(app, registry, {
    path: `${TENANT_CONFIG}/app-versions/{appVersion}`,
    params: AppVersionParams,
    name: 'AppVersion',
    what: 'the devices running one application version',
    scope: (p) => ({ level: 'app-version', appVersion: p.appVersion }),
  })
  levelRoutes(app, registry, {
    path: DEVICE_CONFIG,
    params: DeviceParams,
    name: 'Device',
    what: 'one device',
    scope: (p) => ({ level: 'device', device: p.device }),
  })

  ruleRoutes(app, registry)

  app.openapi(status, async (c) => {
    const { tenant } = c.req.valid('param')
    const items = await registry.getConfigStatus(tenant)
    return c.json({ tenant, items: items.map((i) => ({ ...i })) }, 200)
  })

  app.openapi(effective, async (c) => {
    const { tenant, device } = c.req.valid('param')
    const found = await registry.getEffectiveConfig(tenant, device)
    c.header('ETag', `"${found.configId}"`)
    return c.json(effectiveConfigView(found), 200)
  })
}
