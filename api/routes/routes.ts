// Route table routes: read and replace a tenant's route rules as one document with an ETag.
// Readers read; managers and admins write.
import type { OpenAPIHono } from '@hono/zod-openapi'
import { createRoute } from '@hono/zod-openapi'
import type { RouteRule } from '../../core/registry/model.ts'
import type { RegistryService } from '../../core/registry/service.ts'
import { API_PREFIX, requireJson, requires } from '../auth.ts'
import type { ApiEnv } from '../env.ts'
import { etag, putPrecondition } from '../etag.ts'
import { PutPreconditionHeaders, RouteTable, RouteTableInput, TenantParams } from '../schemas.ts'
import { routeTableView } from '../views.ts'
import { READ_PROBLEMS, WRITE_PROBLEMS, jsonBody, jsonResponse, problems } from './common.ts'

const tags = ['routes']
const ROUTES = `${API_PREFIX}/tenants/{tenant}/routes`

const get = createRoute({
  method: 'get',
  path: ROUTES,
  operationId: 'getRouteTable',
  tags,
  summary: "Read the tenant's route rules",
  description: 'Version 0 (ETag `"0"`) and no rules until the table is first written.',
  middleware: [requires('reader')],
  request: { params: TenantParams },
  responses: { 200: jsonResponse(RouteTable, 'The route table.', 'etag'), ...problems(...READ_PROBLEMS) },
})

const put = createRoute({
  method: 'put',
  path: ROUTES,
  operationId: 'putRouteTable',
  tags,
  summary: "Replace the tenant's route rules",
  description:
    'The processors apply every rule whose match fits, in order, to each accepted event: `drop`, `reject` (dead letter with the reason), `set-extension`, `remove-extension`, `set-type`, `set-subject`, `copy` (also publish to `<prefix>.events.<tenant>.<topic>`). At most 100 rules of 1-16 actions. `If-Match: "0"` or `If-None-Match: *` writes only a table never written.',
  middleware: [requires('manager'), requireJson],
  request: {
    params: TenantParams,
    headers: PutPreconditionHeaders,
    body: jsonBody(RouteTableInput, 'Every rule of the table, in order.'),
  },
  responses: {
    200: jsonResponse(RouteTable, 'The new route table.', 'etag'),
    ...problems(...WRITE_PROBLEMS),
  },
})

export function routeRoutes(app: OpenAPIHono<ApiEnv>, registry: RegistryService): void {
  app.openapi(get, async (c) => {
    const table = await registry.getRouteTable(c.req.valid('param').tenant)
    c.header('ETag', etag(table.version))
    return c.json(routeTableView(table), 200)
  })

  app.openapi(put, async (c) => {
    const { tenant } = c.req.valid('param')
    const headers = c.req.valid('header')
    const asked = putPrecondition(headers['if-match'], headers['if-none-match'])
    // A tenant always has a route table (at first empty, version 0), so If-Match: * asks nothing.
    const pre = asked === 'exists' ? undefined : asked
    const rules = c.req.valid('json').rules as readonly RouteRule[]
    const table = await registry.putRouteTable(tenant, rules, pre)
    c.header('ETag', etag(table.version))
    return c.json(routeTableView(table), 200)
  })
}
