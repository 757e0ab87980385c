// One CoAP request through the handler, with doubles at its ports (authenticator, device lookup,
// rate limiter, ingest, command outlet): which check answers which code, in which order, what
// reaches ingest, and how `?ct=`, command responses and observations are answered.
import { describe, expect, it } from 'vitest'
import type { DeviceMessage, Outcome } from '../../../adapters/adapter.ts'
import type { EventInput } from '../../../core/events/build.ts'
import { configEtag, createRequestHandler, isReply } from '../../../adapters/coap/handler.ts'
import type { Answer } from '../../../adapters/coap/handler.ts'
import type { WireRequest } from '../../../adapters/coap/map.ts'
import type { CoapReply } from '../../../adapters/coap/outcome.ts'
import { createPollSlots } from '../../../adapters/poll-slots.ts'
import { TributaryError } from '../../../core/errors.ts'
import { APP_VERSION_PATTERN } from '../../../core/registry/device-config.ts'
import { silentLogger } from '../../../core/log.ts'
import type { FakeOutlet } from '../http/fake-outlet.ts'
import { command, createFakeOutlet } from '../http/fake-outlet.ts'
import type { DeviceAuthResult } from '../../../core/registry/auth.ts'
import type { ConfigReportInput, Device } from '../../../core/registry/model.ts'
import type { EffectiveConfig } from '../../../core/registry/service.ts'

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
    appVersion: null,
    lastSeen: null,
    version: 1,
    createdAt: '',
    updatedAt: '',
    ...fields,
  }
}

/** The configuration service: one effective configuration, the ids sent and the reports taken. */
function createFakeConfig(configId = 'q3Jm2cH1yF8x0eZ4b7QK9w') {
  const delivered: string[] = []
  const applied: unknown[] = []
  const versions: string[] = []
  return {
    delivered,
    applied,
    versions,
    reportAppVersion: async (tenant: string, device: string, appVersion: unknown): Promise<Device> => {
      if (typeof appVersion !== 'string' || !APP_VERSION_PATTERN.test(appVersion))
        throw new TributaryError('REGISTRY_INVALID', 'appVersion: use 1-64 of A-Z a-z 0-9 . _ -')
      versions.push(`${tenant}/${device} ${appVersion}`)
      return { tenant, id: device, appVersion } as unknown as Device
    },
    getEffectiveConfig: async (tenant: string, device: string): Promise<EffectiveConfig> => ({
      tenant,
      device,
      appVersion: null,
      configId,
      config: { led: 'on' },
      levels: [],
      state: null,
    }),
    configDelivered: async (tenant: string, device: string, id: string, protocol: string) => {
      delivered.push(`${tenant}/${device} ${id} ${protocol}`)
    },
    configApplied: async (_t: string, _d: string, report: unknown): Promise<ConfigReportInput> => {
      const r = report as { configId?: unknown; statusCode?: number }
      if (r.configId !== configId)
        throw new TributaryError('REGISTRY_INVALID', `${String(r.configId)} was never sent`)
      applied.push(report)
      return { configId, statusCode: r.statusCode ?? 200, reasonPhrase: null }
    },
  }
}

/** The command side of the handler's deps, with a fake outlet. */
function commandDeps(commands: FakeOutlet = createFakeOutlet(), config = createFakeConfig()) {
  return {
    commands,
    slots: createPollSlots({ total: 10, perTenant: 5, perDevice: 2 }),
    maxWaitSeconds: 60,
    settleMs: 5_000,
    config,
  }
}

/** The answer as a plain reply (what every request but `?ct=` with a command and Observe gets). */
function asReply(answer: Answer): CoapReply {
  if (!isReply(answer)) throw new Error(`not a plain reply: ${JSON.stringify(Object.keys(answer))}`)
  return answer
}

