// The OpenAPI 3.1 document is generated from the route schemas, validates against the OpenAPI 3.1
// schema, describes every operation fully, and the reference page renders all of it offline.
import SwaggerParser from '@apidevtools/swagger-parser'
import { describe, expect, it } from 'vitest'
import { createApiApp } from '../../api/app.ts'
import { createBearerAuthenticator } from '../../core/auth/bearer.ts'
import { createOidcVerifier } from '../../core/auth/oidc.ts'
import { silentLogger } from '../../core/log.ts'
import { noLookups, stubRegistry } from './stubs.ts'

const auth = createBearerAuthenticator({
  lookups: noLookups,
  oidc: createOidcVerifier({ jwksCacheMs: 60_000, log: silentLogger }),
})
const { app, document } = createApiApp({
  registry: stubRegistry(),
  auth,
  lookups: noLookups,
  maxBodyBytes: 65_536,
  log: silentLogger,
})

type Operation = {
  operationId: string
  summary: string
  parameters?: Array<{ name: string; in: string }>
  requestBody?: { content: Record<string, unknown> }
  responses: Record<string, { content?: Record<string, unknown> }>
}
const paths = document['paths'] as Record<string, Record<string, Operation>>
const operations = Object.entries(paths).flatMap(([path, ops]) =>
  Object.entries(ops).map(([method, op]) => ({ path, method, op })),
)

describe('OpenAPI document', () => {
  it('validates as OpenAPI 3.1', async () => {
    expect(document['openapi']).toBe('3.1.0')
    await expect(SwaggerParser.validate(structuredClone(document) as never)).resolves.toBeDefined()
  })

  it('lists every route of the API', () => {
    expect(operations.map(({ method, path }) => `${method.toUpperCase()} ${path}`).sort()).toEqual(
      [
        'GET /api/v1/tenants',
        'POST /api/v1/tenants',
        'GET /api/v1/tenants/{tenant}',
        'PATCH /api/v1/tenants/{tenant}',
        'DELETE /api/v1/tenants/{tenant}',
        'GET /api/v1/tenants/{tenant}/devices',
        'POST /api/v1/tenants/{tenant}/devices',
        'GET /api/v1/tenants/{tenant}/devices/{device}',
        'PATCH /api/v1/tenants/{tenant}/devices/{device}',
        'DELETE /api/v1/tenants/{tenant}/devices/{device}',
        'PUT /api/v1/tenants/{tenant}/devices/{device}/password',
        'GET /api/v1/tenants/{tenant}/devices/{device}/credentials',
        'POST /api/v1/tenants/{tenant}/devices/{device}/credentials',
        'GET /api/v1/tenants/{tenant}/devices/{device}/credentials/{id}',
        'PATCH /api/v1/tenants/{tenant}/devices/{device}/credentials/{id}',
        'DELETE /api/v1/tenants/{tenant}/devices/{device}/credentials/{id}',
        'GET /api/v1/tenants/{tenant}/tokens',
        'POST /api/v1/tenants/{tenant}/tokens',
        'GET /api/v1/tenants/{tenant}/tokens/{id}',
        'DELETE /api/v1/tenants/{tenant}/tokens/{id}',
        'PUT /api/v1/tenants/{tenant}/ttn-secret',
        'GET /api/v1/tenants/{tenant}/schemas',
        'GET /api/v1/tenants/{tenant}/schemas/{channel}',
        'PUT /api/v1/tenants/{tenant}/schemas/{channel}',
        'DELETE /api/v1/tenants/{tenant}/schemas/{channel}',
        'GET /api/v1/tenants/{tenant}/routes',
        'PUT /api/v1/tenants/{tenant}/routes',
        'GET /api/v1/tenants/{tenant}/config',
        'GET /api/v1/tenants/{tenant}/config/status',
        'GET /api/v1/tenants/{tenant}/config/rules',
        'GET /api/v1/tenants/{tenant}/config/rules/{rule}',
        'PUT /api/v1/tenants/{tenant}/config/rules/{rule}',
        'PATCH /api/v1/tenants/{tenant}/config/rules/{rule}',
        'DELETE /api/v1/tenants/{tenant}/config/rules/{rule}',
        'PUT /api/v1/tenants/{tenant}/config',
        'PATCH /api/v1/tenants/{tenant}/config',
        'GET /api/v1/tenants/{tenant}/config/app-versions/{appVersion}',
        'PUT /api/v1/tenants/{tenant}/config/app-versions/{appVersion}',
        'PATCH /api/v1/tenants/{tenant}/config/app-versions/{appVersion}',
        'GET /api/v1/tenants/{tenant}/devices/{device}/config',
        'PUT /api/v1/tenants/{tenant}/devices/{device}/config',
        'PATCH /api/v1/tenants/{tenant}/devices/{device}/config',
        'GET /api/v1/tenants/{tenant}/devices/{device}/config/effective',
        'GET /api/v1/tenants/{tenant}/dead-letters',
        'GET /api/v1/tenants/{tenant}/subscriptions',
        'POST /api/v1/tenants/{tenant}/subscriptions',
        'GET /api/v1/tenants/{tenant}/subscriptions/{id}',
        'PATCH /api/v1/tenants/{tenant}/subscriptions/{id}',
        'DELETE /api/v1/tenants/{tenant}/subscriptions/{id}',
        'POST /api/v1/tenants/{tenant}/subscriptions/{id}/pause',
        'POST /api/v1/tenants/{tenant}/subscriptions/{id}/resume',
        'POST /api/v1/tenants/{tenant}/subscriptions/{id}/rotate-secret',
        'GET /api/v1/tenants/{tenant}/subscriptions/{id}/dead-letters',
        'POST /api/v1/tenants/{tenant}/subscriptions/{id}/replay',
        'GET /api/v1/tenants/{tenant}/subscriptions/{id}/stats',
        'POST /api/v1/tenants/{tenant}/subscriptions/{id}/dead-letters/redrive',
        'POST /api/v1/tenants/{tenant}/devices/{device}/commands/{name}',
        'GET /api/v1/tenants/{tenant}/subscriptions/{id}/errors',
        'GET /api/v1/whoami',
        'GET /api/v1/tenants/{tenant}/events',
      ].sort(),
    )
  })

  it('describes each operation: id, summary, path parameters, JSON bodies (a command: any type) and problem responses', () => {
    for (const { path, method, op } of operations) {
      const label = `${method} ${path}`
      expect(op.operationId, label).toMatch(/^[a-z][A-Za-z]+$/)
      expect(op.summary, label).not.toBe('')
      const pathParams = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1])
      expect(op.parameters?.filter((p) => p.in === 'path').map((p) => p.name) ?? [], label).toEqual(
        pathParams,
      )
      // A command's body is its payload, of any media type; a configuration PATCH is a JSON merge patch.
      const bodyType =
        op.operationId === 'sendCommand'
          ? 'application/octet-stream'
          : method === 'patch' && /\/config(\/|$)/.test(path)
            ? 'application/merge-patch+json'
            : 'application/json'
      if (['post', 'put', 'patch'].includes(method))
        expect(Object.keys(op.requestBody?.content ?? {}), label).toEqual([bodyType])
      expect(op.responses['401']?.content, label).toHaveProperty(['application/problem+json'])
      if (method === 'patch' || method === 'delete') expect(op.responses, label).toHaveProperty('412')
    }
    expect(document['security']).toEqual([{ bearer: [] }])
  })

  it('forbids unknown fields in every request body schema', () => {
    const schemas = (
      document['components'] as { schemas: Record<string, { additionalProperties?: unknown }> }
    ).schemas
    for (const name of [
      'TenantCreate',
      'TenantPatch',
      'DeviceCreate',
      'DevicePatch',
      'CredentialPatch',
      'PasswordInput',
      'ApiTokenCreate',
      'TtnSecretInput',
      'ChannelSchemaInput',
      'RouteTableInput',
      'RouteRule',
      'RouteMatch',
    ]) {
      expect(schemas[name]?.additionalProperties, name).toBe(false)
    }
  })

  it('is served at /api/v1/openapi.json without credentials', async () => {
    const reply = await app.request('/api/v1/openapi.json')
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-type')).toContain('application/json')
    expect(await reply.json()).toEqual(document)
  })
})

