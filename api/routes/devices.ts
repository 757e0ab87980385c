// Device routes: list (paged, filtered by labels), create, read, change, delete, and set the
// device's password. Readers read; managers and admins write.
import type { OpenAPIHono } from '@hono/zod-openapi'
import { createRoute } from '@hono/zod-openapi'
import { TributaryError } from '../../core/errors.ts'
import type { RegistryService } from '../../core/registry/service.ts'
import { API_PREFIX, requireJson, requires } from '../auth.ts'
import type { ApiEnv } from '../env.ts'
import { etag, precondition } from '../etag.ts'
import {
  Credential,
  Device,
  DeviceCreate,
  DeviceListQuery,
  DeviceParams,
  DevicePatch,
  IfMatchHeaders,
  PasswordInput,
  TenantParams,
  page,
  parseLabelSelector,
} from '../schemas.ts'
import { credentialView, deviceView } from '../views.ts'
import {
  NO_CONTENT,
  READ_PROBLEMS,
  WRITE_PROBLEMS,
  jsonBody,
  jsonResponse,
  path,
  problems,
} from './common.ts'

const DevicePage = page(Device, 'DevicePage')
const tags = ['devices']
const DEVICES = `${API_PREFIX}/tenants/{tenant}/devices`
const DEVICE = `${DEVICES}/{device}`

const list = createRoute({
  method: 'get',
  path: DEVICES,
  operationId: 'listDevices',
  tags,
  summary: 'List devices',
  description: 'Paged, in id order; `label=key=value` keeps devices carrying every selected label.',
  middleware: [requires('reader')],
  request: { params: TenantParams, query: DeviceListQuery },
  responses: { 200: jsonResponse(DevicePage, 'A page of devices.'), ...problems(...READ_PROBLEMS) },
})

const create = createRoute({
  method: 'post',
  path: DEVICES,
  operationId: 'createDevice',
  tags,
  summary: 'Register a device',
  middleware: [requires('manager'), requireJson],
  request: { params: TenantParams, body: jsonBody(DeviceCreate, 'The device id and its settings.') },
  responses: { 201: jsonResponse(Device, 'Created.', 'created'), ...problems(...WRITE_PROBLEMS) },
})

const get = createRoute({
  method: 'get',
  path: DEVICE,
  operationId: 'getDevice',
  tags,
  summary: 'Read a device',
  middleware: [requires('reader')],
  request: { params: DeviceParams },
  responses: { 200: jsonResponse(Device, 'The device.', 'etag'), ...problems(...READ_PROBLEMS) },
})

const patch = createRoute({
  method: 'patch',
  path: DEVICE,
  operationId: 'updateDevice',
  tags,
  summary: 'Change a device',
  description: 'Fields left out keep their value; `labels` and `gateways` replace the whole map or list.',
  middleware: [requires('manager'), requireJson],
  request: {
    params: DeviceParams,
    headers: IfMatchHeaders,
    body: jsonBody(DevicePatch, 'The fields to change.'),
  },
  responses: { 200: jsonResponse(Device, 'The changed device.', 'etag'), ...problems(...WRITE_PROBLEMS) },
})

const remove = createRoute({
  method: 'delete',
  path: DEVICE,
  operationId: 'deleteDevice',
  tags,
  summary: 'Delete a device with its credentials',
  middleware: [requires('manager')],
  request: { params: DeviceParams, headers: IfMatchHeaders },
  responses: { 204: NO_CONTENT, ...problems(...READ_PROBLEMS, 412) },
})

const setPassword = createRoute({
  method: 'put',
  path: `${DEVICE}/password`,
  operationId: 'setDevicePassword',
  tags,
  summary: "Set the device's password",
  description:
    'Replaces the password credential of the device, creating it if there is none. Stored as a scrypt hash.',
  middleware: [requires('manager'), requireJson],
  request: { params: DeviceParams, body: jsonBody(PasswordInput, 'The new password.') },
  responses: {
    200: jsonResponse(Credential, 'The password credential.', 'etag'),
    ...problems(...WRITE_PROBLEMS),
  },
})

export function deviceRoutes(app: OpenAPIHono<ApiEnv>, registry: RegistryService): void {
  app.openapi(list, async (c) => {
    const { tenant } = c.req.valid('param')
    const query = c.req.valid('query')
    const labels = parseLabelSelector(query.label)
    if (typeof labels === 'string') {
      throw new TributaryError('REQUEST_INVALID', labels, {
        details: { errors: [{ path: 'query.label', message: labels }] },
      })
    }
    const result = await registry.listDevices(tenant, {
      limit: query.limit,
      after: query.after,
      ...(Object.keys(labels).length > 0 ? { labels } : {}),
    })
    return c.json({ items: result.items.map(deviceView), next: result.next }, 200)
  })

  app.openapi(create, async (c) => {
    const { tenant } = c.req.valid('param')
    const { id, ...fields } = c.req.valid('json')
    const device = await registry.createDevice(tenant, id, fields)
    c.header('Location', `${API_PREFIX}/tenants/${path(tenant, 'devices', device.id)}`)
    c.header('ETag', etag(device.version))
    return c.json(deviceView(device), 201)
  })

  app.openapi(get, async (c) => {
    const { tenant, device } = c.req.valid('param')
    const found = await registry.getDevice(tenant, device)
    c.header('ETag', etag(found.version))
    return c.json(deviceView(found), 200)
  })

  app.openapi(patch, async (c) => {
    const { tenant, device } = c.req.valid('param')
    const pre = precondition(c.req.valid('header')['if-match'])
    const updated = await registry.updateDevice(tenant, device, c.req.valid('json'), pre)
    c.header('ETag', etag(updated.version))
    return c.json(deviceView(updated), 200)
  })

  app.openapi(remove, async (c) => {
    const { tenant, device } = c.req.valid('param')
    const pre = precondition(c.req.valid('header')['if-match'])
    await registry.deleteDevice(tenant, device, pre)
    return c.body(null, 204)
  })

  app.openapi(setPassword, async (c) => {
    const { tenant, device } = c.req.valid('param')
    const credential = await registry.setPassword(tenant, device, c.req.valid('json').password)
    c.header('ETag', etag(credential.version))
    return c.json(credentialView(credential), 200)
  })
}
