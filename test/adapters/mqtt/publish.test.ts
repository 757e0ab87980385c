// One PUBLISH to an outcome with doubles at the ports (ingest, rate limiter, device lookup, command
// outlet): the checks that refuse it, in order and before any side effect, what each refusal does
// by QoS, and command responses made durable before the outlet hears of them.
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import type { DeviceMessage, Ingest, Outcome } from '../../../adapters/adapter.ts'
import type { RateLimiter } from '../../../adapters/device-limits.ts'
import { newConnection } from '../../../adapters/mqtt/connection.ts'
import type { Session } from '../../../adapters/mqtt/connection.ts'
import type { MqttMetrics } from '../../../adapters/mqtt/metrics.ts'
import { createPublishHandler } from '../../../adapters/mqtt/publish.ts'
import type { DeviceResponse } from '../../../commands/outlet.ts'
import type { EventInput } from '../../../core/events/build.ts'
import type { Device } from '../../../core/registry/model.ts'

const session: Session = { tenant: 'acme', device: 'gw-1', method: 'password', credentialId: 'c1' }
const at = new Date('2026-05-01T00:00:00Z')

function setup(
  options: { outcome?: Outcome; allowed?: boolean; devices?: Record<string, Partial<Device>> } = {},
) {
  const published: DeviceMessage[] = []
  const refused: Array<[string, string]> = []
  const taken: string[] = []
  const counted: Array<[string, number]> = []
  const events: EventInput[] = []
  const responses: DeviceResponse[] = []
  const ingest: Pick<Ingest, 'publish' | 'event'> = {
    publish: async (m) => {
      published.push(m)
      return options.outcome ?? { kind: 'accepted' }
    },
    event: async (e) => {
      events.push(e)
      return options.outcome ?? { kind: 'accepted' }
    },
  }
  const limiter: RateLimiter = {
    take: async (_tenant, device) => {
      taken.push(device)
      return { allowed: options.allowed ?? true, retryAfterMs: options.allowed === false ? 250 : 0 }
    },
  }
  const metrics = {
    message: (tenant: string, bytes: number) => counted.push([tenant, bytes]),
  } as unknown as MqttMetrics
  const handle = createPublishHandler({
    ingest,
    commands: { responded: (r) => responses.push(r) },
    limiter,
    findDevice: async (_t, d) => options.devices?.[d] as Device | undefined,
    metrics,
    maxPayloadBytes: 10,
    refused: (_conn, reason, detail) => refused.push([reason, detail]),
  })
  const conn = newConnection({ listener: 'mqtt', remote: undefined, stream: new PassThrough() })
  const publish = (topic: string, qos = 1, payload = 'x', retain = false) =>
    handle(conn, session, { topic, qos, retain, payload: Buffer.from(payload) }, at)
  return { publish, published, refused, taken, counted, events, responses }
}

