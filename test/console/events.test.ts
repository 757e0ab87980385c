// The spy's bounded rows and payload views (console/src/events.ts): the newest rows kept up to the
// bound with every arrival counted, duplicates ignored, and payloads decoded per content type.
import { describe, expect, it } from 'vitest'
import {
  MAX_ROWS,
  RowBuffer,
  asHex,
  asJson,
  asText,
  eventRow,
  letterRow,
  payloadBytes,
} from '../../console/src/events.ts'
import type { CloudEventJson } from '../../console/src/types.ts'

const event = (id: number, extra: Partial<CloudEventJson> = {}): CloudEventJson => ({
  id: String(id),
  type: 'io.tributary.telemetry.v1',
  source: 'tributary://acme/d1',
  subject: 'sensors/t',
  device: 'd1',
  ...extra,
})

describe('spy rows', () => {
  it('keeps the newest MAX_ROWS, newest first, and counts every row received', () => {
    const buffer = new RowBuffer()
    for (let i = 0; i < MAX_ROWS + 25; i++) buffer.add(eventRow(event(i)))
    expect(buffer.rows).toHaveLength(MAX_ROWS)
    expect(buffer.received).toBe(MAX_ROWS + 25)
    expect(buffer.rows[0]?.event?.id).toBe(String(MAX_ROWS + 24))
    expect(buffer.rows.at(-1)?.event?.id).toBe('25')
  })

  it('ignores an event or letter it already holds, and takes a dropped one again', () => {
    const buffer = new RowBuffer()
    expect(buffer.add(eventRow(event(1)))).toBe(true)
    expect(buffer.add(eventRow(event(1)))).toBe(false)
    const letter = {
      id: 'x',
      partition: 0,
      offset: 7,
      device: 'd1',
      type: null,
      subject: 'strict',
      step: 'validate',
      reason: 'schema-invalid',
      detail: null,
      deadLetteredAt: '2026-01-01T00:00:00Z',
      contentType: 'application/json',
      data: Buffer.from('{"a":1}').toString('base64'),
      subscription: null,
    }
    expect(buffer.add(letterRow(letter))).toBe(true)
    expect(buffer.add(letterRow(letter))).toBe(false)
    expect(buffer.received).toBe(2)
    expect(asText(payloadBytes(buffer.rows[0]!))).toBe('{"a":1}')
  })
})

describe('payload views', () => {
  it('decodes JSON data, text data and data_base64', () => {
    expect(asJson(payloadBytes(eventRow(event(1, { data: { celsius: 21.5 } }))))).toBe(
      '{\n  "celsius": 21.5\n}',
    )
    expect(asText(payloadBytes(eventRow(event(2, { data: 'ok', datacontenttype: 'text/plain' }))))).toBe('ok')
    const bytes = payloadBytes(
      eventRow(event(3, { data_base64: Buffer.from([0, 1, 0xff]).toString('base64') })),
    )
    expect([...bytes]).toEqual([0, 1, 0xff])
    expect(asJson(bytes)).toBe('The payload is not JSON.')
    expect(payloadBytes(eventRow(event(4)))).toHaveLength(0)
  })

  it('shows 16 bytes a line with offsets and printable characters, up to 4 KiB', () => {
    const dump = asHex(new TextEncoder().encode('{"celsius":21.5}\n'))
    expect(dump.split('\n')).toEqual([
      '00000000  7b 22 63 65 6c 73 69 75 73 22 3a 32 31 2e 35 7d  {"celsius":21.5}',
      '00000010  0a                                               .',
    ])
    expect(asHex(new Uint8Array())).toBe('(no payload)')
    expect(asHex(new Uint8Array(5000)).split('\n').at(-1)).toBe('… 904 more bytes')
  })
})
