// Dead-letter records keep the original record and add step, reason, first-failure and detail headers.
import { describe, expect, it } from 'vitest'
import type { BusMessage } from '../../core/bus/bus.ts'
import {
  DETAIL_HEADER,
  FIRST_FAILURE_HEADER,
  REASON_HEADER,
  STEP_HEADER,
  deadLetter,
} from '../../processors/deadletter.ts'
import { DETAIL_MAX_BYTES } from '../../processors/step.ts'

const message: BusMessage = {
  topic: 'tb.ingress',
  partition: 2,
  offset: 7,
  timestamp: 0,
  key: 'acme/d1',
  value: Buffer.from('payload'),
  headers: new Map([['ce_id', Buffer.from('x')]]),
}
const now = new Date('2026-02-03T04:05:06.000Z')

describe('deadLetter', () => {
  it('keeps key, value and headers and adds the three tributary headers', () => {
    const record = deadLetter('tb.deadletter', message, 'authorize', 'device-disabled', now)
    expect(record.topic).toBe('tb.deadletter')
    expect(record.key).toBe('acme/d1')
    expect(record.value?.toString()).toBe('payload')
    const h = record.headers!
    expect(h.get('ce_id')?.toString()).toBe('x')
    expect(h.get(STEP_HEADER)?.toString()).toBe('authorize')
    expect(h.get(REASON_HEADER)?.toString()).toBe('device-disabled')
    expect(h.get(FIRST_FAILURE_HEADER)?.toString()).toBe(now.toISOString())
    expect(h.has(DETAIL_HEADER)).toBe(false)
    expect(message.headers.has(STEP_HEADER)).toBe(false)
  })

  it('keeps the first failure time of a record that failed before', () => {
    const again = {
      ...message,
      headers: new Map([[FIRST_FAILURE_HEADER, Buffer.from('2020-01-01T00:00:00.000Z')]]),
    }
    const record = deadLetter('tb.deadletter', again, 'tenancy', 'quota', now)
    expect(record.headers!.get(FIRST_FAILURE_HEADER)?.toString()).toBe('2020-01-01T00:00:00.000Z')
    expect(record.headers!.get(REASON_HEADER)?.toString()).toBe('quota')
  })

  it('adds the detail a step gave, and leaves it out when there is none', () => {
    const detail = JSON.stringify([{ path: '/t', message: 'must be number' }])
    const record = deadLetter('tb.deadletter', message, 'validate', 'schema-invalid', now, detail)
    expect(record.headers!.get(DETAIL_HEADER)?.toString()).toBe(detail)
    const empty = deadLetter('tb.deadletter', message, 'validate', 'schema-invalid', now, '')
    expect(empty.headers!.has(DETAIL_HEADER)).toBe(false)
  })

  it('cuts a detail longer than 4 KiB at a character boundary', () => {
    const detail = 'é'.repeat(DETAIL_MAX_BYTES)
    const record = deadLetter('tb.deadletter', message, 'validate', 'schema-invalid', now, detail)
    const written = record.headers!.get(DETAIL_HEADER)!
    expect(written.length).toBeLessThanOrEqual(DETAIL_MAX_BYTES)
    expect(written.length).toBeGreaterThan(DETAIL_MAX_BYTES - 8)
    expect(written.toString()).toMatch(/^é+…$/)
  })

  it('drops the detail of an earlier refusal when a replayed record is refused without one', () => {
    const earlier = deadLetter('tb.deadletter', message, 'validate', 'schema-invalid', now, '[1]')
    const replayed: BusMessage = { ...message, headers: earlier.headers! }
    const record = deadLetter('tb.deadletter', replayed, 'authorize', 'device-disabled', now)
    expect(record.headers!.has(DETAIL_HEADER)).toBe(false)
    expect(record.headers!.get(REASON_HEADER)?.toString()).toBe('device-disabled')
    expect(record.headers!.get(FIRST_FAILURE_HEADER)?.toString()).toBe(now.toISOString())
  })
})
