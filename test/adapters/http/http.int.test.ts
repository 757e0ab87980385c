// The device HTTP adapter on a real socket (port 0) in front of a real registry (PGlite), the
// embedded bus and the in-process cluster state, driven with fetch as a device would: what it
// answers, what reaches the ingress topic, and that nothing does when it refuses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventTypes } from '../../../core/events/build.ts'
import { uniqueName, waitUntil } from '../../helpers/wait.ts'
import type { HttpHarness } from './harness.ts'
import { MAX_BODY, basicAuth, headersOf, startHttpAdapter } from './harness.ts'

let h: HttpHarness
beforeAll(async () => {
  h = await startHttpAdapter()
})
afterAll(async () => {
  await h?.close()
})

const newTenant = (): string => uniqueName('ht')

function post(
  path: string,
  init: { auth?: string; body?: string | Uint8Array; type?: string; headers?: Record<string, string> } = {},
) {
  const headers: Record<string, string> = { ...init.headers }
  if (init.auth !== undefined) headers['authorization'] = init.auth
  if (init.type !== undefined) headers['content-type'] = init.type
  return fetch(`${h.url}${path}`, {
    method: 'POST',
    headers,
    ...(init.body === undefined ? {} : { body: init.body }),
  })
}

describe('device HTTP adapter (integration)', () => {
  it('accepts a JSON message with Basic credentials: 202 after the event is on the ingress topic', async () => {
    const tenant = newTenant()
    await h.deviceWithPassword(tenant, 'meter-1')
    const before = await h.ingressCount()
    const body = JSON.stringify({ kwh: 12.5, at: uniqueName('m') })
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    const response = await post('/v1/energy/meter', {
      auth: basicAuth('meter-1', tenant),
      body,
      type: 'application/json; charset=utf-8',
      headers: { traceparent },
    })
    expect(response.status).toBe(202)
    expect(await response.text()).toBe('')
    // 202 means durable: the record is there already, no waiting.
    expect(await h.ingressCount()).toBe(before + 1)
    const record = (await h.ingressRecords()).find((r) => r.value?.toString() === body)!
    expect(record.key).toBe(`${tenant}/meter-1`)
    expect(headersOf(record)).toMatchObject({
      ce_type: eventTypes.telemetry,
      ce_subject: 'energy/meter',
      ce_tenant: tenant,
      ce_device: 'meter-1',
      ce_protocol: 'http',
      ce_traceparent: traceparent,
      'content-type': 'application/json; charset=utf-8',
    })
    expect(headersOf(record)['ce_sender']).toBeUndefined()
    // The password credential that authenticated the request rides along for the processors.
    const [password] = await h.store.listCredentials(tenant, 'meter-1')
    expect(headersOf(record)['ce_credential']).toBe(password!.id)
    // Last seen is written in the background, once.
    await waitUntil(async () => (await h.store.getDevice(tenant, 'meter-1'))?.lastSeen !== null)
  })

  it('accepts a bearer device token and keeps binary bodies and their type as sent', async () => {
    const tenant = newTenant()
    await h.deviceWithPassword(tenant, 'cam-1')
    const { secret } = await h.registry.createCredential(tenant, 'cam-1', { type: 'token' })
    await h.settle()
    const bytes = new Uint8Array([0, 1, 2, 254, 255])
    const response = await post('/v1/images/raw', {
      auth: `Bearer ${secret!}`,
      body: bytes,
      type: 'image/x-raw',
    })
    expect(response.status).toBe(202)
    const record = (await h.ingressRecords()).find((r) => r.key === `${tenant}/cam-1`)!
    expect([...record.value!]).toEqual([...bytes])
    expect(headersOf(record)['content-type']).toBe('image/x-raw')
    // fetch sends a byte body without a Content-Type.
    const none = await post('/v1/images/raw', { auth: `Bearer ${secret!}`, body: new Uint8Array([7]) })
    expect(none.status).toBe(202)
    const last = (await h.ingressRecords()).filter((r) => r.key === `${tenant}/cam-1`).at(-1)!
    expect(headersOf(last)['content-type']).toBe('application/octet-stream')
  })

  it('lets a gateway send ?as= a device that lists it, and refuses it for one that does not', async () => {
    const tenant = newTenant()
    await h.deviceWithPassword(tenant, 'gw-1')
    await h.registry.createDevice(tenant, 'child-1', { gateways: ['gw-1'] })
    await h.registry.createDevice(tenant, 'orphan-1', {})
    await h.settle()
    const before = await h.ingressCount()
    const ok = await post('/v1/temp?as=child-1', {
      auth: basicAuth('gw-1', tenant),
      body: '21',
      type: 'text/plain',
    })
    expect(ok.status).toBe(202)
    const record = (await h.ingressRecords()).find((r) => r.key === `${tenant}/child-1`)!
    expect(headersOf(record)).toMatchObject({
      ce_device: 'child-1',
      ce_sender: 'gw-1',
      ce_source: `tributary://${tenant}/child-1`,
    })
    for (const target of ['orphan-1', 'nobody']) {
      const refused = await post(`/v1/temp?as=${target}`, { auth: basicAuth('gw-1', tenant), body: '21' })
      expect(refused.status, target).toBe(403)
      expect(((await refused.json()) as { code: string }).code).toBe('AUTH_FORBIDDEN')
    }
    expect(await h.ingressCount()).toBe(before + 1)
  })

  it('refuses every bad request with its documented status and a problem, writing nothing', async () => {
    const tenant = newTenant()
    const other = newTenant()
    await h.deviceWithPassword(tenant, 'd1')
    await h.deviceWithPassword(tenant, 'off-1')
    await h.deviceWithPassword(other, 'd1')
    await h.registry.updateDevice(tenant, 'off-1', { enabled: false })
    await h.settle()
    const good = basicAuth('d1', tenant)
    const cases: Array<[string, () => Promise<Response>, number]> = [
      ['no credentials', () => post('/v1/a', { body: 'x' }), 401],
      [
        'wrong password',
        () => post('/v1/a', { auth: basicAuth('d1', tenant, 'wrong password'), body: 'x' }),
        401,
      ],
      ['unknown device', () => post('/v1/a', { auth: basicAuth('ghost', tenant), body: 'x' }), 401],
      [
        "another tenant's password",
        () => post('/v1/a', { auth: basicAuth('d1', tenant, 'x'.repeat(9)), body: 'x' }),
        401,
      ],
      ['malformed Authorization', () => post('/v1/a', { auth: 'Basic ###', body: 'x' }), 401],
      ['unknown token', () => post('/v1/a', { auth: 'Bearer tdt_nope_nope', body: 'x' }), 401],
      ['disabled device', () => post('/v1/a', { auth: basicAuth('off-1', tenant), body: 'x' }), 403],
      ['malformed JSON', () => post('/v1/a', { auth: good, body: '{"a":', type: 'application/json' }), 400],
      [
        'malformed +json',
        () => post('/v1/a', { auth: good, body: 'nope', type: 'application/senml+json' }),
        400,
      ],
      ['bad channel characters', () => post('/v1/a$b', { auth: good, body: 'x' }), 400],
      ['empty channel level', () => post('/v1/a//b', { auth: good, body: 'x' }), 400],
      ['reserved channel', () => post('/v1/command/x', { auth: good, body: 'x' }), 403],
      ['bad as=', () => post('/v1/a?as=a%2Fb', { auth: good, body: 'x' }), 400],
      ['bad ct=', () => post('/v1/a?ct=999', { auth: good, body: 'x' }), 400],
      ['bad Content-Type', () => post('/v1/a', { auth: good, body: 'x', type: 'not a type' }), 400],
      ['oversize', () => post('/v1/a', { auth: good, body: 'x'.repeat(MAX_BODY + 1) }), 413],
      [
        'oversize, chunked',
        () =>
          fetch(`${h.url}/v1/a`, {
            method: 'POST',
            headers: { authorization: good },
            body: new ReadableStream({
              start(controller) {
                for (let i = 0; i < 8; i++) controller.enqueue(new Uint8Array(MAX_BODY / 2))
                controller.close()
              },
            }),
            duplex: 'half',
          }),
        413,
      ],
      ['wrong method', () => fetch(`${h.url}/v1/a`, { headers: { authorization: good } }), 405],
      ['unknown path', () => post('/v2/a', { auth: good, body: 'x' }), 404],
    ]
    const before = await h.ingressCount()
    for (const [name, send, status] of cases) {
      const response = await send()
      expect(response.status, name).toBe(status)
      expect(response.headers.get('content-type'), name).toBe('application/problem+json')
      const problem = (await response.json()) as { status: number; detail: string; instance: string }
      expect(problem.status, name).toBe(status)
      expect(problem.detail, name).not.toBe('')
      if (status === 401)
        expect(response.headers.get('www-authenticate'), name).toContain('Basic realm="tributary"')
    }
    // The positive control moves the offsets by exactly one: the refusals above moved them by none.
    expect((await post('/v1/a', { auth: good, body: 'ok' })).status).toBe(200 + 2)
    expect(await h.ingressCount()).toBe(before + 1)
  })

  it("refuses a method the tenant's policy does not allow with 403", async () => {
    const tenant = newTenant()
    await h.deviceWithPassword(tenant, 'd1')
    await h.registry.updateTenant(tenant, { authMethods: ['token'] })
    await h.settle()
    const response = await post('/v1/a', { auth: basicAuth('d1', tenant), body: 'x' })
    expect(response.status).toBe(403)
  })

  it("answers 429 with Retry-After past the tenant's message rate", async () => {
    const tenant = newTenant()
    await h.deviceWithPassword(tenant, 'chatty')
    await h.registry.updateTenant(tenant, { quotas: { maxMessagesPerSecond: 1 } })
    await h.settle()
    const statuses: number[] = []
    let retryAfter: string | null = null
    for (let i = 0; i < 3; i++) {
      const response = await post('/v1/a', { auth: basicAuth('chatty', tenant), body: String(i) })
      statuses.push(response.status)
      if (response.status === 429) retryAfter = response.headers.get('retry-after')
    }
    // A burst of twice the rate passes; the third is refused.
    expect(statuses).toEqual([202, 202, 429])
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1)
  })

  it('accepts ?ct= and answers 202 while no command comes', async () => {
    const tenant = newTenant()
    await h.deviceWithPassword(tenant, 'poller')
    const began = Date.now()
    const response = await post('/v1/status?ct=30', { auth: basicAuth('poller', tenant), body: 'up' })
    expect(response.status).toBe(202)
    // No commands yet: the wait hook answers at once rather than holding the request for 30 s.
    expect(Date.now() - began).toBeLessThan(10_000)
  })

  it('counts requests by route and status', async () => {
    const text = await h.metrics.metrics()
    expect(text).toMatch(/tributary_http_requests_total\{route="ingest",status="202"\} \d+/)
    expect(text).toMatch(/tributary_http_requests_total\{route="ingest",status="401"\} \d+/)
    expect(text).toMatch(/tributary_http_request_duration_seconds_count\{route="ingest"\} \d+/)
  })
})