describe('createPublishHandler', () => {
  it('publishes an accepted message and counts it', async () => {
    const t = setup()
    expect(await t.publish('sensors/t', 1, '21.5')).toEqual({ action: 'ack' })
    expect(t.published).toEqual([
      {
        tenant: 'acme',
        device: 'gw-1',
        sender: undefined,
        protocol: 'mqtt',
        channel: 'sensors/t',
        payload: Buffer.from('21.5'),
        // The session's credential, for the processors to re-check.
        credential: 'c1',
        time: at,
      },
    ])
    expect(t.counted).toEqual([['acme', 4]])
    expect(t.taken).toEqual(['gw-1'])
  })

  it.each([
    ['retained', 'state', true, 'x'],
    ['payload-too-large', 'state', false, 'x'.repeat(11)],
    ['reserved-topic', 'command/reboot', false, 'x'],
    ['invalid-topic', 'a b', false, 'x'],
  ] as const)('refuses %s before the rate check or the bus', async (reason, topic, retain, payload) => {
    const t = setup()
    expect(await t.publish(topic, 0, payload, retain)).toEqual({ action: 'disconnect', reason })
    expect([t.published, t.taken]).toEqual([[], []])
    expect(t.refused[0]![0]).toBe(reason)
  })

  it('lets a gateway publish for an enabled device listing it, and rate-limits that device', async () => {
    const t = setup({
      devices: {
        child: { enabled: true, gateways: ['gw-1'] },
        off: { enabled: false, gateways: ['gw-1'] },
        other: { enabled: true, gateways: ['gw-2'] },
      },
    })
    expect(await t.publish('gw/child/temp')).toEqual({ action: 'ack' })
    expect(t.published[0]).toMatchObject({ device: 'child', sender: 'gw-1', channel: 'temp' })
    expect(t.taken).toEqual(['child'])
    for (const device of ['off', 'other', 'missing']) {
      expect(await t.publish(`gw/${device}/temp`)).toEqual({
        action: 'disconnect',
        reason: 'gateway-not-allowed',
      })
    }
    expect(await t.publish('gw/gw-1/self')).toEqual({ action: 'ack' })
    expect(t.published).toHaveLength(2)
  })

  it('drops QoS 0 and disconnects QoS 1 over the rate', async () => {
    const t = setup({ allowed: false })
    expect(await t.publish('fast', 0)).toEqual({ action: 'drop', reason: 'rate-limited' })
    expect(await t.publish('fast', 1)).toEqual({ action: 'disconnect', reason: 'rate-limited' })
    expect(t.published).toEqual([])
  })

  it('maps what the bus says: unavailable drops QoS 0 and disconnects QoS 1; an invalid event disconnects', async () => {
    const down = setup({ outcome: { kind: 'unavailable', detail: 'bus closed' } })
    expect(await down.publish('x', 0)).toEqual({ action: 'drop', reason: 'unavailable' })
    expect(await down.publish('x', 2)).toEqual({ action: 'disconnect', reason: 'unavailable' })
    expect(down.counted).toEqual([])
    const bad = setup({ outcome: { kind: 'rejected', reason: 'too-large', detail: 'too big for the topic' } })
    expect(await bad.publish('x', 0)).toEqual({ action: 'disconnect', reason: 'event-too-large' })
    expect(bad.refused[0]![1]).toContain('too big for the topic')
  })

  it('makes a response durable as a command.response event, then tells the outlet', async () => {
    const t = setup()
    expect(await t.publish('command/res/r-1/200', 1, '{"ok":1}')).toEqual({ action: 'ack' })
    expect(t.published).toEqual([])
    expect(t.events).toEqual([
      {
        kind: 'command.response',
        tenant: 'acme',
        device: 'gw-1',
        sender: undefined,
        protocol: 'mqtt',
        data: Buffer.from('{"ok":1}'),
        datacontenttype: undefined,
        credential: 'c1',
        time: at,
        extensions: { requestid: 'r-1', status: '200' },
      },
    ])
    expect(t.responses).toEqual([
      { tenant: 'acme', device: 'gw-1', requestId: 'r-1', status: 200, payload: Buffer.from('{"ok":1}') },
    ])
    expect(t.taken).toEqual(['gw-1'])
  })

  it('takes a gateway response for a device listing it, with sender set, and refuses others', async () => {
    const t = setup({
      devices: { child: { enabled: true, gateways: ['gw-1'] }, other: { enabled: true, gateways: [] } },
    })
    expect(await t.publish('gw/child/command/res/r-2/503', 1, 'busy')).toEqual({ action: 'ack' })
    expect(t.events[0]).toMatchObject({
      device: 'child',
      sender: 'gw-1',
      extensions: { requestid: 'r-2', status: '503' },
    })
    expect(t.responses[0]).toMatchObject({ device: 'child', requestId: 'r-2', status: 503 })
    expect(await t.publish('gw/other/command/res/r-3/200')).toEqual({
      action: 'disconnect',
      reason: 'gateway-not-allowed',
    })
    expect(t.responses).toHaveLength(1)
  })

  it.each([
    'command/res/r-1/99',
    'command/res/r-1/600',
    'command/res/r 1/200',
    'command/res/r-1',
    'command/req/r-1/200',
  ])('refuses %s as a reserved topic', async (topic) => {
    const t = setup()
    expect(await t.publish(topic)).toEqual({ action: 'disconnect', reason: 'reserved-topic' })
    expect([t.events, t.responses]).toEqual([[], []])
  })

  it('does not tell the outlet of a response the bus did not take', async () => {
    const t = setup({ outcome: { kind: 'unavailable', detail: 'bus closed' } })
    expect(await t.publish('command/res/r-1/200', 1)).toEqual({ action: 'disconnect', reason: 'unavailable' })
    expect(t.responses).toEqual([])
  })
})
