// The event socket's query: filters, `from`, `group`, and the bounds on each.
import { describe, expect, it } from 'vitest'
import { buildEvent, jsonData } from '../../../core/events/build.ts'
import { isTributaryError } from '../../../core/errors.ts'
import {
  matchesFilters,
  parseEventsQuery,
  parseFrom,
  startPosition,
} from '../../../consumers/websocket/query.ts'

const parse = (query: string) => parseEventsQuery(new URLSearchParams(query))

function refusal(fn: () => unknown): { code: string; message: string } {
  try {
    fn()
  } catch (err) {
    if (isTributaryError(err)) return { code: err.code, message: err.message }
    throw err
  }
  throw new Error('expected a refusal')
}

const event = (device: string, subject: string, kind: 'telemetry' | 'connection' = 'telemetry') =>
  buildEvent({ kind, tenant: 'acme', device, protocol: 'http', subject, ...jsonData({ v: 1 }) })

describe('event socket query', () => {
  it('reads repeated parameters and comma lists alike', () => {
    const query = parse('channel=a/b&channel=c/%2B,d/%23&device=d1,d2&type=x.y')
    expect(query.filters).toEqual({ channels: ['a/b', 'c/+', 'd/#'], devices: ['d1', 'd2'], types: ['x.y'] })
    expect(query.from).toBeUndefined()
    expect(query.group).toBeUndefined()
  })

  it('takes a named group of a-z 0-9 - and refuses others', () => {
    expect(parse('group=dash-board-1').group).toBe('dash-board-1')
    for (const bad of ['Upper', 'a.b', 'x'.repeat(65), '']) {
      expect(refusal(() => parse(`group=${bad}`)).code).toBe('REQUEST_INVALID')
    }
  })

  it('refuses unknown parameters, repeated singles and too many values', () => {
    expect(refusal(() => parse('chanel=a')).message).toMatch(/query\.chanel: unknown parameter/)
    expect(refusal(() => parse('from=latest&from=earliest')).message).toMatch(/query\.from/)
    const many = Array.from({ length: 33 }, (_, i) => `d${i}`).join(',')
    expect(refusal(() => parse(`device=${many}`)).message).toMatch(/at most 32/)
    expect(refusal(() => parse(`channel=${'a'.repeat(257)}`)).message).toMatch(/at most 256/)
  })

  it('keeps access_token apart from the filters', () => {
    expect(parse('access_token=tat_x&type=t').accessToken).toBe('tat_x')
  })
})

describe('from', () => {
  it('reads latest, earliest, a bare offset, partition offsets and a time', () => {
    expect(parseFrom('latest')).toEqual({ kind: 'position', position: 'latest' })
    expect(parseFrom('earliest')).toEqual({ kind: 'position', position: 'earliest' })
    expect(parseFrom('42')).toEqual({ kind: 'all', offset: 42 })
    expect(parseFrom('0:5,3:7')).toEqual({
      kind: 'offsets',
      offsets: [
        { partition: 0, offset: 5 },
        { partition: 3, offset: 7 },
      ],
    })
    expect(parseFrom('2026-01-02T03:04:05Z')).toEqual({
      kind: 'position',
      position: { time: Date.UTC(2026, 0, 2, 3, 4, 5) },
    })
  })

  it('refuses anything else with a hint', () => {
    for (const bad of ['soon', '-1', '2026-01-02', '1:x', '2026-13-45T00:00:00Z']) {
      expect(refusal(() => parseFrom(bad)).message).toMatch(/query\.from: use latest, earliest/)
    }
    expect(refusal(() => parseFrom('0:1,0:2')).message).toMatch(/a partition is named twice/)
  })

  it('resolves offsets against the topic partitions', () => {
    expect(startPosition('t', { kind: 'all', offset: 3 }, 2)).toEqual({
      offsets: [
        { topic: 't', partition: 0, offset: 3 },
        { topic: 't', partition: 1, offset: 3 },
      ],
    })
    expect(
      startPosition(
        't',
        {
          kind: 'offsets',
          offsets: [
            { partition: 1, offset: 9 },
            { partition: 5, offset: 1 },
          ],
        },
        2,
      ),
    ).toEqual({ offsets: [{ topic: 't', partition: 1, offset: 9 }] })
    expect(startPosition('t', { kind: 'position', position: 'earliest' }, 2)).toBe('earliest')
  })
})

describe('filters', () => {
  const none = { channels: [], devices: [], types: [] }

  it('passes everything without filters', () => {
    expect(matchesFilters(event('d1', 'a/b'), none)).toBe(true)
  })

  it('matches channels exactly or as MQTT filters', () => {
    const e = event('d1', 'alarm/room-1/fire')
    expect(matchesFilters(e, { ...none, channels: ['alarm/room-1/fire'] })).toBe(true)
    expect(matchesFilters(e, { ...none, channels: ['alarm/+/fire'] })).toBe(true)
    expect(matchesFilters(e, { ...none, channels: ['alarm/#'] })).toBe(true)
    expect(matchesFilters(e, { ...none, channels: ['alarm/+'] })).toBe(false)
    expect(matchesFilters(e, { ...none, channels: ['other', 'alarm/#'] })).toBe(true)
  })

  it('needs every given list to match: device and type', () => {
    const e = event('d1', 'a')
    expect(matchesFilters(e, { ...none, devices: ['d2'] })).toBe(false)
    expect(matchesFilters(e, { ...none, devices: ['d2', 'd1'] })).toBe(true)
    expect(matchesFilters(e, { ...none, devices: ['d1'], types: ['nope'] })).toBe(false)
    expect(matchesFilters(e, { ...none, devices: ['d1'], types: [e.attributes.type] })).toBe(true)
  })
})
