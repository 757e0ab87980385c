import { describe, expect, it } from 'vitest'
import { buildEvent, eventSource, parsePartitionKey, partitionKey } from '../../../core/events/build.ts'
import { isChannel, isDeviceId, isTenantId, uuidv7, uuidv7Time } from '../../../core/events/ids.ts'
import { topicNames } from '../../../core/events/topics.ts'
import { isTributaryError } from '../../../core/errors.ts'

describe('event builder', () => {
  it('builds a telemetry event with every attribute of the contract', () => {
    const event = buildEvent({
      kind: 'telemetry',
      tenant: 'acme',
      device: 'd1',
      protocol: 'http',
      subject: 'temp',
      time: new Date('2026-11-22T08:00:00.000Z'),
    })
    expect(event.attributes).toMatchObject({
      specversion: '1.0',
      source: 'tributary://acme/d1',
      type: 'io.tributary.telemetry.v1',
      subject: 'temp',
      time: '2026-11-22T08:00:00.000Z',
      tenant: 'acme',
      device: 'd1',
      protocol: 'http',
      partitionkey: 'acme/d1',
    })
    expect(event.attributes.sender).toBeUndefined()
    expect(uuidv7Time(event.attributes.id)).toBeGreaterThan(Date.parse('2026-01-01'))
  })

  it('percent-encodes identifiers where they enter keys and URIs', () => {
    expect(partitionKey('acme', 'a:b~c')).toBe('acme/a%3Ab~c')
    expect(eventSource('acme', 'a:b')).toBe('tributary://acme/a%3Ab')
    expect(parsePartitionKey(partitionKey('acme', 'a:b'))).toEqual({ tenant: 'acme', device: 'a:b' })
    expect(parsePartitionKey('no-slash')).toBeUndefined()
  })

  it('refuses identifiers outside the documented charset', () => {
    for (const tenant of ['', 'ACME', '-a', 'a_b', 'a'.repeat(64), 'a/b'])
      expect(isTenantId(tenant)).toBe(false)
    for (const device of ['', 'a b', 'a/b', 'a@b', 'x'.repeat(129)]) expect(isDeviceId(device)).toBe(false)
    for (const channel of ['', '/a', 'a/', 'a//b', 'a/b/c/d/e/f/g/h/i', 'a+b', '#'])
      expect(isChannel(channel)).toBe(false)
    expect(isChannel('a/b/c/d/e/f/g/h')).toBe(true)
    const error = (() => {
      try {
        buildEvent({ kind: 'telemetry', tenant: 'Bad Tenant', device: 'd', protocol: 'mqtt' })
      } catch (err) {
        return err
      }
      return undefined
    })()
    expect(isTributaryError(error, 'IDENTIFIER_INVALID')).toBe(true)
  })

  it('makes UUIDv7 ids that sort in creation order, even within one millisecond', () => {
    const ids = Array.from({ length: 5000 }, () => uuidv7(1_800_000_000_000))
    expect([...ids].sort()).toEqual(ids)
    expect(new Set(ids).size).toBe(ids.length)
    for (const id of ids.slice(0, 10))
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  })

  it('names topics from one prefix', () => {
    const topics = topicNames('tb')
    expect(topics.ingress).toBe('tb.ingress')
    expect(topics.events('acme')).toBe('tb.events.acme')
    expect(topics.tenantOf('tb.events.acme')).toBe('acme')
    expect(topics.tenantOf('tb.ingress')).toBeUndefined()
    expect(topics.tenantCopy('acme', 'alerts')).toBe('tb.events.acme.alerts')
    expect(topics.tenantOf('tb.events.acme.alerts')).toBe('acme')
    expect(topics.tenantOf('tb.events.Not_A_Tenant')).toBeUndefined()
    expect(() => topics.tenantCopy('acme', 'Bad.Name')).toThrow(/copy topic name/)
    // Deployments sharing a Kafka cluster never share a consumer group.
    expect(topics.groups).toEqual({
      processors: 'tb-processors',
      deadLetterIndex: 'tb-deadletter-index',
      commands: 'tb-commands',
    })
    expect(topicNames().groups.processors).toBe('tributary-processors')
    expect(() => topicNames('bad prefix')).toThrow(/topic prefix/)
  })
})