describe('device HTTP adapter with a command waiting and a closed bus', () => {
  it('answers a ?ct= request with the command the hook returns, and 503 once the bus is gone', async () => {
    const waits: Array<{ device: string; seconds: number }> = []
    const own = await startHttpAdapter({
      awaitCommand: async (wait) => {
        waits.push({ device: wait.device, seconds: wait.seconds })
        return {
          id: 'c-1',
          name: 'reboot',
          payload: Buffer.from('{"delay":5}'),
          contentType: 'application/json',
        }
      },
    })
    try {
      const tenant = newTenant()
      await own.deviceWithPassword(tenant, 'd1')
      const auth = basicAuth('d1', tenant)
      const withCommand = await fetch(`${own.url}/v1/status?ct=10`, {
        method: 'POST',
        headers: { authorization: auth },
        body: 'x',
      })
      expect(withCommand.status).toBe(200)
      expect(withCommand.headers.get('tributary-command')).toBe('reboot')
      expect(withCommand.headers.get('content-type')).toBe('application/json')
      expect(await withCommand.text()).toBe('{"delay":5}')
      expect(waits).toEqual([{ device: 'd1', seconds: 10 }])
      // Without ct the hook is not asked.
      expect(
        (await fetch(`${own.url}/v1/status`, { method: 'POST', headers: { authorization: auth }, body: 'x' }))
          .status,
      ).toBe(202)
      expect(waits).toHaveLength(1)

      await own.bus.close()
      const unavailable = await fetch(`${own.url}/v1/status`, {
        method: 'POST',
        headers: { authorization: auth },
        body: 'x',
      })
      expect(unavailable.status).toBe(503)
      expect(Number(unavailable.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect(((await unavailable.json()) as { code: string }).code).toBe('BUS_UNAVAILABLE')
    } finally {
      await own.close().catch(() => undefined)
    }
  })
})
