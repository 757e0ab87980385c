// The command event format: what the API and app MQTT build, what the router reads from anyone
// who produces to the commands topic, and the status, response and response-channel helpers.
import { describe, expect, it } from 'vitest'
import type { CloudEvent } from '../../../core/events/cloudevent.ts'
import {
  MAX_COMMAND_TTL_MS,
  buildCommandEvent,
  buildStatusEvent,
  parseResponseChannel,
  readCommand,
  responseEventInput,
} from '../../../core/events/commands.ts'
import { buildEvent } from '../../../core/events/build.ts'
import { decode, encodeBinary } from '../../../core/events/kafka-codec.ts'

const time = new Date('2026-06-01T12:00:00.000Z')
const read = (event: CloudEvent, defaultTtlMs = 60_000) =>
  readCommand(decode(encodeBinary(event)), { defaultTtlMs, receivedAt: new Date('2026-06-01T12:00:05.000Z') })

describe('command events', () => {
  it('round-trips every field through the Kafka binary form', () => {
    const event = buildCommandEvent({
      tenant: 'acme',
      device: 'd1',
      name: 'set-rate',
      payload: Buffer.from('{"hz":5}'),
      contentType: 'application/json',
      requestId: 'r-1',
      ttlMs: 30_000,
      origin: 'api',
      fport: 3,
      downlink: 'replace',
      time,
    })
    expect(event.attributes.type).toBe('io.tributary.command.v1')
    expect(event.attributes.subject).toBe('set-rate')
    expect(event.attributes['expires']).toBe('2026-06-01T12:00:30.000Z')
    const command = read(event)
    expect(command).toMatchObject({
      id: event.attributes.id,
      tenant: 'acme',
      device: 'd1',
      name: 'set-rate',
      contentType: 'application/json',
      requestId: 'r-1',
      origin: 'api',
      fport: 3,
      downlink: 'replace',
    })
    expect(command.payload.toString()).toBe('{"hz":5}')
    expect(command.time).toEqual(time)
    expect(command.expiresAt).toEqual(new Date('2026-06-01T12:00:30.000Z'))
  })

  it('reads a producer’s `ttl` in ms, falls back to the default ttl and the record time, and caps at 7 days', () => {
    const base = { tenant: 'acme', device: 'd1', protocol: 'kafka' as const, subject: 'reboot' }
    const withTtl = buildEvent({ kind: 'command', ...base, time, extensions: { ttl: '5000' } })
    expect(read(withTtl).expiresAt).toEqual(new Date(time.getTime() + 5_000))
    const bare = buildEvent({ kind: 'command', ...base, time })
    expect(read(bare, 1_000).expiresAt).toEqual(new Date(time.getTime() + 1_000))
    const far = buildEvent({
      kind: 'command',
      ...base,
      time,
      extensions: { expires: '2099-01-01T00:00:00Z' },
    })
    expect(read(far).expiresAt).toEqual(new Date(time.getTime() + MAX_COMMAND_TTL_MS))
    expect(read(bare).origin).toBe('kafka')
    expect(read(bare).payload).toEqual(Buffer.alloc(0))
  })

  it('refuses what cannot be a command, saying why', () => {
    const base = { tenant: 'acme', device: 'd1', protocol: 'kafka' as const, time }
    const cases: Array<[CloudEvent, RegExp]> = [
      [buildEvent({ kind: 'telemetry', ...base, subject: 'x' }), /is not io.tributary.command.v1/],
      [buildEvent({ kind: 'command', ...base }), /name as the subject/],
      [buildEvent({ kind: 'command', ...base, subject: 'res' }), /command name "res" is invalid/],
      [buildEvent({ kind: 'command', ...base, subject: 'a b' }), /command name/],
      [buildEvent({ kind: 'command', ...base, subject: 'x', extensions: { ttl: '-1' } }), /ttl/],
      [buildEvent({ kind: 'command', ...base, subject: 'x', extensions: { expires: 'soon' } }), /RFC 3339/],
      [buildEvent({ kind: 'command', ...base, subject: 'x', extensions: { fport: '224' } }), /fport/],
      [
        buildEvent({ kind: 'command', ...base, subject: 'x', extensions: { requestid: 'a/b' } }),
        /request id/,
      ],
      [buildEvent({ kind: 'command', ...base, subject: 'x', extensions: { downlink: 'both' } }), /downlink/],
    ]
    for (const [event, message] of cases) expect(() => read(event)).toThrow(message)
    expect(() =>
      buildCommandEvent({
        tenant: 'acme',
        device: 'd1',
        name: 'x',
        payload: Buffer.alloc(0),
        ttlMs: -1,
        origin: 'api',
      }),
    ).toThrow(/ttl must be/)
  })

  it('builds status events correlated by command id and request id', () => {
    const event = buildStatusEvent({
      command: { id: 'c1', tenant: 'acme', device: 'd1', name: 'reboot', requestId: 'r1' },
      status: 'failed',
      reason: 'device-unknown',
      protocol: 'mqtt',
      via: 'gw1',
    })
    expect(event.attributes).toMatchObject({
      type: 'io.tributary.command.status.v1',
      subject: 'reboot',
      commandid: 'c1',
      requestid: 'r1',
      status: 'failed',
    })
    expect(JSON.parse(event.data!.toString())).toEqual({
      command: 'c1',
      name: 'reboot',
      status: 'failed',
      requestId: 'r1',
      reason: 'device-unknown',
      via: 'gw1',
    })
  })

  it('reads response channels and builds response events', () => {
    expect(parseResponseChannel('command/res/r-1/200')).toEqual({ requestId: 'r-1', status: 200 })
    for (const channel of [
      'command/res/r-1/199',
      'command/res/r-1/600',
      'command/res/r-1',
      'command/x/r/200',
      'command/res/a b/200',
    ])
      expect(parseResponseChannel(channel)).toBeUndefined()
    const input = responseEventInput({
      tenant: 'acme',
      device: 'd1',
      sender: 'gw1',
      protocol: 'http',
      requestId: 'r-1',
      status: 404,
      payload: Buffer.from('nope'),
    })
    expect(buildEvent(input).attributes).toMatchObject({
      type: 'io.tributary.command.response.v1',
      requestid: 'r-1',
      status: '404',
      sender: 'gw1',
    })
    expect(() =>
      responseEventInput({
        ...input,
        protocol: 'http',
        requestId: 'r',
        status: 700,
        payload: Buffer.alloc(0),
      }),
    ).toThrow(/response status/)
  })
})
