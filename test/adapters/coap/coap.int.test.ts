// The CoAP adapter on a real UDP port with the real registry (PGlite), the embedded bus and the
// in-process cluster state, driven by the `coap` package's client and by raw datagrams.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generate } from 'coap-packet'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCoapAdapter } from '../../../adapters/coap/index.ts'
import { createIngest } from '../../../adapters/adapter.ts'
import type { BusMessage } from '../../../core/bus/bus.ts'
import { createEmbeddedBus } from '../../../core/bus/embedded/index.ts'
import { isTributaryError } from '../../../core/errors.ts'
import { decode } from '../../../core/events/kafka-codec.ts'
import { silentLogger } from '../../../core/log.ts'
import { createMetricsRegistry } from '../../../core/metrics.ts'
import { uniqueName, waitUntil } from '../../helpers/wait.ts'
import type { CoapHarness } from './harness.ts'
import { TOPICS, basic, coapConfig, coapRequest, rawExchange, startCoap } from './harness.ts'

const PASSWORD = 'correct horse battery'
let h: CoapHarness

beforeAll(async () => {
  h = await startCoap()
})
afterAll(async () => {
  await h?.close()
})

const event = (m: BusMessage) =>
  decode({ key: m.key === undefined ? undefined : Buffer.from(m.key), value: m.value, headers: m.headers })

/** A tenant with devices that have the test password; returns the tenant id. */
async function tenantWithDevices(devices: Array<string | [string, Record<string, unknown>]>, quota?: number) {
  const tenant = uniqueName('co').toLowerCase()
  await h.registry.createTenant(
    tenant,
    quota === undefined ? {} : { quotas: { maxMessagesPerSecond: quota } },
  )
  for (const entry of devices) {
    const [id, fields] = typeof entry === 'string' ? [entry, {}] : entry
    await h.registry.createDevice(tenant, id, fields)
    await h.registry.setPassword(tenant, id, PASSWORD)
  }
  await h.settle()
  return tenant
}

const recordsOf = (tenant: string): BusMessage[] => h.ingress.filter((m) => m.key?.startsWith(`${tenant}/`))
const waitForRecords = (tenant: string, count: number) =>
  waitUntil(() => recordsOf(tenant).length >= count, { message: () => `${count} record(s) of ${tenant}` })

