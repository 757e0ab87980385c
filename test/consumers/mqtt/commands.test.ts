// Commands on the application broker without I/O: the command topics, the checks in order (topic,
// tenant, role, retain, size), the per-connection token bucket, and the event produced with a
// double of the bus and the device lookup (the ports).
import { describe, expect, it } from 'vitest'
import type { OutgoingRecord } from '../../../core/bus/bus.ts'
import { TributaryError } from '../../../core/errors.ts'
import { decode } from '../../../core/events/kafka-codec.ts'
import type { Device } from '../../../core/registry/model.ts'
import type { PublishCheck } from '../../../consumers/mqtt/commands.ts'
import {
  checkCommandPublish,
  createAppCommands,
  newBucket,
  takeToken,
} from '../../../consumers/mqtt/commands.ts'
import { parseCommandTopic } from '../../../consumers/mqtt/topics.ts'

describe('parseCommandTopic', () => {
  it('reads one-way and request-style command topics', () => {
    expect(parseCommandTopic('command/acme/dev-1/reboot')).toEqual({
      tenant: 'acme',
      device: 'dev-1',
      name: 'reboot',
      requestId: undefined,
    })
    expect(parseCommandTopic('command/acme/dev:1/get/r-7')).toEqual({
      tenant: 'acme',
      device: 'dev:1',
      name: 'get',
      requestId: 'r-7',
    })
  })

  it.each([
    'command/acme/dev-1',
    'command/acme/dev-1/a/b/c',
    'command/ACME/dev-1/reboot',
    'command/acme/dev 1/reboot',
    'command/acme/dev-1/res',
    'command/acme/dev-1/req/r',
    'command/acme/dev-1/reboot/',
    'command/acme//reboot',
    'commands/acme/dev-1/reboot',
    'app/acme/dev-1/reboot',
  ])('is not a command topic: %s', (topic) => {
    expect(parseCommandTopic(topic)).toBeUndefined()
  })
})

describe('checkCommandPublish', () => {
  const base: PublishCheck = {
    topic: 'command/acme/dev-1/reboot',
    payloadBytes: 10,
    retain: false,
    tenant: 'acme',
    canCommand: true,
    maxPayloadBytes: 100,
  }

  it('passes a command of the own tenant from a manager', () => {
    expect(checkCommandPublish(base)).toMatchObject({
      ok: true,
      command: { device: 'dev-1', name: 'reboot' },
    })
  })

  it.each([
    ['publish-refused', { topic: 'app/acme/x' }],
    ['bad-command-topic', { topic: 'command/acme/dev-1' }],
    ['bad-command-topic', { topic: 'command/acme/dev-1/res' }],
    ['other-tenant', { topic: 'command/other/dev-1/reboot' }],
    ['not-authorized', { canCommand: false }],
    ['retained', { retain: true }],
    ['payload-too-large', { payloadBytes: 101 }],
  ] as const)('refuses %s', (reason, change) => {
    expect(checkCommandPublish({ ...base, ...change })).toMatchObject({ ok: false, reason })
  })

  it('checks the tenant before the role: a reader learns nothing of other tenants', () => {
    expect(
      checkCommandPublish({ ...base, topic: 'command/other/dev-1/reboot', canCommand: false }),
    ).toMatchObject({ ok: false, reason: 'other-tenant' })
  })
})

describe('takeToken', () => {
  it('allows a burst, then refills at the rate', () => {
    const bucket = newBucket(2, 0)
    expect([takeToken(bucket, 0, 1, 2), takeToken(bucket, 0, 1, 2), takeToken(bucket, 0, 1, 2)]).toEqual([
      true,
      true,
      false,
    ])
    expect(takeToken(bucket, 500, 1, 2)).toBe(false)
    expect(takeToken(bucket, 1_000, 1, 2)).toBe(true)
    // Never more than the burst, however long it waited.
    expect([
      takeToken(bucket, 60_000, 1, 2),
      takeToken(bucket, 60_000, 1, 2),
      takeToken(bucket, 60_000, 1, 2),
    ]).toEqual([true, true, false])
  })
})

describe('createAppCommands', () => {
  function setup(options: { devices?: string[]; fail?: Error } = {}) {
    const produced: OutgoingRecord[] = []
    const send = createAppCommands({
      bus: {
        publish: async (records) => {
          if (options.fail !== undefined) throw options.fail
          produced.push(...records)
          return []
        },
      },
      topic: 'tributary.commands',
      findDevice: async (_tenant, device) =>
        (options.devices ?? ['dev-1']).includes(device) ? ({ id: device } as unknown as Device) : undefined,
      ttlMs: 30_000,
    })
    return { send, produced }
  }

  it('produces an io.tributary.command.v1 event keyed by tenant and device, with origin mqtt and the ttl', async () => {
    const { send, produced } = setup()
    const result = await send(
      { tenant: 'acme', device: 'dev-1', name: 'get', requestId: 'r-1' },
      Buffer.from('{"x":1}'),
    )
    expect(result).toMatchObject({ ok: true })
    expect(produced).toHaveLength(1)
    const record = produced[0]!
    expect(record.topic).toBe('tributary.commands')
    expect(record.key).toBe('acme/dev-1')
    const event = decode({ key: Buffer.from(record.key!), value: record.value, headers: record.headers! })
    expect(event.attributes).toMatchObject({
      type: 'io.tributary.command.v1',
      tenant: 'acme',
      device: 'dev-1',
      subject: 'get',
      protocol: 'mqtt',
      requestid: 'r-1',
    })
    expect(event.attributes.datacontenttype).toBeUndefined()
    expect(Date.parse(event.attributes['expires']!) - Date.parse(event.attributes.time!)).toBe(30_000)
    expect(event.data).toEqual(Buffer.from('{"x":1}'))
    expect(result.ok && result.id).toBe(event.attributes.id)
  })

  it('refuses an unknown device without producing anything', async () => {
    const { send, produced } = setup({ devices: [] })
    expect(
      await send({ tenant: 'acme', device: 'ghost', name: 'x', requestId: undefined }, Buffer.alloc(0)),
    ).toMatchObject({ ok: false, reason: 'unknown-device' })
    expect(produced).toEqual([])
  })

  it('says unavailable when the bus fails', async () => {
    const { send } = setup({ fail: new TributaryError('BUS_UNAVAILABLE', 'no broker') })
    expect(
      await send({ tenant: 'acme', device: 'dev-1', name: 'x', requestId: undefined }, Buffer.alloc(0)),
    ).toEqual({
      ok: false,
      reason: 'unavailable',
      detail: 'no broker',
    })
  })
})
