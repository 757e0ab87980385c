// One CoAP request through the handler, with doubles at its ports (authenticator, device lookup,
// rate limiter, ingest): which check answers which code, in which order, and what reaches ingest.
import { describe, expect, it } from 'vitest'
import type { DeviceMessage, Outcome } from '../../../adapters/adapter.ts'
import { createRequestHandler } from '../../../adapters/coap/handler.ts'
import type { WireRequest } from '../../../adapters/coap/map.ts'
import { silentLogger } from '../../../core/log.ts'
import type { DeviceAuthResult } from '../../../core/registry/auth.ts'
import type { Device } from '../../../core/registry/model.ts'

const basic = (text: string): string => `Basic ${Buffer.from(text).toString('base64')}`
const ok = (device: string): DeviceAuthResult => ({
  ok: true,
  tenant: 'acme',
  device,
  method: 'password',
  credentialId: 'c1',
})

function device(id: string, fields: Partial<Device> = {}): Device {
  return {
    tenant: 'acme',
    id,
    enabled: true,
    labels: {},
    gateways: [],
    lastSeen: null,
    version: 1,
    createdAt: '',
    updatedAt: '',
    ...fields,
  }
}

function setup(
  options: { auth?: DeviceAuthResult; outcome?: Outcome; allowed?: boolean; devices?: Device[] } = {},
) {
  const published: DeviceMessage[] = []
  const seen: string[] = []
  const calls: string[] = []
  const handler = createRequestHandler({
    ingest: {
      publish: async (m) => {
        published.push(m)
        return options.outcome ?? { kind: 'accepted' }
      },
    },
    auth: {
      byPassword: async (username, password) => {
        calls.push(`password ${username} ${password}`)
        return options.auth ?? ok(username.split('@')[0]!)
      },
      byToken: async (token) => {
        calls.push(`token ${token}`)
        return options.auth ?? ok('token-device')
      },
    },
    findDevice: async (_t, id) => (options.devices ?? []).find((d) => d.id === id),
    limiter: {
      take: async (tenant, id) => {
        calls.push(`rate ${tenant}/${id}`)
        return options.allowed === false
          ? { allowed: false, retryAfterMs: 2_500 }
          : { allowed: true, retryAfterMs: 0 }
      },
    },
    lastSeen: { seen: (t, d) => seen.push(`${t}/${d}`) },
    maxPayloadBytes: 64,
    log: silentLogger,
    now: () => new Date('2026-11-29T00:00:00Z'),
  })
  return { handler, published, seen, calls }
}

const request = (fields: Partial<WireRequest> = {}): WireRequest => ({
  method: 'POST',
  uriPath: ['v1', 'sensors', 'temp'].map((s) => Buffer.from(s)),
  uriQuery: [],
  contentFormat: 'application/json',
  credentials: [basic('meter-1@acme:pw')],
  payload: Buffer.from('{"t":21.5}'),
  ...fields,
})

