// Channel schema routes: list a tenant's schemas, and create or replace, read and delete the JSON
// Schema of one channel (percent-encoded in the path). Readers read; managers and admins write.
import type { OpenAPIHono } from '@hono/zod-openapi'
import { createRoute } from '@hono/zod-openapi'
import type { RegistryService } from '../../core/registry/service.ts'
import { API_PREFIX, requireJson, requires } from '../auth.ts'
import type { ApiEnv } from '../env.ts'
import { etag, existingPrecondition, precondition, putPrecondition } from '../etag.ts'
import {
  ChannelParams,
  ChannelSchema,
  ChannelSchemaInput,
  IfMatchHeaders,
  ListQuery,
  PutPreconditionHeaders,
  TenantParams,
  page,
} from '../schemas.ts'
import { channelSchemaView } from '../views.ts'
import {
  NO_CONTENT,
  READ_PROBLEMS,
  WRITE_PROBLEMS,
  jsonBody,
  jsonResponse,
  path,
  problems,
} from './common.ts'

const ChannelSchemaPage = page(ChannelSchema, 'ChannelSchemaPage')
const tags = ['schemas']
const SCHEMAS = `${API_PREFIX}/tenants/{tenant}/schemas`
const SCHEMA = `${SCHEMAS}/{channel}`

const list = createRoute({
  method: 'get',
  path: SCHEMAS,
  operationId: 'listChannelSchemas',
  tags,
  summary: 'List channel schemas',
  description: 'Paged, in channel order.',
  middleware: [requires('reader')],
  request: { params: TenantParams, query: ListQuery },
  responses: {
    200: jsonResponse(ChannelSchemaPage, 'A page of channel schemas.'),
    ...problems(...READ_PROBLEMS),
  },
})

const put = createRoute({
  method: 'put',
  path: SCHEMA,
  operationId: 'putChannelSchema',
  tags,
  summary: "Create or replace a channel's schema",
  description:
    'The processors check the data of every event on the channel (its `subject`) against the schema and dead-letter what fails (reason `schema-invalid`). The schema must compile; a tenant has at most 1000 schemas (403 past that).',
  middleware: [requires('manager'), requireJson],
  request: {
    params: ChannelParams,
    headers: PutPreconditionHeaders,
    body: jsonBody(ChannelSchemaInput, 'The JSON Schema of the channel’s event data.'),
  },
  responses: {
    200: jsonResponse(ChannelSchema, 'Replaced.', 'etag'),
    201: jsonResponse(ChannelSchema, 'Created.', 'created'),
    ...problems(...WRITE_PROBLEMS),
  },
})

const get = createRoute({
  method: 'get',
  path: SCHEMA,
  operationId: 'getChannelSchema',
  tags,
  summary: "Read a channel's schema",
  middleware: [requires('reader')],
  request: { params: ChannelParams },
  responses: { 200: jsonResponse(ChannelSchema, 'The schema.', 'etag'), ...problems(...READ_PROBLEMS) },
})

const remove = createRoute({
  method: 'delete',
  path: SCHEMA,
  operationId: 'deleteChannelSchema',
  tags,
  summary: "Delete a channel's schema",
  description: 'Events on the channel are no longer checked.',
  middleware: [requires('manager')],
  request: { params: ChannelParams, headers: IfMatchHeaders },
  responses: { 204: NO_CONTENT, ...problems(...READ_PROBLEMS, 412) },
})

export function schemaRoutes(app: OpenAPIHono<ApiEnv>, registry: RegistryService): void {
  app.openapi(list, async (c) => {
    const query = c.req.valid('query')
    const result = await registry.listChannelSchemas(c.req.valid('param').tenant, {
      limit: query.limit,
      after: query.after,
    })
    return c.json({ items: result.items.map(channelSchemaView), next: result.next }, 200)
  })

  app.openapi(put, async (c) => {
    const { tenant, channel } = c.req.valid('param')
    const headers = c.req.valid('header')
    const pre = await existingPrecondition(
      putPrecondition(headers['if-match'], headers['if-none-match']),
      () => registry.getChannelSchema(tenant, channel),
      'If-Match: * but the channel has no schema',
    )
    const stored = await registry.putChannelSchema(tenant, channel, c.req.valid('json').schema, pre)
    c.header('ETag', etag(stored.version))
    // Version 1 is a new row: created now (a schema deleted and put again starts over).
    if (stored.version === 1) {
      c.header('Location', `${API_PREFIX}/tenants/${path(tenant, 'schemas', channel)}`)
      return c.json(channelSchemaView(stored), 201)
    }
    return c.json(channelSchemaView(stored), 200)
  })

  app.openapi(get, async (c) => {
    const { tenant, channel } = c.req.valid('param')
    const found = await registry.getChannelSchema(tenant, channel)
    c.header('ETag', etag(found.version))
    return c.json(channelSchemaView(found), 200)
  })

  app.openapi(remove, async (c) => {
    const { tenant, channel } = c.req.valid('param')
    const pre = precondition(c.req.valid('header')['if-match'])
    await registry.deleteChannelSchema(tenant, channel, pre)
    return c.body(null, 204)
  })
}
