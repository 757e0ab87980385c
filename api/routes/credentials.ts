// Device credential routes: password, X.509 (subject CN or fingerprint), TLS-PSK and bearer device
// tokens. A generated secret (token, PSK key) is returned once, in the 201 of its creation.
import type { OpenAPIHono } from '@hono/zod-openapi'
import { createRoute } from '@hono/zod-openapi'
import type { z } from 'zod'
import { decodeCursor, encodeCursor } from '../../core/registry/cursor.ts'
import type { CredentialInput, RegistryService } from '../../core/registry/service.ts'
import { API_PREFIX, requireJson, requires } from '../auth.ts'
import type { ApiEnv } from '../env.ts'
import { etag, precondition } from '../etag.ts'
import {
  CreatedCredential,
  Credential,
  CredentialCreate,
  CredentialParams,
  CredentialPatch,
  DeviceParams,
  IfMatchHeaders,
  ListQuery,
  page,
} from '../schemas.ts'
import { credentialView } from '../views.ts'
import {
  NO_CONTENT,
  READ_PROBLEMS,
  WRITE_PROBLEMS,
  jsonBody,
  jsonResponse,
  path,
  problems,
} from './common.ts'

const CredentialPage = page(Credential, 'CredentialPage')
const tags = ['credentials']
const CREDENTIALS = `${API_PREFIX}/tenants/{tenant}/devices/{device}/credentials`
const CREDENTIAL = `${CREDENTIALS}/{id}`

const list = createRoute({
  method: 'get',
  path: CREDENTIALS,
  operationId: 'listCredentials',
  tags,
  summary: "List a device's credentials",
  middleware: [requires('reader')],
  request: { params: DeviceParams, query: ListQuery },
  responses: {
    200: jsonResponse(CredentialPage, 'A page of credentials (never a secret).'),
    ...problems(...READ_PROBLEMS),
  },
})

const create = createRoute({
  method: 'post',
  path: CREDENTIALS,
  operationId: 'createCredential',
  tags,
  summary: 'Add a credential to a device',
  description:
    'A device has at most one password and one PSK. A token credential, and a PSK without `key`, get a generated secret, returned only in this response.',
  middleware: [requires('manager'), requireJson],
  request: { params: DeviceParams, body: jsonBody(CredentialCreate, 'The credential, by type.') },
  responses: { 201: jsonResponse(CreatedCredential, 'Created.', 'created'), ...problems(...WRITE_PROBLEMS) },
})

const get = createRoute({
  method: 'get',
  path: CREDENTIAL,
  operationId: 'getCredential',
  tags,
  summary: 'Read a credential',
  middleware: [requires('reader')],
  request: { params: CredentialParams },
  responses: { 200: jsonResponse(Credential, 'The credential.', 'etag'), ...problems(...READ_PROBLEMS) },
})

const patch = createRoute({
  method: 'patch',
  path: CREDENTIAL,
  operationId: 'updateCredential',
  tags,
  summary: 'Enable, disable or change the expiry of a credential',
  middleware: [requires('manager'), requireJson],
  request: {
    params: CredentialParams,
    headers: IfMatchHeaders,
    body: jsonBody(CredentialPatch, 'The fields to change.'),
  },
  responses: {
    200: jsonResponse(Credential, 'The changed credential.', 'etag'),
    ...problems(...WRITE_PROBLEMS),
  },
})

const remove = createRoute({
  method: 'delete',
  path: CREDENTIAL,
  operationId: 'deleteCredential',
  tags,
  summary: 'Delete a credential',
  middleware: [requires('manager')],
  request: { params: CredentialParams, headers: IfMatchHeaders },
  responses: { 204: NO_CONTENT, ...problems(...READ_PROBLEMS, 412) },
})

function toInput(body: z.infer<typeof CredentialCreate>): CredentialInput {
  const common = { enabled: body.enabled, expiresAt: body.expiresAt }
  switch (body.type) {
    case 'password':
      return { type: 'password', password: body.password, ...common }
    case 'x509':
      if (body.subjectCn !== undefined) return { type: 'x509', subjectCn: body.subjectCn, ...common }
      if (body.fingerprint !== undefined) return { type: 'x509', fingerprint: body.fingerprint, ...common }
      return { type: 'x509', certificate: body.certificate ?? '', ...common }
    case 'psk':
      return { type: 'psk', key: body.key, ...common }
    case 'token':
      return { type: 'token', ...common }
  }
}

export function credentialRoutes(app: OpenAPIHono<ApiEnv>, registry: RegistryService): void {
  app.openapi(list, async (c) => {
    const { tenant, device } = c.req.valid('param')
    const { limit = 100, after } = c.req.valid('query')
    // A device has a handful of credentials: the service returns them all, pages are cut here in id order.
    const all = (await registry.listCredentials(tenant, device)).toSorted((a, b) =>
      a.id < b.id ? -1 : a.id > b.id ? 1 : 0,
    )
    // The same opaque cursors as every other list (the query schema refused any other).
    const last = decodeCursor(after)
    const rest = last === null ? all : all.filter((cr) => cr.id > last)
    const items = rest.slice(0, limit)
    const lastItem = items.at(-1)
    const next = rest.length > limit && lastItem !== undefined ? encodeCursor(lastItem.id) : null
    return c.json({ items: items.map(credentialView), next }, 200)
  })

  app.openapi(create, async (c) => {
    const { tenant, device } = c.req.valid('param')
    const created = await registry.createCredential(tenant, device, toInput(c.req.valid('json')))
    const credential = credentialView(created.credential)
    c.header(
      'Location',
      `${API_PREFIX}/tenants/${path(tenant, 'devices', device, 'credentials', credential.id)}`,
    )
    c.header('ETag', etag(credential.version))
    return c.json({ credential, ...(created.secret === undefined ? {} : { secret: created.secret }) }, 201)
  })

  app.openapi(get, async (c) => {
    const { tenant, device, id } = c.req.valid('param')
    const credential = await registry.getCredential(tenant, device, id)
    c.header('ETag', etag(credential.version))
    return c.json(credentialView(credential), 200)
  })

  app.openapi(patch, async (c) => {
    const { tenant, device, id } = c.req.valid('param')
    const pre = precondition(c.req.valid('header')['if-match'])
    const updated = await registry.updateCredential(tenant, device, id, c.req.valid('json'), pre)
    c.header('ETag', etag(updated.version))
    return c.json(credentialView(updated), 200)
  })

  app.openapi(remove, async (c) => {
    const { tenant, device, id } = c.req.valid('param')
    const pre = precondition(c.req.valid('header')['if-match'])
    await registry.deleteCredential(tenant, device, id, pre)
    return c.body(null, 204)
  })
}
