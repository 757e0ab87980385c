// Registry change events: CloudEvents of type io.tributary.registry.v1 in Kafka binary mode, keyed
// per device (or per tenant) so one device's changes keep their order; decoding refuses the rest.
import { describe, expect, it } from 'vitest'
import { Kafka } from 'cloudevents'
import type { CloudEvent } from 'cloudevents'
import { decodeChange, encodeChange } from '../../../core/registry/changes.ts'
import { invalidatedTags } from '../../../core/registry/auth.ts'
import type { RegistryChange } from '../../../core/registry/model.ts'

const headersOf = (record: ReturnType<typeof encodeChange>) => record.headers ?? new Map<string, Buffer>()

describe('registry change events', () => {
  it('round-trip a device-scoped change, keyed and sourced <tenant>/<device>', () => {
    const change: RegistryChange = {
      op: 'updated',
      resource: 'credential',
      tenant: 'acme',
      device: 'dev:1',
      id: 'c1',
      version: 3,
    }
    const record = encodeChange(change, 'tributary.registry', new Date('2030-01-01T00:00:00Z'))
    expect(record.topic).toBe('tributary.registry')
    expect(record.key).toBe('acme/dev%3A1')
    const headers = headersOf(record)
    expect(headers.get('ce_type')?.toString()).toBe('io.tributary.registry.v1')
    expect(headers.get('ce_source')?.toString()).toBe('tributary://acme/dev%3A1')
    expect(headers.get('ce_subject')?.toString()).toBe('credential')
    expect(headers.get('ce_tenant')?.toString()).toBe('acme')
    expect(headers.get('ce_device')?.toString()).toBe('dev:1')
    expect(headers.get('ce_time')?.toString()).toBe('2030-01-01T00:00:00.000Z')
    expect(headers.get('content-type')?.toString()).toBe('application/json')
    expect(decodeChange({ key: record.key, value: record.value, headers })).toEqual(change)
  })

  it('key tenant-scoped changes by the tenant alone', () => {
    const record = encodeChange({ op: 'deleted', resource: 'tenant', tenant: 'acme', version: 7 }, 't')
    expect(record.key).toBe('acme')
    expect(headersOf(record).get('ce_source')?.toString()).toBe('tributary://acme')
    expect(headersOf(record).has('ce_device')).toBe(false)
    expect(decodeChange({ key: record.key, value: record.value, headers: headersOf(record) })).toEqual({
      op: 'deleted',
      resource: 'tenant',
      tenant: 'acme',
      version: 7,
    })
  })

  it('round-trip schema changes (the id is the channel, up to 256 characters) and route changes', () => {
    const channel = `${'c'.repeat(127)}/${'d'.repeat(128)}`
    for (const change of [
      { op: 'created', resource: 'schema', tenant: 'acme', id: channel, version: 1 },
      { op: 'deleted', resource: 'schema', tenant: 'acme', id: 'telemetry/temp', version: 4 },
      { op: 'updated', resource: 'routes', tenant: 'acme', version: 2 },
    ] satisfies RegistryChange[]) {
      const record = encodeChange(change, 't')
      expect(record.key).toBe('acme')
      expect(headersOf(record).get('ce_subject')?.toString()).toBe(change.resource)
      expect(decodeChange({ key: record.key, value: record.value, headers: headersOf(record) })).toEqual(
        change,
      )
    }
    const tooLong = encodeChange(
      { op: 'created', resource: 'schema', tenant: 'acme', id: `${channel}x`, version: 1 },
      't',
    )
    expect(() =>
      decodeChange({ key: tooLong.key, value: tooLong.value, headers: headersOf(tooLong) }),
    ).toThrow(/id/)
  })

  it('is a valid CloudEvent to the CloudEvents SDK', () => {
    const record = encodeChange(
      { op: 'created', resource: 'device', tenant: 'acme', device: 'd1', version: 1 },
      't',
    )
    const headers: Record<string, string> = {}
    for (const [name, value] of headersOf(record)) headers[name] = value.toString()
    const message = {
      key: record.key ?? '',
      value: record.value,
      headers,
      body: record.value,
      timestamp: undefined,
    }
    const event = Kafka.toEvent(message) as CloudEvent<unknown>
    expect(event.validate()).toBe(true)
    expect(event.type).toBe('io.tributary.registry.v1')
    expect(event['partitionkey']).toBe('acme/d1')
    // The SDK parses JSON data by its content type.
    expect(event.data).toMatchObject({ op: 'created', resource: 'device', device: 'd1' })
  })

  it('refuse records that are not registry changes', () => {
    const record = encodeChange(
      { op: 'created', resource: 'device', tenant: 'acme', device: 'd1', version: 1 },
      't',
    )
    const headers = new Map(headersOf(record))
    const decodeWith = (value: unknown, type = 'io.tributary.registry.v1') =>
      decodeChange({
        key: record.key,
        value: Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
        headers: new Map([...headers, ['ce_type', Buffer.from(type)]]),
      })
    expect(() =>
      decodeWith(
        { op: 'created', resource: 'device', tenant: 'acme', version: 1 },
        'io.tributary.telemetry.v1',
      ),
    ).toThrow(/type/)
    expect(() => decodeWith('{not json')).toThrow(/JSON/)
    expect(() => decodeWith({ op: 'renamed', resource: 'device', tenant: 'acme', version: 1 })).toThrow(/op/)
    expect(() => decodeWith({ op: 'created', resource: 'thing', tenant: 'acme', version: 1 })).toThrow(
      /resource/,
    )
    expect(() => decodeWith({ op: 'created', resource: 'device', tenant: 'ACME', version: 1 })).toThrow(
      /tenant/,
    )
    expect(() =>
      decodeWith({ op: 'created', resource: 'device', tenant: 'acme', device: 'a/b', version: 1 }),
    ).toThrow(/device/)
    expect(() => decodeWith({ op: 'created', resource: 'device', tenant: 'acme', version: '1' })).toThrow(
      /version/,
    )
    expect(() => decodeChange({ key: undefined, value: undefined, headers: new Map() })).toThrow()
  })

  it('map to the cache tags they invalidate', () => {
    expect(invalidatedTags({ op: 'updated', resource: 'tenant', tenant: 'acme', version: 2 })).toEqual([
      't:acme',
    ])
    expect(
      invalidatedTags({ op: 'deleted', resource: 'device', tenant: 'acme', device: 'd1', version: 2 }),
    ).toEqual(['d:acme/d1', 'n:acme'])
    expect(
      invalidatedTags({ op: 'deleted', resource: 'api-token', tenant: 'acme', id: 'x', version: 1 }),
    ).toEqual(['a:acme/x'])
  })
})
