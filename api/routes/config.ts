// Desired device configuration routes: read, replace and merge-patch the document of each level
// (tenant default, application version, device) with ETags, and read a device's effective
// configuration. Readers read; managers and admins write.
import type { OpenAPIHono } from '@hono/zod-openapi'
import { createRoute } from '@hono/zod-openapi'
import type { z } from '@hono/zod-openapi'
import type { MiddlewareHandler } from 'hono'
import { TributaryError } from '../../core/errors.ts'
import type { ConfigScope } from '../../core/registry/model.ts'
import type { RegistryService } from '../../core/registry/service.ts'
import { API_PREFIX, requireJson, requires } from '../auth.ts'
import type { ApiEnv } from '../env.ts'
import { etag, precondition, putPrecondition } from '../etag.ts'
import {
  AppVersionParams,
  ConfigBody,
  ConfigDocument,
  ConfigStatus,
  DeviceParams,
  EffectiveConfig,
  IfMatchHeaders,
  PutPreconditionHeaders,
  TenantParams,
} from '../schemas.ts'
import { configDocumentView, effectiveConfigView } from '../views.ts'
import { READ_PROBLEMS, WRITE_PROBLEMS, jsonBody, jsonResponse, problems } from './common.ts'

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
    'The tenant default, the document of the device’s appVersion and the device document merged, with its id (a content hash, also the ETag). This is what the device is sent.',
  middleware: [requires('reader')],
  request: { params: DeviceParams },
  responses: {
    200: jsonResponse(EffectiveConfig, 'The merged configuration; ETag: the configuration id.', 'etag'),
    ...problems(...READ_PROBLEMS),
  },
})

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
