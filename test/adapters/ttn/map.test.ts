// TTN v3 webhook bodies to CloudEvents, from the captured-format fixtures: uplinks to telemetry
// (raw or decoded), the other messages to their own types, LoRaWAN metadata as extensions, and
// every malformed body refused.
import { describe, expect, it } from 'vitest'
import type { TtnMessage } from '../../../adapters/http/ttn/map.ts'
import { parseTtnMessage, radioExtensions, ttnEvent } from '../../../adapters/http/ttn/map.ts'
import { buildEvent, eventTypes } from '../../../core/events/build.ts'
import { encodeBinary } from '../../../core/events/kafka-codec.ts'
import type { Fixture } from './fixtures.ts'
import { FIXTURES, TYPES, fixture } from './fixtures.ts'

const time = new Date('2026-11-29T12:00:00.000Z')
const raw = { tenant: 'farm', settings: { payload: 'raw' as const, fPortChannels: {} }, time }
const decoded = { ...raw, settings: { payload: 'decoded' as const, fPortChannels: {} } }

function parsed(body: unknown): TtnMessage {
  const result = parseTtnMessage(body)
  if (!result.ok) throw new Error(result.detail)
  return result.message
}

describe('uplinks', () => {
  it('become telemetry on lorawan/<fport> with the raw frm_payload bytes and LoRaWAN extensions', () => {
    const event = ttnEvent(parsed(fixture('uplink')), raw)
    expect(event).toMatchObject({
      kind: 'telemetry',
      tenant: 'farm',
      device: 'eui-70b3d57ed005a1b2',
      protocol: 'ttn',
      subject: 'lorawan/2',
      datacontenttype: 'application/octet-stream',
      time,
    })
    expect(event.data).toEqual(Buffer.from([0x00, 0xe7, 0x01, 0x87, 0x02]))
    expect(event.extensions).toEqual({
      ttnapp: 'greenhouse-sensors',
      deveui: '70B3D57ED005A1B2',
      joineui: '0000000000000000',
      devaddr: '260B4C1F',
      fport: '2',
      fcnt: '1843',
      // The stronger of the two gateways.
      rssi: '-97',
      snr: '6.25',
      gateway: 'greenhouse-gw-1',
      gateways: '2',
      datarate: 'SF9BW125',
      frequency: '867300000',
      airtime: '0.205824s',
    })
  })

  it('carry decoded_payload as JSON when the tenant asks for decoded payloads', () => {
    const event = ttnEvent(parsed(fixture('uplink')), decoded)
    expect(event.datacontenttype).toBe('application/json')
    expect(JSON.parse(event.data!.toString())).toEqual({ temperature: 23.1, humidity: 39.1, battery: 2 })
  })

  it('fall back to the raw bytes when there is no decoded_payload (no formatter, or it failed)', () => {
    const body = fixture('uplink')
    delete body['uplink_message'].decoded_payload
    const event = ttnEvent(parsed(body), decoded)
    expect(event.datacontenttype).toBe('application/octet-stream')
    expect(event.data?.length).toBe(5)
  })

  it('read omitted empty fields as TTN means them: f_port 0, f_cnt 0, no payload', () => {
    const event = ttnEvent(parsed(fixture('uplink-empty-fields')), raw)
    expect(event.subject).toBe('lorawan/0')
    expect(event.extensions).toMatchObject({ fport: '0', fcnt: '0', rssi: '-88', gateways: '1' })
    expect(event.extensions?.['joineui']).toBeUndefined()
    expect(event.data).toBeUndefined()
    expect(event.datacontenttype).toBeUndefined()
  })

  it("go to the tenant's channel for a mapped FPort", () => {
    const event = ttnEvent(parsed(fixture('uplink')), {
      ...raw,
      settings: { payload: 'raw', fPortChannels: { '2': 'greenhouse/climate' } },
    })
    expect(event.subject).toBe('greenhouse/climate')
  })

  it('carry the trace the webhook request named, on uplinks and other messages alike', () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    expect(ttnEvent(parsed(fixture('uplink')), { ...raw, traceparent }).traceparent).toBe(traceparent)
    expect(ttnEvent(parsed(fixture('uplink')), raw).traceparent).toBeUndefined()
    for (const name of FIXTURES.filter((f) => f !== 'uplink'))
      expect(ttnEvent(parsed(fixture(name)), { ...raw, traceparent }).traceparent, name).toBe(traceparent)
  })

  it('mark a simulated uplink', () => {
    const body = { ...fixture('uplink'), simulated: true }
    expect(ttnEvent(parsed(body), raw).extensions?.['simulated']).toBe('true')
  })
})

describe('other messages', () => {
  it.each(FIXTURES.filter((f) => !f.startsWith('uplink')))(
    '%s becomes its own type with TTN’s object as JSON',
    (name) => {
      const body = fixture(name)
      const key = Object.keys(body).find(
        (k) => !['end_device_ids', 'correlation_ids', 'received_at'].includes(k),
      )!
      const event = ttnEvent(parsed(body), raw)
      expect(eventTypes[event.kind]).toBe(TYPES[name])
      expect(event.datacontenttype).toBe('application/json')
      expect(JSON.parse(event.data!.toString())).toEqual(body[key])
      expect(event.extensions?.['ttnapp']).toBe('greenhouse-sensors')
    },
  )

  it('puts a downlink event on the channel of its FPort, nested or not', () => {
    expect(ttnEvent(parsed(fixture('downlink-ack')), raw).subject).toBe('lorawan/15')
    expect(ttnEvent(parsed(fixture('downlink-failed')), raw).subject).toBe('lorawan/15')
    expect(ttnEvent(parsed(fixture('join-accept')), raw).subject).toBeUndefined()
    expect(ttnEvent(parsed(fixture('location-solved')), raw).subject).toBeUndefined()
  })
})

