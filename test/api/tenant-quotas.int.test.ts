// A tenant's processor quotas and topic settings over real HTTP: set and read back, kept when a
// change leaves them out, bounded, and changed by the admin token only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ApiHarness } from './harness.ts'
import { startApi } from './harness.ts'

let api: ApiHarness
let tenantAdmin = ''
const T = '/api/v1/tenants/quota'

beforeAll(async () => {
  api = await startApi()
  const created = await api.call('POST', '/api/v1/tenants', {
    body: {
      id: 'quota',
      quotas: { maxEventsPerSecond: 500, maxPayloadBytes: 65_536 },
      settings: { topicPartitions: 6, topicRetentionMs: -1, note: 'kept' },
    },
  })
  expect(created.status).toBe(201)
  tenantAdmin = (await api.registry.createApiToken('quota', { name: 'a', role: 'admin' })).secret
})
afterAll(async () => api.close())

describe('tenant quotas and topic settings', () => {
  it('are stored, shown with every quota (null: no limit), and kept when a change leaves them out', async () => {
    const read = await api.call('GET', T)
    expect(read.body.quotas).toEqual({
      maxDevices: null,
      maxMessagesPerSecond: null,
      maxEventsPerSecond: 500,
      maxBytesPerSecond: null,
      maxPayloadBytes: 65_536,
      maxFileStorageBytes: null,
      maxFiles: null,
    })
    expect(read.body.settings).toEqual({ topicPartitions: 6, topicRetentionMs: -1, note: 'kept' })
    const patched = await api.call('PATCH', T, {
      body: {
        quotas: { maxBytesPerSecond: 1_000_000, maxPayloadBytes: null, maxFileStorageBytes: 0, maxFiles: 20 },
      },
    })
    expect(patched.status).toBe(200)
    expect(patched.body.quotas).toEqual({
      maxDevices: null,
      maxMessagesPerSecond: null,
      maxEventsPerSecond: 500,
      maxBytesPerSecond: 1_000_000,
      maxPayloadBytes: null,
      maxFileStorageBytes: 0,
      maxFiles: 20,
    })
    expect((await api.auth.tenant('quota'))?.quotas.maxFiles).toBe(20)
    expect((await api.auth.tenant('quota'))?.quotas.maxEventsPerSecond).toBe(500)
  })

  it.each([
    ['maxEventsPerSecond', 0],
    ['maxEventsPerSecond', 1.5],
    ['maxBytesPerSecond', -1],
    ['maxPayloadBytes', 1024 * 1024 + 1],
    ['maxPayloadBytes', '1000'],
    ['maxMessagesPerSecond', 1.5],
    ['maxMessagesPerSecond', -1],
    ['maxFileStorageBytes', -1],
    ['maxFileStorageBytes', 1.5],
    ['maxFiles', '10'],
  ])('refuses quotas.%s = %j with 400 naming the field', async (name, value) => {
    const reply = await api.call('PATCH', T, { body: { quotas: { [name]: value } } })
    expect(reply.status).toBe(400)
    expect(reply.body.code).toBe('REQUEST_INVALID')
    expect((reply.body.errors as Array<{ path: string }>).map((e) => e.path)).toContain(`body.quotas.${name}`)
  })

  it('takes a per-device rate of 0, which stops the tenant’s devices at the adapters', async () => {
    const reply = await api.call('PATCH', T, { body: { quotas: { maxMessagesPerSecond: 0 } } })
    expect(reply.status).toBe(200)
    expect(reply.body.quotas.maxMessagesPerSecond).toBe(0)
    expect((await api.call('PATCH', T, { body: { quotas: { maxMessagesPerSecond: null } } })).status).toBe(
      200,
    )
  })

  it.each([
    ['topicPartitions', 0],
    ['topicPartitions', 1001],
    ['topicRetentionMs', 1000],
    ['topicRetentionMs', 11 * 365 * 86_400_000],
  ])('refuses settings.%s = %j with 400 naming the field', async (name, value) => {
    const reply = await api.call('PATCH', T, { body: { settings: { [name]: value } } })
    expect(reply.status).toBe(400)
    expect(reply.body.code).toBe('REGISTRY_INVALID')
    expect(reply.body.detail).toMatch(new RegExp(`^settings\\.${name}: must be`))
    expect((await api.call('GET', T)).body.settings).toEqual({
      topicPartitions: 6,
      topicRetentionMs: -1,
      note: 'kept',
    })
  })

  it('lets the tenant admin change other settings, but not quotas or the topic settings (403)', async () => {
    const before = await api.call('GET', T)
    for (const body of [
      { quotas: { maxEventsPerSecond: 1_000_000 } },
      { settings: { topicPartitions: 1000, topicRetentionMs: -1, note: 'kept' } },
      { settings: { topicPartitions: 6, note: 'retention dropped' } },
    ]) {
      const refused = await api.call('PATCH', T, { token: tenantAdmin, body })
      expect(refused.status, JSON.stringify(body)).toBe(403)
      expect(refused.body.code).toBe('AUTH_FORBIDDEN')
    }
    expect((await api.call('GET', T)).body).toEqual(before.body)
    const ok = await api.call('PATCH', T, {
      token: tenantAdmin,
      body: { settings: { topicPartitions: 6, topicRetentionMs: -1, note: 'changed' } },
    })
    expect(ok.status).toBe(200)
    expect(ok.body.settings.note).toBe('changed')
    const operator = await api.call('PATCH', T, {
      body: { settings: { topicPartitions: 12, topicRetentionMs: 60_000 } },
    })
    expect(operator.status).toBe(200)
    expect(operator.body.settings).toEqual({ topicPartitions: 12, topicRetentionMs: 60_000 })
  })
})
