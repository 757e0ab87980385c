// Extension attributes on built events (LoRaWAN metadata of TTN events) and the TTN event types:
// names CloudEvents allows, never one Tributary sets itself, and readable back by the CloudEvents SDK.
import { HTTP } from 'cloudevents'
import { describe, expect, it } from 'vitest'
import { buildEvent, eventTypes } from '../../../core/events/build.ts'
import { encodeBinary, decode } from '../../../core/events/kafka-codec.ts'

const base = { tenant: 'farm', device: 'node-1', protocol: 'ttn' as const }

describe('event extensions', () => {
  it('become attributes and ce_ headers', () => {
    const event = buildEvent({
      ...base,
      kind: 'telemetry',
      subject: 'lorawan/2',
      extensions: { fport: '2', deveui: '70B3D57ED005A1B2' },
    })
    expect(event.attributes).toMatchObject({ fport: '2', deveui: '70B3D57ED005A1B2', protocol: 'ttn' })
    const parts = encodeBinary(event)
    expect(parts.headers.get('ce_fport')?.toString()).toBe('2')
    expect(decode(parts).attributes['deveui']).toBe('70B3D57ED005A1B2')
  })

  it('are CloudEvents the SDK accepts', () => {
    const event = buildEvent({
      ...base,
      kind: 'ttn.join',
      data: Buffer.from('{}'),
      datacontenttype: 'application/json',
      extensions: { ttnapp: 'greenhouse' },
    })
    const headers: Record<string, string> = {}
    for (const [name, value] of Object.entries(event.attributes)) {
      if (value !== undefined && name !== 'datacontenttype') headers[`ce-${name}`] = value
    }
    headers['content-type'] = 'application/json'
    const sdk = HTTP.toEvent({ headers, body: '{}' })
    expect(Array.isArray(sdk) ? sdk[0]?.type : sdk.type).toBe('io.tributary.ttn.join.v1')
  })

  it.each([
    ['an upper-case name', { fPort: '2' }],
    ['a name over 20 characters', { abcdefghijklmnopqrstu: 'x' }],
    ['a name Tributary sets', { tenant: 'other' }],
    ['the partition key', { partitionkey: 'x/y' }],
    ['a value that is not a string', { fport: 2 as unknown as string }],
  ])('refuses %s', (_what, extensions) => {
    expect(() => buildEvent({ ...base, kind: 'telemetry', extensions })).toThrow(/extension/)
  })

  it('names every TTN message type io.tributary.ttn.<kind>.v1', () => {
    const ttn = Object.entries(eventTypes).filter(([kind]) => kind.startsWith('ttn.'))
    expect(ttn.map(([kind, type]) => [kind, type])).toEqual(
      [
        'join',
        'downlink.ack',
        'downlink.nack',
        'downlink.sent',
        'downlink.failed',
        'downlink.queued',
        'location',
      ].map((k) => [`ttn.${k}`, `io.tributary.ttn.${k}.v1`]),
    )
  })
})