describe('downlinks of commands', () => {
  const ID = '019ad1f0-7c2e-7b1a-9c4d-2f6e8a0b1c3d'
  const withCorrelation = (name: 'downlink-ack' | 'downlink-sent' | 'downlink-queued', ids: unknown) => {
    const body = fixture(name)
    body[name.replace('-', '_')].correlation_ids = ids
    body['correlation_ids'] = ['as:up:01HQ80B4C5D6E7F8G9H0J1K2L3']
    return body
  }

  it.each(['downlink-ack', 'downlink-sent', 'downlink-queued'] as const)(
    '%s of a command carries the command id as commandid',
    (name) => {
      const body = withCorrelation(name, [
        'as:downlink:01HQ80A1B2C3D4E5F6G7H8J9K0',
        `tributary:command:${ID}`,
      ])
      expect(ttnEvent(parsed(body), raw).extensions?.['commandid']).toBe(ID)
    },
  )

  it('finds it in a failed downlink and in the message correlation ids', () => {
    const failed = fixture('downlink-failed')
    failed['downlink_failed'].downlink.correlation_ids = ['as:downlink:x', `tributary:command:${ID}`]
    expect(ttnEvent(parsed(failed), raw).extensions?.['commandid']).toBe(ID)
    const outer = withCorrelation('downlink-ack', undefined)
    outer['correlation_ids'] = ['as:up:x', `tributary:command:${ID}`]
    expect(ttnEvent(parsed(outer), raw).extensions?.['commandid']).toBe(ID)
  })

  it('adds nothing for downlinks sent by others, malformed ids, or uplinks', () => {
    expect(ttnEvent(parsed(fixture('downlink-ack')), raw).extensions).not.toHaveProperty('commandid')
    for (const ids of [['tributary:command:'], ['tributary:command:has space'], 'tributary:command:x', [7]]) {
      const event = ttnEvent(parsed(withCorrelation('downlink-sent', ids)), raw)
      expect(event.extensions, JSON.stringify(ids)).not.toHaveProperty('commandid')
    }
    const uplink = fixture('uplink')
    uplink['correlation_ids'] = [`tributary:command:${ID}`]
    expect(ttnEvent(parsed(uplink), raw).extensions).not.toHaveProperty('commandid')
  })
})

describe('every fixture', () => {
  it.each(FIXTURES)('%s builds a valid CloudEvent with headers a data engineer can read', (name) => {
    const { headers, key } = encodeBinary(buildEvent(ttnEvent(parsed(fixture(name)), raw)))
    expect(key?.toString()).toBe('farm/eui-70b3d57ed005a1b2')
    expect(headers.get('ce_type')?.toString()).toBe(TYPES[name])
    expect(headers.get('ce_protocol')?.toString()).toBe('ttn')
    expect(headers.get('ce_ttnapp')?.toString()).toBe('greenhouse-sensors')
  })
})

describe('bad bodies', () => {
  const uplink = (): Fixture => fixture('uplink')
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['not an object', () => [1, 2], /not a JSON object/],
    ['no known message', () => ({ end_device_ids: uplink()['end_device_ids'], service_data: {} }), /none of/],
    ['two messages', () => ({ ...uplink(), join_accept: {} }), /more than one/],
    ['message not an object', () => ({ ...uplink(), uplink_message: 'x' }), /not an object/],
    ['no end_device_ids', () => ({ uplink_message: {} }), /end_device_ids/],
    [
      'a device id Tributary cannot take',
      () => {
        const b = uplink()
        b['end_device_ids'].device_id = 'a/b'
        return b
      },
      /device_id/,
    ],
    [
      'no application id',
      () => {
        const b = uplink()
        delete b['end_device_ids'].application_ids
        return b
      },
      /application_id/,
    ],
    [
      'a malformed DevEUI',
      () => {
        const b = uplink()
        b['end_device_ids'].dev_eui = 'XYZ'
        return b
      },
      /deveui/,
    ],
    [
      'f_port out of range',
      () => {
        const b = uplink()
        b['uplink_message'].f_port = 256
        return b
      },
      /f_port/,
    ],
    [
      'f_cnt not a counter',
      () => {
        const b = uplink()
        b['uplink_message'].f_cnt = -1
        return b
      },
      /f_cnt/,
    ],
    [
      'frm_payload not base64',
      () => {
        const b = uplink()
        b['uplink_message'].frm_payload = 'not base64!'
        return b
      },
      /frm_payload/,
    ],
    [
      'rx_metadata not a list',
      () => {
        const b = uplink()
        b['uplink_message'].rx_metadata = {}
        return b
      },
      /rx_metadata/,
    ],
  ]
  it.each(cases)('refuses %s', (_name, body, detail) => {
    const result = parseTtnMessage(body())
    expect(result.ok).toBe(false)
    expect(!result.ok && result.detail).toMatch(detail)
  })
})

describe('radioExtensions', () => {
  it('ignores malformed metadata rather than guessing', () => {
    expect(
      radioExtensions({
        rx_metadata: [{ rssi: 'loud' }, 'x', { channel_rssi: -120, gateway_ids: { gateway_id: 'Bad Id!' } }],
        settings: { data_rate: { fsk: { bit_rate: 50000 } }, frequency: 'high' },
        consumed_airtime: 'forever',
      }),
    ).toEqual({ gateways: '2', rssi: '-120' })
  })
})