describe('CoAP request handler', () => {
  it('publishes an authenticated POST as telemetry and answers 2.04 once ingest accepted it', async () => {
    const { handler, published, seen, calls } = setup()
    expect(await handler(request())).toEqual({ code: '2.04' })
    expect(published).toEqual([
      {
        tenant: 'acme',
        device: 'meter-1',
        sender: undefined,
        protocol: 'coap',
        channel: 'sensors/temp',
        payload: Buffer.from('{"t":21.5}'),
        contentType: 'application/json',
        // The credential that authenticated the request, for the processors to re-check.
        credential: 'c1',
        time: new Date('2026-11-29T00:00:00Z'),
      },
    ])
    expect(calls).toEqual(['password meter-1@acme pw', 'rate acme/meter-1'])
    expect(seen).toEqual(['acme/meter-1'])
  })

  it('takes a device token from the query', async () => {
    const { handler, calls, published } = setup()
    const reply = await handler(
      request({ credentials: [], uriQuery: [Buffer.from('token=tdt_abc_def')], contentFormat: undefined }),
    )
    expect(reply.code).toBe('2.04')
    expect(calls[0]).toBe('token tdt_abc_def')
    expect(published[0]).toMatchObject({ device: 'token-device', contentType: undefined })
  })

  it('answers bad requests before looking at credentials', async () => {
    const cases: Array<[Partial<WireRequest>, string]> = [
      [{ method: 'PUT' }, '4.05'],
      [{ uriPath: [Buffer.from('v2'), Buffer.from('x')] }, '4.04'],
      [{ uriPath: [Buffer.from('v1'), Buffer.from('a b')] }, '4.00'],
      [{ uriQuery: [Buffer.from('ct=5')] }, '4.00'],
      [{ contentFormat: 12345 }, '4.15'],
      [{ payload: Buffer.alloc(65) }, '4.13'],
    ]
    for (const [fields, code] of cases) {
      const { handler, calls, published } = setup()
      const reply = await handler(request(fields))
      expect(reply.code, JSON.stringify(fields)).toBe(code)
      expect(reply.detail, code).toBeTruthy()
      expect(calls, code).toEqual([])
      expect(published, code).toEqual([])
    }
    const { handler } = setup()
    expect(await handler(request({ payload: Buffer.alloc(65) }))).toMatchObject({ size1: 64 })
  })

  it('answers 4.01 without credentials or with ones that do not authenticate', async () => {
    for (const [fields, auth] of [
      [{ credentials: [] }, undefined],
      [{ credentials: ['Digest x'] }, undefined],
      [{}, { ok: false, reason: 'bad-secret' }],
      [{}, { ok: false, reason: 'unknown' }],
      [{}, { ok: false, reason: 'expired' }],
    ] as const) {
      const { handler, published } = setup(auth === undefined ? {} : { auth })
      expect((await handler(request(fields))).code).toBe('4.01')
      expect(published).toEqual([])
    }
  })

  it('answers 4.03 for a disabled device and a method the tenant does not allow', async () => {
    for (const reason of ['disabled', 'method-not-allowed'] as const) {
      const { handler, published } = setup({ auth: { ok: false, reason } })
      expect((await handler(request())).code).toBe('4.03')
      expect(published).toEqual([])
    }
  })

  it('lets a gateway send for a device that lists it, and no other', async () => {
    const devices = [
      device('child', { gateways: ['gw-1'] }),
      device('stranger'),
      device('off', { gateways: ['gw-1'], enabled: false }),
    ]
    const { handler, published, calls, seen } = setup({ devices })
    const as = (id: string) =>
      handler(request({ credentials: [basic('gw-1@acme:pw')], uriQuery: [Buffer.from(`as=${id}`)] }))
    expect((await as('child')).code).toBe('2.04')
    expect(published[0]).toMatchObject({ device: 'child', sender: 'gw-1' })
    expect(calls).toContain('rate acme/child')
    expect(seen).toEqual(['acme/gw-1', 'acme/child'])
    for (const id of ['stranger', 'off', 'ghost']) {
      const reply = await as(id)
      expect(reply.code, id).toBe('4.03')
      expect(reply.detail).toContain('gateway')
    }
    expect(published).toHaveLength(1)
    // A device naming itself is no gateway case.
    expect((await handler(request({ uriQuery: [Buffer.from('as=meter-1')] }))).code).toBe('2.04')
  })

  it('checks that a body declared JSON is JSON, after authentication', async () => {
    const { handler, published, calls } = setup()
    const reply = await handler(request({ payload: Buffer.from('{"t":') }))
    expect(reply.code).toBe('4.00')
    expect(calls).toEqual(['password meter-1@acme pw'])
    expect(published).toEqual([])
  })

  it('answers 4.29 with Max-Age when the device is over its rate, publishing nothing', async () => {
    const { handler, published } = setup({ allowed: false })
    expect(await handler(request())).toMatchObject({ code: '4.29', maxAge: 3 })
    expect(published).toEqual([])
  })

  it('passes the bus outcome on: 5.03 with Max-Age when it cannot take the event', async () => {
    const { handler } = setup({ outcome: { kind: 'unavailable', detail: 'bus down', retryAfterMs: 2_000 } })
    expect(await handler(request())).toEqual({ code: '5.03', detail: 'bus down', maxAge: 2 })
  })

  it('verifies identical credentials arriving together once (one scrypt for a burst), distinct ones each', async () => {
    let verifications = 0
    const { promise: gate, resolve: open } = Promise.withResolvers<void>()
    const handler = createRequestHandler({
      ingest: { publish: async () => ({ kind: 'accepted' }) },
      auth: {
        byPassword: async (username) => {
          verifications++
          await gate
          return ok(username.split('@')[0]!)
        },
        byToken: async () => ok('t'),
      },
      findDevice: async () => undefined,
      limiter: { take: async () => ({ allowed: true, retryAfterMs: 0 }) },
      lastSeen: { seen: () => undefined },
      maxPayloadBytes: 64,
      log: silentLogger,
    })
    const burst = Array.from({ length: 5 }, () => handler(request()))
    const other = handler(request({ credentials: [basic('meter-1@acme:other')] }))
    open()
    const replies = await Promise.all([...burst, other])
    expect(replies.map((r) => r.code)).toEqual(Array(6).fill('2.04'))
    expect(verifications).toBe(2)
    // Settled verifications are not reused: the authenticator's own cache decides later ones.
    await handler(request())
    expect(verifications).toBe(3)
  })

  it('answers 5.03 when the registry fails, instead of throwing', async () => {
    const handler = createRequestHandler({
      ingest: { publish: async () => ({ kind: 'accepted' }) },
      auth: {
        byPassword: async () => Promise.reject(new Error('database gone')),
        byToken: async () => Promise.reject(new Error('database gone')),
      },
      findDevice: async () => undefined,
      limiter: { take: async () => ({ allowed: true, retryAfterMs: 0 }) },
      lastSeen: { seen: () => undefined },
      maxPayloadBytes: 64,
      log: silentLogger,
    })
    expect(await handler(request())).toMatchObject({ code: '5.03', maxAge: 5 })
  })
})