function setup(
  options: {
    auth?: DeviceAuthResult
    outcome?: Outcome
    allowed?: boolean
    devices?: Device[]
    commands?: FakeOutlet
  } = {},
) {
  const config = createFakeConfig()
  const published: DeviceMessage[] = []
  const events: EventInput[] = []
  const seen: string[] = []
  const calls: string[] = []
  const commands = options.commands ?? createFakeOutlet()
  const raw = createRequestHandler({
    ...commandDeps(commands, config),
    ingest: {
      publish: async (m) => {
        published.push(m)
        return options.outcome ?? { kind: 'accepted' }
      },
      event: async (e) => {
        events.push(e)
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
  const handler = async (r: WireRequest): Promise<CoapReply> => asReply(await raw(r))
  return { handler, raw, published, events, seen, calls, commands, config }
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
      [{ uriQuery: [Buffer.from('ct=61')] }, '4.00'],
      [{ uriPath: ['v1', 'command', 'reboot'].map((p) => Buffer.from(p)) }, '4.03'],
      [{ uriPath: ['v1', 'command', 'res', 'r1', '700'].map((p) => Buffer.from(p)) }, '4.03'],
      [{ method: 'GET' }, '4.05'],
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
    const raw = createRequestHandler({
      ...commandDeps(),
      ingest: { publish: async () => ({ kind: 'accepted' }), event: async () => ({ kind: 'accepted' }) },
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
    const handler = async (r: WireRequest): Promise<CoapReply> => asReply(await raw(r))
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

  const failingAuth = (err: Error) =>
    createRequestHandler({
      ...commandDeps(),
      ingest: { publish: async () => ({ kind: 'accepted' }), event: async () => ({ kind: 'accepted' }) },
      auth: { byPassword: async () => Promise.reject(err), byToken: async () => Promise.reject(err) },
      findDevice: async () => undefined,
      limiter: { take: async () => ({ allowed: true, retryAfterMs: 0 }) },
      lastSeen: { seen: () => undefined },
      maxPayloadBytes: 64,
      log: silentLogger,
    })

  it('answers 5.03 with Max-Age when the registry cannot answer now, instead of throwing', async () => {
    const raw = failingAuth(new TributaryError('REGISTRY_UNAVAILABLE', 'database gone'))
    expect(await raw(request())).toMatchObject({ code: '5.03', maxAge: 5 })
  })

  it('answers 5.00 for an unexpected failure: retrying a bug does not help', async () => {
    const raw = failingAuth(new TypeError('x is undefined'))
    expect(await raw(request())).toMatchObject({ code: '5.00' })
  })

  it('with ?ct= hands over the command that comes after the event is durable', async () => {
    const { raw, published, commands } = setup()
    const answering = raw(request({ uriQuery: [Buffer.from('ct=30')] }))
    await commands.whenAttached('acme', 'meter-1')
    expect(published).toHaveLength(1)
    const sent = command({ tenant: 'acme', device: 'meter-1' })
    commands.send(sent)
    const answer = await answering
    if (isReply(answer) || !('handover' in answer)) throw new Error('expected a command')
    expect(answer.handover.command).toBe(sent)
    expect(answer.receiver).toBe('meter-1')
    answer.handover.settle({ kind: 'delivered' })
    await commands.whenResults(1)
    expect(commands.attached('acme', 'meter-1')).toBe(0)
  })

  it('with ?ct= answers 2.04 when the bus refused nothing but no command came before the adapter stopped', async () => {
    const stopping = new AbortController()
    const commands = createFakeOutlet()
    const raw = createRequestHandler({
      ...commandDeps(commands),
      stopping: stopping.signal,
      ingest: { publish: async () => ({ kind: 'accepted' }), event: async () => ({ kind: 'accepted' }) },
      auth: { byPassword: async () => ok('meter-1'), byToken: async () => ok('meter-1') },
      findDevice: async () => undefined,
      limiter: { take: async () => ({ allowed: true, retryAfterMs: 0 }) },
      lastSeen: { seen: () => undefined },
      maxPayloadBytes: 64,
      log: silentLogger,
    })
    const answering = raw(request({ uriQuery: [Buffer.from('ct=30')] }))
    await commands.whenAttached('acme', 'meter-1')
    stopping.abort()
    expect(await answering).toEqual({ code: '2.04' })
    expect(commands.attached('acme', 'meter-1')).toBe(0)
  })

  it('refuses a device past its share of waits with 4.29, writing nothing', async () => {
    const { raw, handler, published, commands } = setup()
    const waits = [
      raw(request({ uriQuery: [Buffer.from('ct=1')] })),
      raw(request({ uriQuery: [Buffer.from('ct=1')] })),
    ]
    await commands.whenAttached('acme', 'meter-1', 2)
    expect(await handler(request({ uriQuery: [Buffer.from('ct=1')] }))).toMatchObject({ code: '4.29' })
    expect(published).toHaveLength(2)
    expect(await Promise.all(waits)).toEqual([{ code: '2.04' }, { code: '2.04' }])
  })

  it('makes a command response durable as a response event, answers 2.04 and reports it', async () => {
    const devices = [device('child', { gateways: ['gw-1'] })]
    const { handler, events, published, commands } = setup({ devices })
    const reply = await handler(
      request({
        credentials: [basic('gw-1@acme:pw')],
        uriPath: ['v1', 'command', 'res', 'rq-7', '200'].map((p) => Buffer.from(p)),
        uriQuery: [Buffer.from('as=child')],
        payload: Buffer.from('{"ok":true}'),
      }),
    )
    expect(reply).toEqual({ code: '2.04' })
    expect(published).toEqual([])
    expect(events).toEqual([
      {
        kind: 'command.response',
        tenant: 'acme',
        device: 'child',
        sender: 'gw-1',
        protocol: 'coap',
        data: Buffer.from('{"ok":true}'),
        datacontenttype: 'application/json',
        credential: 'c1',
        time: new Date('2026-11-29T00:00:00Z'),
        extensions: { requestid: 'rq-7', status: '200' },
      },
    ])
    expect(commands.responses).toEqual([
      {
        tenant: 'acme',
        device: 'child',
        requestId: 'rq-7',
        status: 200,
        payload: Buffer.from('{"ok":true}'),
        contentType: 'application/json',
      },
    ])
  })

  it('does not report a response the bus did not take', async () => {
    const { handler, commands } = setup({ outcome: { kind: 'unavailable', detail: 'down' } })
    const path = ['v1', 'command', 'res', 'rq-8', '500'].map((p) => Buffer.from(p))
    expect((await handler(request({ uriPath: path }))).code).toBe('5.03')
    expect(commands.responses).toEqual([])
  })

  it('authenticates an observation of /v1/commands and holds a slot for it', async () => {
    const devices = [device('child', { gateways: ['gw-1'] })]
    const { raw, published } = setup({ devices })
    const observe = (fields: Partial<WireRequest>) =>
      raw(
        request({
          method: 'GET',
          uriPath: ['v1', 'commands'].map((p) => Buffer.from(p)),
          payload: Buffer.alloc(0),
          contentFormat: undefined,
          observe: 0,
          ...fields,
        }),
      )
    const answer = await observe({
      credentials: [basic('gw-1@acme:pw')],
      uriQuery: [Buffer.from('as=child')],
    })
    if (isReply(answer) || !('observe' in answer)) throw new Error('expected an observation')
    expect(answer.observe).toMatchObject({ tenant: 'acme', device: 'child', receiver: 'gw-1' })
    expect(published).toEqual([])
    expect(await observe({ credentials: [] })).toMatchObject({ code: '4.01' })
    expect(
      await observe({ credentials: [basic('gw-1@acme:pw')], uriQuery: [Buffer.from('as=ghost')] }),
    ).toMatchObject({
      code: '4.03',
    })
    // A second observation of the same device fits (two per device here); a third does not.
    const second = await observe({ credentials: [basic('child@acme:pw')] })
    expect('observe' in second).toBe(true)
    expect(await observe({ credentials: [basic('child@acme:pw')] })).toMatchObject({ code: '4.29' })
    if ('observe' in second) second.observe.release()
    expect('observe' in (await observe({ credentials: [basic('child@acme:pw')] }))).toBe(true)
  })

  describe('configuration', () => {
    const ID = 'q3Jm2cH1yF8x0eZ4b7QK9w'
    const get = (fields: Partial<WireRequest> = {}) =>
      request({
        method: 'GET',
        uriPath: ['v1', 'config'].map((x) => Buffer.from(x)),
        contentFormat: undefined,
        payload: Buffer.alloc(0),
        ...fields,
      })
    const report = (body: string) =>
      request({ uriPath: ['v1', 'config', 'applied'].map((x) => Buffer.from(x)), payload: Buffer.from(body) })

    it('answers GET /v1/config 2.05 with {configId, config}, Content-Format 50 and the id as ETag once delivered', async () => {
      const { handler, events, config } = setup()
      const r = await handler(get())
      expect(r.code).toBe('2.05')
      expect(r.etag).toEqual(Buffer.from(ID, 'base64url').subarray(0, 8))
      expect(r.etag).toEqual(configEtag(ID))
      expect(r.body?.contentFormat).toBe(50)
      expect(JSON.parse(r.body!.payload.toString())).toEqual({ configId: ID, config: { led: 'on' } })
      expect(events.map((e) => [e.kind, e.protocol])).toEqual([['config.delivered', 'coap']])
      expect(config.delivered).toEqual([`acme/meter-1 ${ID} coap`])
    })

    it('answers 2.03 Valid to the ETag of the current id, with nothing written', async () => {
      const { handler, events, config } = setup()
      const r = await handler(get({ etags: [Buffer.from('old'), configEtag(ID)] }))
      expect(r).toEqual({ code: '2.03', etag: configEtag(ID) })
      expect(events).toEqual([])
      expect(config.delivered).toEqual([])
    })

    it('sends nothing when the delivered event is not durable', async () => {
      const { handler, config } = setup({ outcome: { kind: 'unavailable', detail: 'bus down' } })
      expect((await handler(get())).code).toBe('5.03')
      expect(config.delivered).toEqual([])
    })

    it('hands GET /v1/config with Observe 0 to the observations, within the slots, and refuses strangers', async () => {
      const { handler, raw, events } = setup()
      const first = await raw(get({ observe: 0 }))
      if (isReply(first) || !('observeConfig' in first))
        throw new Error('expected a configuration observation')
      expect(first.observeConfig).toMatchObject({
        tenant: 'acme',
        device: 'meter-1',
        sender: 'meter-1',
        credentialId: 'c1',
      })
      // Nothing is delivered before the observation starts (config-observe.ts answers it).
      expect(events).toEqual([])
      const second = await raw(get({ observe: 0 }))
      expect('observeConfig' in second).toBe(true)
      expect(await handler(get({ observe: 0 }))).toMatchObject({ code: '4.29' })
      if ('observeConfig' in second) second.observeConfig.release()
      expect('observeConfig' in (await raw(get({ observe: 0 })))).toBe(true)
      expect((await handler(get({ observe: 0, credentials: [] }))).code).toBe('4.01')
      expect((await handler(get({ credentials: [] }))).code).toBe('4.01')
    })

    it('records POST /v1/config/applied and writes config.applied (2.04)', async () => {
      const { handler, events, config } = setup()
      expect(await handler(report(`{"configId":"${ID}","statusCode":200}`))).toEqual({ code: '2.04' })
      expect(config.applied).toEqual([{ configId: ID, statusCode: 200 }])
      expect(events.map((e) => [e.kind, e.protocol, e.credential])).toEqual([
        ['config.applied', 'coap', 'c1'],
      ])
    })

    it('records the appVersion a GET /v1/config names before answering, and refuses a bad one', async () => {
      const { handler, events, config } = setup()
      expect((await handler(get({ uriQuery: [Buffer.from('appVersion=v2.1')] }))).code).toBe('2.05')
      expect(config.versions).toEqual(['acme/meter-1 v2.1'])
      const bad = await handler(get({ uriQuery: [Buffer.from('appVersion=a/b')] }))
      expect(bad).toMatchObject({ code: '4.00' })
      expect(bad.detail).toMatch(/appVersion/)
      // Only the configuration request takes it: anywhere else it is an unknown parameter.
      const elsewhere = await handler(
        request({
          uriPath: ['v1', 'config', 'applied'].map((x) => Buffer.from(x)),
          payload: Buffer.from(`{"configId":"${ID}"}`),
          uriQuery: [Buffer.from('appVersion=v3')],
        }),
      )
      expect(elsewhere).toMatchObject({ code: '4.00', detail: 'unknown query parameter "appVersion"' })
      expect(config.versions).toHaveLength(1)
      expect(events.map((e) => e.kind)).toEqual(['config.delivered'])
    })

    it('answers 4.00 to a report of an id never sent, or not JSON, and writes nothing', async () => {
      const { handler, events } = setup()
      const never = await handler(report('{"configId":"AAAAAAAAAAAAAAAAAAAAAA"}'))
      expect(never.code).toBe('4.00')
      expect(never.detail).toMatch(/never sent/)
      expect((await handler(report('not json'))).code).toBe('4.00')
      expect(events).toEqual([])
    })
  })
})
