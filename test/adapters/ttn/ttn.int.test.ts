// The TTN v3 webhook on the device HTTP listener (port 0) with a real registry (PGlite), the
// embedded bus and the management API that issues the webhook secret: every fixture as TTN sends
// it, the tenant settings, and every refusal writing nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readTtnSettings } from '../../../adapters/http/ttn/config.ts'
import { uniqueName } from '../../helpers/wait.ts'
import type { HttpHarness } from '../http/harness.ts'
import { ADMIN_TOKEN, MAX_BODY, headersOf, startHttpAdapter } from '../http/harness.ts'
import type { Fixture, FixtureName } from './fixtures.ts'
import { FIXTURES, TYPES, fixture, fixtureFor } from './fixtures.ts'

let h: HttpHarness
beforeAll(async () => {
  h = await startHttpAdapter()
})
afterAll(async () => {
  await h?.close()
})

const DOWNLINK_HEADERS = {
  'X-Downlink-Apikey': 'NNSXS.TESTKEYTESTKEYTESTKEY.SECRETPARTSECRETPART',
  'X-Downlink-Push':
    'https://eu1.cloud.thethings.network/api/v3/as/applications/greenhouse-sensors/webhooks/tributary/devices/DEVICE/down/push',
  'X-Downlink-Replace':
    'https://eu1.cloud.thethings.network/api/v3/as/applications/greenhouse-sensors/webhooks/tributary/devices/DEVICE/down/replace',
}

/** A tenant with TTN settings and a secret issued by the management API. */
async function ttnTenant(
  settings: Record<string, unknown> = {},
): Promise<{ tenant: string; secret: string }> {
  const tenant = uniqueName('tt')
  await h.registry.createTenant(tenant, { settings: { ttn: settings } })
  const response = await fetch(`${h.apiUrl}/api/v1/tenants/${tenant}/ttn-secret`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: '{}',
  })
  expect(response.status).toBe(200)
  const body = (await response.json()) as { secret: string; headers: Record<string, string>; path: string }
  expect(body.headers).toEqual({ 'X-Tributary-Tenant': tenant, 'X-Tributary-Webhook-Secret': body.secret })
  expect(body.path).toBe('/ttn/v3')
  await h.settle()
  return { tenant, secret: body.secret }
}