describe('CoAP adapter (integration)', () => {
  it('turns a confirmable POST into a telemetry event, answers 2.04 and records last seen', async () => {
    const tenant = await tenantWithDevices(['meter-1'])
    const reply = await coapRequest(h.port, {
      path: '/v1/sensors/temperature',
      payload: '{"celsius":21.5}',
      options: { '4209': basic(`meter-1@${tenant}`, PASSWORD), 'Content-Format': 'application/json' },
    })
    expect(reply.code).toBe('2.04')
    // 2.04 means durable: the record is already on the bus when the device hears it.
    expect(await h.ingressCount()).toBeGreaterThan(0)
    await waitForRecords(tenant, 1)
    const e = event(recordsOf(tenant)[0]!)
    expect(e.attributes).toMatchObject({
      type: 'io.tributary.telemetry.v1',
      source: `tributary://${tenant}/meter-1`,
      subject: 'sensors/temperature',
      datacontenttype: 'application/json',
      tenant,
      device: 'meter-1',
      protocol: 'coap',
      partitionkey: `${tenant}/meter-1`,
    })
    expect(e.attributes['sender']).toBeUndefined()
    expect(e.data?.toString()).toBe('{"celsius":21.5}')
    await waitUntil(async () => (await h.store.getDevice(tenant, 'meter-1'))?.lastSeen !== null)
  })

  it('takes a non-confirmable POST with a device token in the query, and answers it', async () => {
    const tenant = await tenantWithDevices(['tok-1'])
    const { secret } = await h.registry.createCredential(tenant, 'tok-1', { type: 'token' })
    await h.settle()
    const reply = await coapRequest(h.port, {
      path: '/v1/status',
      query: `token=${secret!}`,
      payload: 'up',
      confirmable: false,
      options: { 'Content-Format': 'text/plain' },
    })
    expect(reply.code).toBe('2.04')
    await waitForRecords(tenant, 1)
    const e = event(recordsOf(tenant)[0]!)
    expect(e.attributes).toMatchObject({
      device: 'tok-1',
      subject: 'status',
      datacontenttype: 'text/plain;charset=utf-8',
    })
    expect(e.data?.toString()).toBe('up')
  })

  it('reassembles a block-wise (Block1) body from the coap client and refuses one over the limit with 4.13', async () => {
    const tenant = await tenantWithDevices(['big-1'])
    const body = Buffer.from(Array.from({ length: 1_500 }, (_, i) => i % 251))
    const options = { '4209': basic(`big-1@${tenant}`, PASSWORD), Block1: Buffer.of(0x2) }
    const reply = await coapRequest(h.port, { path: '/v1/blob', payload: body, options })
    expect(reply.code).toBe('2.04')
    await waitForRecords(tenant, 1)
    expect(recordsOf(tenant)[0]!.value).toEqual(body)

    const before = await h.ingressCount()
    const tooBig = await coapRequest(h.port, { path: '/v1/blob', payload: Buffer.alloc(2_049, 1), options })
    expect(tooBig.code).toBe('4.13')
    expect(tooBig.payload).toMatch(/exceeds 2048/)
    expect(tooBig.headers['Size1']).toBe(2_048)
    expect(await h.ingressCount()).toBe(before)
  })

  it('refuses bad input with the documented codes and writes nothing', async () => {
    const tenant = await tenantWithDevices(['good', ['off', { enabled: false }]])
    const other = await tenantWithDevices(['intruder'])
    const creds = basic(`good@${tenant}`, PASSWORD)
    const before = await h.ingressCount()
    const cases: Array<[string, Parameters<typeof coapRequest>[1], string]> = [
      ['no credentials', { path: '/v1/a', payload: 'x' }, '4.01'],
      [
        'wrong password',
        { path: '/v1/a', payload: 'x', options: { '4209': basic(`good@${tenant}`, 'nope') } },
        '4.01',
      ],
      [
        'unknown tenant',
        { path: '/v1/a', payload: 'x', options: { '4209': basic(`good@${uniqueName('no')}`, PASSWORD) } },
        '4.01',
      ],
      [
        'disabled device',
        { path: '/v1/a', payload: 'x', options: { '4209': basic(`off@${tenant}`, PASSWORD) } },
        '4.03',
      ],
      // Another tenant's device may not send for this tenant's device.
      [
        'other tenant as',
        {
          path: '/v1/a',
          query: 'as=good',
          payload: 'x',
          options: { '4209': basic(`intruder@${other}`, PASSWORD) },
        },
        '4.03',
      ],
      ['not a gateway', { path: '/v1/a', query: 'as=off', payload: 'x', options: { '4209': creds } }, '4.03'],
      ['bad channel', { path: '/v1/a$b', payload: 'x', options: { '4209': creds } }, '4.00'],
      [
        'malformed JSON',
        { path: '/v1/a', payload: '{"a":', options: { '4209': creds, 'Content-Format': 'application/json' } },
        '4.00',
      ],
      [
        'unknown format',
        { path: '/v1/a', payload: 'x', options: { '4209': creds, 'Content-Format': 'application/cose-key' } },
        '4.15',
      ],
      ['wrong path', { path: '/telemetry', payload: 'x', options: { '4209': creds } }, '4.04'],
      ['GET', { path: '/v1/a', method: 'GET', options: { '4209': creds } }, '4.05'],
    ]
    for (const [name, init, code] of cases) {
      const reply = await coapRequest(h.port, init)
      expect(reply.code, name).toBe(code)
      expect(reply.payload, name).not.toBe('')
    }
    // A positive control, then exactly one more record: none of the above reached the bus.
    expect(
      (await coapRequest(h.port, { path: '/v1/ok', payload: 'fine', options: { '4209': creds } })).code,
    ).toBe('2.04')
    await waitForRecords(tenant, 1)
    expect(await h.ingressCount()).toBe(before + 1)
    expect(recordsOf(other)).toEqual([])
  })

  it('lets a gateway send for a device that lists it, with the gateway as sender', async () => {
    const tenant = await tenantWithDevices(['gw-1', ['child', { gateways: ['gw-1'] }]])
    const reply = await coapRequest(h.port, {
      path: '/v1/child/data',
      query: 'as=child',
      payload: Buffer.of(1, 2, 3),
      options: { '4209': basic(`gw-1@${tenant}`, PASSWORD), 'Content-Format': 'application/octet-stream' },
    })
    expect(reply.code).toBe('2.04')
    await waitForRecords(tenant, 1)
    const e = event(recordsOf(tenant)[0]!)
    expect(e.attributes).toMatchObject({ device: 'child', sender: 'gw-1', partitionkey: `${tenant}/child` })
    await waitUntil(async () => (await h.store.getDevice(tenant, 'child'))?.lastSeen !== null)
  })

  it("answers 4.29 with Max-Age once a device is over its tenant's rate", async () => {
    const tenant = await tenantWithDevices(['fast'], 1)
    const send = () =>
      coapRequest(h.port, {
        path: '/v1/r',
        payload: 'x',
        options: { '4209': basic(`fast@${tenant}`, PASSWORD) },
      })
    const codes = [(await send()).code, (await send()).code]
    const third = await send()
    expect(codes).toEqual(['2.04', '2.04'])
    expect(third.code).toBe('4.29')
    expect(third.headers['Max-Age']).toBeGreaterThanOrEqual(1)
    await waitForRecords(tenant, 2)
    expect(recordsOf(tenant)).toHaveLength(2)
  })

  it('answers a retransmitted confirmable request from its cache: one event, two identical answers', async () => {
    const tenant = await tenantWithDevices(['retx'])
    const datagram = generate({
      code: '0.02',
      messageId: 4242,
      token: Buffer.from('t0k3n'),
      confirmable: true,
      options: [
        { name: 'Uri-Path', value: Buffer.from('v1') },
        { name: 'Uri-Path', value: Buffer.from('once') },
        { name: '4209', value: Buffer.from(basic(`retx@${tenant}`, PASSWORD)) },
      ],
      payload: Buffer.from('only once'),
    })
    const answers = await rawExchange(h.port, [datagram, datagram], 2)
    expect(answers.map((a) => [a.code, a.ack, a.messageId])).toEqual([
      ['2.04', true, 4242],
      ['2.04', true, 4242],
    ])
    await waitForRecords(tenant, 1)
    expect(recordsOf(tenant)).toHaveLength(1)
  })

  it('counts answers by code in tributary_coap_requests_total and times them', async () => {
    const text = await h.metrics.metrics()
    expect(text).toMatch(/tributary_coap_requests_total\{code="2\.04"\} [1-9]/)
    expect(text).toMatch(/tributary_coap_requests_total\{code="4\.01"\} [1-9]/)
    expect(text).toMatch(/tributary_coap_requests_total\{code="4\.13"\} [1-9]/)
    expect(text).toMatch(/tributary_coap_request_duration_seconds_count [1-9]/)
  })

  it('answers 5.03 with Max-Age when the bus cannot take the event', async () => {
    const tenant = await tenantWithDevices(['unlucky'])
    const dir = mkdtempSync(join(tmpdir(), 'coap-closed-'))
    const closed = await createEmbeddedBus({ dataDir: dir, log: silentLogger })
    await closed.admin.createTopics([{ name: TOPICS.ingress, partitions: 1 }])
    await closed.close()
    const adapter = createCoapAdapter(coapConfig(), {
      ingest: createIngest({ bus: closed, topics: TOPICS, log: silentLogger }),
      auth: h.auth,
      touchDevice: (t, d, at) => h.store.touchDevice(t, d, at),
      cluster: h.cluster,
      commands: h.commands,
      config: h.registry,
      onRegistryChange: (listener) => h.auth.onChange(listener),
      metrics: createMetricsRegistry(),
      log: silentLogger,
    })
    await adapter.start()
    try {
      const reply = await coapRequest(adapter.ports()['coap']!, {
        path: '/v1/a',
        payload: 'x',
        options: { '4209': basic(`unlucky@${tenant}`, PASSWORD) },
      })
      expect(reply.code).toBe('5.03')
      expect(reply.headers['Max-Age']).toBeGreaterThanOrEqual(1)
    } finally {
      await adapter.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('fails to start on a taken port, naming the variable to change', async () => {
    const second = createCoapAdapter(coapConfig({ port: h.port }), {
      ingest: createIngest({ bus: h.bus, topics: TOPICS, log: silentLogger }),
      auth: h.auth,
      touchDevice: async () => undefined,
      cluster: h.cluster,
      commands: h.commands,
      config: h.registry,
      onRegistryChange: (listener) => h.auth.onChange(listener),
      metrics: createMetricsRegistry(),
      log: silentLogger,
    })
    const err: unknown = await second.start().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(isTributaryError(err, 'PORT_IN_USE')).toBe(true)
    expect((err as Error).message).toContain('TRIBUTARY_COAP_PORT')
    await second.stop()
  })
})
