// The publication routes of the management API over a real listener: a manager publishes a file to
// a device or a folder and takes it back, a reader sees where it is published, and bad targets are
// refused with nothing changed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { uploadedFile } from '../core/registry/store-fixtures.ts'
import type { ApiHarness } from './harness.ts'
import { startApi } from './harness.ts'

const TENANT = 'publisher'
const FILES = `/api/v1/tenants/${TENANT}/files`
let api: ApiHarness
let reader = ''
let manager = ''

beforeAll(async () => {
  api = await startApi()
  await api.registry.createTenant(TENANT, {})
  for (const device of ['src', 'cam-1']) await api.registry.createDevice(TENANT, device, {})
  reader = (await api.registry.createApiToken(TENANT, { name: 'reader', role: 'reader' })).secret
  manager = (await api.registry.createApiToken(TENANT, { name: 'manager', role: 'manager' })).secret
})

afterAll(async () => api.close())

describe('file publication routes', () => {
  it('publishes to a device and a folder, idempotently, and takes each back', async () => {
    const id = await uploadedFile(api.store, TENANT, 'src')
    const at = `${FILES}/${id}/publications`
    expect((await api.call('GET', at, { token: reader })).body).toEqual({ devices: [], folders: [] })
    const toDevice = await api.call('PUT', `${at}/devices/cam-1`, { token: manager })
    expect([toDevice.status, toDevice.body]).toEqual([200, { devices: ['cam-1'], folders: [] }])
    expect((await api.call('PUT', `${at}/devices/cam-1`, { token: manager })).status).toBe(200)
    const toFolder = await api.call('PUT', `${at}/folders/firmware`, { token: manager })
    expect(toFolder.body).toEqual({ devices: ['cam-1'], folders: ['firmware'] })
    expect((await api.call('GET', at, { token: reader })).body).toEqual(toFolder.body)

    expect((await api.call('DELETE', `${at}/folders/firmware`, { token: manager })).status).toBe(204)
    const again = await api.call('DELETE', `${at}/folders/firmware`, { token: manager })
    expect([again.status, again.body.code]).toEqual([404, 'REGISTRY_NOT_FOUND'])
    expect((await api.call('DELETE', `${at}/devices/cam-1`, { token: manager })).status).toBe(204)
    expect((await api.call('GET', at, { token: reader })).body).toEqual({ devices: [], folders: [] })
  })

  it('lets readers look, not publish', async () => {
    const id = await uploadedFile(api.store, TENANT, 'src')
    const at = `${FILES}/${id}/publications`
    expect((await api.call('PUT', `${at}/folders/firmware`, { token: reader })).status).toBe(403)
    await api.call('PUT', `${at}/folders/firmware`, { token: manager })
    expect((await api.call('DELETE', `${at}/folders/firmware`, { token: reader })).status).toBe(403)
    expect((await api.call('GET', at, { token: reader })).body).toEqual({
      devices: [],
      folders: ['firmware'],
    })
  })

  it('refuses a device that does not exist, a bad folder name and a file that does not exist', async () => {
    const id = await uploadedFile(api.store, TENANT, 'src')
    const at = `${FILES}/${id}/publications`
    const nobody = await api.call('PUT', `${at}/devices/nobody`, { token: manager })
    expect([nobody.status, nobody.body.code]).toEqual([404, 'REGISTRY_NOT_FOUND'])
    for (const folder of ['.hidden', 'a'.repeat(65), 'fw%2Fx', 'fw%20x']) {
      const bad = await api.call('PUT', `${at}/folders/${folder}`, { token: manager })
      expect(bad.status, folder).toBe(400)
    }
    const ghost = await api.call('PUT', `${FILES}/nosuchfile0/publications/folders/firmware`, {
      token: manager,
    })
    expect(ghost.status).toBe(404)
    expect((await api.call('GET', `${FILES}/nosuchfile0/publications`, { token: reader })).status).toBe(404)
    expect((await api.call('GET', at, { token: reader })).body).toEqual({ devices: [], folders: [] })
  })

  it('forgets the publications of a deleted file', async () => {
    const id = await uploadedFile(api.store, TENANT, 'src')
    await api.call('PUT', `${FILES}/${id}/publications/folders/firmware`, { token: manager })
    expect((await api.call('DELETE', `${FILES}/${id}`, { token: manager })).status).toBe(204)
    expect((await api.call('GET', `${FILES}/${id}/publications`, { token: reader })).status).toBe(404)
    expect((await api.store.files.listPublished(TENANT, 'cam-1')).items.map((p) => p.file.id)).not.toContain(
      id,
    )
  })
})