function webhook(
  tenant: string | undefined,
  secret: string | undefined,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const all: Record<string, string> = { 'content-type': 'application/json', ...headers }
  if (tenant !== undefined) all['X-Tributary-Tenant'] = tenant
  if (secret !== undefined) all['X-Tributary-Webhook-Secret'] = secret
  return fetch(`${h.url}/ttn/v3`, {
    method: 'POST',
    headers: all,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
}

describe('TTN v3 webhook (integration)', () => {
  it('turns every TTN message kind into its event, auto-registering the device', async () => {
    const { tenant, secret } = await ttnTenant({ autoRegister: true })
    const device = 'eui-70b3d57ed005a1b2'
    const before = await h.ingressCount()
    for (const name of FIXTURES) {
      const response = await webhook(tenant, secret, fixture(name), DOWNLINK_HEADERS)
      expect(response.status, name).toBe(202)
    }
    expect(await h.ingressCount()).toBe(before + FIXTURES.length)
    const records = (await h.ingressRecords()).filter((r) => r.key === `${tenant}/${device}`)
    // One device, one partition: in the order TTN sent them.
    expect(records.map((r) => headersOf(r)['ce_type'])).toEqual(FIXTURES.map((f: FixtureName) => TYPES[f]))
    const uplink = headersOf(records[0]!)
    expect(uplink).toMatchObject({
      ce_protocol: 'ttn',
      ce_tenant: tenant,
      ce_device: device,
      ce_subject: 'lorawan/2',
      ce_deveui: '70B3D57ED005A1B2',
      ce_fport: '2',
      ce_fcnt: '1843',
      ce_rssi: '-97',
      ce_ttnapp: 'greenhouse-sensors',
      'content-type': 'application/octet-stream',
    })
    expect(records[0]!.value).toEqual(Buffer.from('AOcBhwI=', 'base64'))
    const registered = await h.registry.getDevice(tenant, device)
    expect(registered.labels).toEqual({
      'ttn/application': 'greenhouse-sensors',
      'ttn/dev-eui': '70B3D57ED005A1B2',
    })
  })

  it('sends decoded_payload as JSON for a tenant that asks for decoded payloads, on its mapped channel', async () => {
    const { tenant, secret } = await ttnTenant({
      payload: 'decoded',
      autoRegister: true,
      fPortChannels: { '2': 'climate/air' },
    })
    const response = await webhook(tenant, secret, fixtureFor('uplink', 'node-7'))
    expect(response.status).toBe(202)
    const record = (await h.ingressRecords()).find((r) => r.key === `${tenant}/node-7`)!
    expect(headersOf(record)).toMatchObject({ ce_subject: 'climate/air', 'content-type': 'application/json' })
    expect(JSON.parse(record.value!.toString())).toEqual({ temperature: 23.1, humidity: 39.1, battery: 2 })
  })

  it('refuses an unknown device when auto-registration is off, and a disabled one', async () => {
    const { tenant, secret } = await ttnTenant()
    await h.registry.createDevice(tenant, 'known-1', {})
    await h.registry.createDevice(tenant, 'off-1', { enabled: false })
    await h.settle()
    const before = await h.ingressCount()
    expect((await webhook(tenant, secret, fixtureFor('uplink', 'stranger'))).status).toBe(403)
    expect((await webhook(tenant, secret, fixtureFor('uplink', 'off-1'))).status).toBe(403)
    await expect(h.registry.getDevice(tenant, 'stranger')).rejects.toThrow(/not found/)
    expect(await h.ingressCount()).toBe(before)
    expect((await webhook(tenant, secret, fixtureFor('uplink', 'known-1'))).status).toBe(202)
    expect(await h.ingressCount()).toBe(before + 1)
  })

  it('refuses wrong secrets, bad bodies and bad settings with their statuses, writing nothing', async () => {
    const { tenant, secret } = await ttnTenant({ autoRegister: true })
    const other = await ttnTenant({ autoRegister: true })
    const disabled = await ttnTenant({ autoRegister: true })
    await h.registry.updateTenant(disabled.tenant, { enabled: false })
    const broken = await ttnTenant({ autoRegister: true })
    const current = await h.registry.getTenant(broken.tenant)
    await h.registry.updateTenant(broken.tenant, {
      settings: { ttn: { ...(current.settings['ttn'] as object), payload: 'base64' } },
    })
    await h.settle()
    const uplink = fixtureFor('uplink', 'node-1')
    const bad = (change: (b: Fixture) => void) => {
      const body = fixtureFor('uplink', 'node-1')
      change(body)
      return body
    }
    const cases: Array<[string, () => Promise<Response>, number]> = [
      ['no headers', () => webhook(undefined, undefined, uplink), 401],
      ['no secret', () => webhook(tenant, undefined, uplink), 401],
      ['wrong secret', () => webhook(tenant, 'tws_wrong', uplink), 401],
      ["another tenant's secret", () => webhook(tenant, other.secret, uplink), 401],
      ['unknown tenant', () => webhook(uniqueName('ghost'), secret, uplink), 401],
      ['malformed tenant', () => webhook('Not A Tenant', secret, uplink), 401],
      ['disabled tenant', () => webhook(disabled.tenant, disabled.secret, uplink), 403],
      ['invalid TTN settings', () => webhook(broken.tenant, broken.secret, uplink), 403],
      ['malformed JSON', () => webhook(tenant, secret, '{"uplink_message":'), 400],
      ['not TTN JSON', () => webhook(tenant, secret, { hello: 'world' }), 400],
      [
        'bad device id',
        () =>
          webhook(
            tenant,
            secret,
            bad((b) => (b['end_device_ids'].device_id = 'a b')),
          ),
        400,
      ],
      [
        'f_port out of range',
        () =>
          webhook(
            tenant,
            secret,
            bad((b) => (b['uplink_message'].f_port = 300)),
          ),
        400,
      ],
      [
        'frm_payload not base64',
        () =>
          webhook(
            tenant,
            secret,
            bad((b) => (b['uplink_message'].frm_payload = '%%%')),
          ),
        400,
      ],
      [
        'not JSON',
        () => webhook(tenant, secret, 'a=b', { 'content-type': 'application/x-www-form-urlencoded' }),
        415,
      ],
      ['oversize', () => webhook(tenant, secret, { ...uplink, padding: 'x'.repeat(MAX_BODY) }), 413],
      ['wrong method', () => fetch(`${h.url}/ttn/v3`), 405],
    ]
    const before = await h.ingressCount()
    for (const [name, send, status] of cases) {
      const response = await send()
      expect(response.status, name).toBe(status)
      expect(response.headers.get('content-type'), name).toBe('application/problem+json')
      if (status === 401)
        expect(response.headers.get('www-authenticate'), name).toContain('Tributary-Webhook-Secret')
    }
    expect(await h.ingressCount()).toBe(before)
    await expect(h.registry.getDevice(tenant, 'node-1')).rejects.toThrow(/not found/)
    // Positive control: the same body with the right secret is taken, moving the offsets by one.
    expect((await webhook(tenant, secret, uplink)).status).toBe(202)
    expect(await h.ingressCount()).toBe(before + 1)
  })

  it('stores only the hash of the secret, and a new secret replaces the old one', async () => {
    const { tenant, secret } = await ttnTenant({ payload: 'decoded' })
    const stored = JSON.stringify((await h.registry.getTenant(tenant)).settings)
    expect(stored).not.toContain(secret)
    const own = `my-own-secret-${'z'.repeat(24)}`
    const reply = await fetch(`${h.apiUrl}/api/v1/tenants/${tenant}/ttn-secret`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ secret: own }),
    })
    expect(reply.status).toBe(200)
    const settings = (await h.registry.getTenant(tenant)).settings
    // The other TTN settings stay.
    expect(readTtnSettings(settings)).toMatchObject({ ok: true, settings: { payload: 'decoded' } })
    await h.settle()
    await h.registry.createDevice(tenant, 'node-1', {})
    await h.settle()
    expect((await webhook(tenant, secret, fixtureFor('join-accept', 'node-1'))).status).toBe(401)
    expect((await webhook(tenant, own, fixtureFor('join-accept', 'node-1'))).status).toBe(202)
    const tooShort = await fetch(`${h.apiUrl}/api/v1/tenants/${tenant}/ttn-secret`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ secret: 'short' }),
    })
    expect(tooShort.status).toBe(400)
  })

  it('counts webhook calls under the ttn route', async () => {
    expect(await h.metrics.metrics()).toMatch(/tributary_http_requests_total\{route="ttn",status="202"\} \d+/)
  })
})
