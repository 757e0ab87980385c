// The device HTTP adapter on a real socket (port 0) in front of a real registry (PGlite), the
// embedded bus and the in-process cluster state, driven with fetch as a device would: what it
// answers, what reaches the ingress topic, and that nothing does when it refuses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventTypes } from '../../../core/events/build.ts'
import { uniqueName, waitUntil } from '../../helpers/wait.ts'
import { command } from './fake-outlet.ts'
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

  it('counts requests by route and status', async () => {
    const text = await h.metrics.metrics()
    expect(text).toMatch(/tributary_http_requests_total\{route="ingest",status="202"\} \d+/)
    expect(text).toMatch(/tributary_http_requests_total\{route="ingest",status="401"\} \d+/)
    expect(text).toMatch(/tributary_http_request_duration_seconds_count\{route="ingest"\} \d+/)
    expect(text).toMatch(/tributary_http_command_polls \d+/)
  })
})

describe('device HTTP adapter: commands over long polls', () => {
  const poll = (path: string, auth: string, init: RequestInit = {}) =>
    fetch(`${h.url}${path}`, { ...init, headers: { authorization: auth } })

  it('holds a ?ct= request after the message is durable and answers it with a command sent meanwhile', async () => {
    const tenant = newTenant()
    await h.deviceWithPassword(tenant, 'valve-1')
    const before = await h.ingressCount()
    const pending = post('/v1/status?ct=30', { auth: basicAuth('valve-1', tenant), body: 'open' })
    await h.commands.whenAttached(tenant, 'valve-1')
    // Durable before the wait began.
    expect(await h.ingressCount()).toBe(before + 1)
    const sent = command({ tenant, device: 'valve-1', name: 'close', requestId: 'rq-1' })
    h.commands.send(sent)
    const response = await pending
    expect(response.status).toBe(200)
    expect(Object.fromEntries(response.headers)).toMatchObject({
      'tributary-command': 'close',
      'tributary-command-id': sent.id,
      'tributary-request-id': 'rq-1',
      'content-type': 'application/json',
      'cache-control': 'no-store',
    })
    expect(response.headers.get('tributary-device')).toBeNull()
    expect(Buffer.from(await response.arrayBuffer())).toEqual(sent.payload)
    // Delivered once Node wrote the response, and the sink is gone with the request.
    await h.commands.whenResults(1)
    expect(h.commands.results).toEqual([{ id: sent.id, result: { kind: 'delivered' } }])
    expect(h.commands.attached(tenant, 'valve-1')).toBe(0)
  })

  it('answers GET /v1/command at once with a command that was queued, and a gateway learns the device', async () => {
    const tenant = newTenant()
    await h.deviceWithPassword(tenant, 'gw-1')
    await h.deviceWithPassword(tenant, 'child-1', { gateways: ['gw-1'] })
    // The dispatcher hands a gateway's sink the commands of devices that list it.
    const queued = command({ tenant, device: 'child-1', name: 'dim', contentType: undefined })
    h.commands.send(queued, 'gw-1')
    const response = await poll('/v1/command?ct=30', basicAuth('gw-1', tenant))
    expect(response.status).toBe(200)
    expect(response.headers.get('tributary-command')).toBe('dim')
    expect(response.headers.get('tributary-device')).toBe('child-1')
    expect(response.headers.get('tributary-request-id')).toBeNull()
    expect(Buffer.from(await response.arrayBuffer())).toEqual(queued.payload)
    // With ?as= the sink is the child's own; the header still names it, the caller being the gateway.
    const forChild = command({ tenant, device: 'child-1', name: 'blink' })
    h.commands.send(forChild)
    const viaAs = await poll('/v1/command?ct=30&as=child-1', basicAuth('gw-1', tenant))
    expect(viaAs.status).toBe(200)
    expect(viaAs.headers.get('tributary-command')).toBe('blink')
    expect(viaAs.headers.get('tributary-device')).toBe('child-1')
    await viaAs.arrayBuffer()
  })

  it('answers 202 (POST) and 204 (GET) when ct passes without a command, and leaves nothing attached', async () => {
    const tenant = newTenant()
    await h.deviceWithPassword(tenant, 'quiet-1')
    const auth = basicAuth('quiet-1', tenant)
    const posted = await post('/v1/status?ct=1', { auth, body: 'x' })
    expect(posted.status).toBe(202)
    const polled = await poll('/v1/command?ct=1', auth)
    expect(polled.status).toBe(204)
    expect((await poll('/v1/command', auth)).status).toBe(204)
    expect(h.commands.attached(tenant, 'quiet-1')).toBe(0)
    const later = command({ tenant, device: 'quiet-1' })
    h.commands.send(later)
    expect(h.commands.queued(tenant, 'quiet-1')).toEqual([later])
  })

  it('detaches as soon as the client goes away, so the command stays queued', async () => {
    const tenant = newTenant()
    await h.deviceWithPassword(tenant, 'flaky-1')
    const controller = new AbortController()
    const pending = poll('/v1/command?ct=30', basicAuth('flaky-1', tenant), { signal: controller.signal })
    await h.commands.whenAttached(tenant, 'flaky-1')
    controller.abort()
    await expect(pending).rejects.toThrow()
    await waitUntil(() => h.commands.attached(tenant, 'flaky-1') === 0, {
      message: () => 'the sink to be detached',
    })
    const later = command({ tenant, device: 'flaky-1' })
    h.commands.send(later)
    expect(h.commands.queued(tenant, 'flaky-1')).toEqual([later])
    expect(h.commands.results).not.toContainEqual(expect.objectContaining({ id: later.id }))
  })

  it('makes a device response durable, answers 202, then reports it', async () => {
    const tenant = newTenant()
    await h.deviceWithPassword(tenant, 'pump-1')
    const body = JSON.stringify({ rpm: 1200 })
    const response = await post('/v1/command/res/rq-42/201', {
      auth: basicAuth('pump-1', tenant),
      body,
      type: 'application/json',
    })
    expect(response.status).toBe(202)
    const record = (await h.ingressRecords()).find((r) => r.value?.toString() === body)!
    expect(headersOf(record)).toMatchObject({
      ce_type: eventTypes['command.response'],
      ce_tenant: tenant,
      ce_device: 'pump-1',
      ce_protocol: 'http',
      ce_requestid: 'rq-42',
      ce_status: '201',
      'content-type': 'application/json',
    })
    expect(h.commands.responses).toContainEqual({
      tenant,
      device: 'pump-1',
      requestId: 'rq-42',
      status: 201,
      payload: Buffer.from(body),
      contentType: 'application/json',
    })
  })

  it('bounds the long polls of one device with 429 and Retry-After, before writing anything', async () => {
    const tenant = newTenant()
    await h.deviceWithPassword(tenant, 'greedy-1')
    const auth = basicAuth('greedy-1', tenant)
    const controllers = Array.from({ length: 4 }, () => new AbortController())
    const polls = controllers.map((c) =>
      poll('/v1/command?ct=30', auth, { signal: c.signal }).catch(() => undefined),
    )
    await waitUntil(() => h.commands.attached(tenant, 'greedy-1') === 4, {
      message: () => 'four polls attached',
    })
    const before = await h.ingressCount()
    const refused = await post('/v1/status?ct=30', { auth, body: 'x' })
    expect(refused.status).toBe(429)
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(await h.ingressCount()).toBe(before)
    expect((await poll('/v1/command?ct=30', auth)).status).toBe(429)
    for (const c of controllers) c.abort()
    await Promise.all(polls)
    await waitUntil(() => h.commands.attached(tenant, 'greedy-1') === 0)
  })

  it('refuses other methods on /v1/command and a response path that is malformed', async () => {
    const tenant = newTenant()
    await h.deviceWithPassword(tenant, 'm-1')
    const auth = basicAuth('m-1', tenant)
    const put = await fetch(`${h.url}/v1/command`, { method: 'PUT', headers: { authorization: auth } })
    expect(put.status).toBe(405)
    expect(put.headers.get('allow')).toBe('GET, POST')
    const head = await fetch(`${h.url}/v1/command?ct=5`, { method: 'HEAD', headers: { authorization: auth } })
    expect(head.status).toBe(405)
    expect(h.commands.attached(tenant, 'm-1')).toBe(0)
    expect((await post('/v1/command/res/r1/99', { auth, body: 'x' })).status).toBe(403)
    expect((await post('/v1/command', { auth, body: 'x' })).status).toBe(403)
    expect((await poll('/v1/command?ct=61', auth)).status).toBe(400)
    expect((await fetch(`${h.url}/v1/command?ct=1`)).status).toBe(401)
  })
})

describe('device HTTP adapter stopping', () => {
  it('answers waiting polls at once and detaches their sinks, leaving commands queued', async () => {
    const own = await startHttpAdapter()
    try {
      const tenant = newTenant()
      await own.deviceWithPassword(tenant, 'd1')
      const polling = fetch(`${own.url}/v1/command?ct=60`, {
        headers: { authorization: basicAuth('d1', tenant) },
      })
      await own.commands.whenAttached(tenant, 'd1')
      const stopped = own.adapter.stop()
      expect((await polling).status).toBe(204)
      await stopped
      expect(own.commands.attached(tenant, 'd1')).toBe(0)
    } finally {
      await own.close().catch(() => undefined)
    }
  })
})

describe('device HTTP adapter with a closed bus', () => {
  it('answers 503 with Retry-After once the bus is gone', async () => {
    const own = await startHttpAdapter()
    try {
      const tenant = newTenant()
      await own.deviceWithPassword(tenant, 'd1')
      const auth = basicAuth('d1', tenant)
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