describe('reference page', () => {
  it('renders every operation, parameter and schema into one self-contained page', async () => {
    const reply = await app.request('/api/v1/docs')
    expect(reply.status).toBe(200)
    expect(reply.headers.get('content-type')).toContain('text/html')
    const html = await reply.text()
    expect(html).not.toMatch(/<script|<link|https?:\/\/(?!tributary\.dev)[^"'\s<]*\.(js|css)/)
    for (const { path, method, op } of operations) {
      expect(html).toContain(`id="op-${op.operationId}"`)
      expect(html).toContain(`<span class="m ${method}">${method.toUpperCase()}</span> <code>${path}</code>`)
      for (const parameter of op.parameters ?? []) expect(html).toContain(`<code>${parameter.name}</code>`)
    }
    for (const name of Object.keys((document['components'] as { schemas: object }).schemas)) {
      expect(html).toContain(`id="schema-${name}"`)
    }
    expect(html).toContain('href="#schema-Problem"')
  })

  it('shows code spans as code, and the title without a stray version number', async () => {
    const html = await (await app.request('/api/v1/docs')).text()
    const text = html.replace(/<style>[\s\S]*?<\/style>/, '')
    expect(text).not.toContain('`')
    expect(text).toContain('The <code>webhook-id</code> of the request.')
    expect(text).toContain('<h1>Tributary management API</h1>')
    expect(text).toContain('<small>version 1, OpenAPI 3.1.0</small>')
  })

  it('describes the event WebSocket: subprotocol, query and the 426 of a plain GET', async () => {
    const html = await (await app.request('/api/v1/docs')).text()
    expect(html).toContain('id="op-streamEvents"')
    expect(html).toContain('<code>cloudevents.json</code>')
    for (const name of ['channel', 'device', 'type', 'from', 'group', 'access_token'])
      expect(html).toContain(`<code>${name}</code>`)
    expect(html).toMatch(/<td>426<\/td><td>Upgrade Required/)
  })
})

describe('a plain GET of the event WebSocket', () => {
  it('answers 426 Upgrade Required with Upgrade: websocket, with or without credentials', async () => {
    for (const headers of [{}, { authorization: 'Bearer tat_nope_nope' }]) {
      const reply = await app.request('/api/v1/tenants/demo/events?from=earliest', { headers })
      expect(reply.status).toBe(426)
      expect(reply.headers.get('upgrade')).toBe('websocket')
      expect(reply.headers.get('content-type')).toBe('application/problem+json')
      expect(await reply.json()).toMatchObject({
        status: 426,
        code: 'UPGRADE_REQUIRED',
        title: 'Upgrade required',
        detail: expect.stringContaining('Upgrade: websocket and the subprotocol cloudevents.json') as string,
      })
    }
  })
})
