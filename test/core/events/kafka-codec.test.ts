// Conformance of the hand-written Kafka binding with the CloudEvents SDK, both ways.
import { CloudEvent as SdkEvent, Kafka } from 'cloudevents'
import type { KafkaMessage } from 'cloudevents'
import { describe, expect, it } from 'vitest'
import { buildEvent, jsonData } from '../../../core/events/build.ts'
import type { CloudEvent } from '../../../core/events/cloudevent.ts'
import { decode, encodeBinary, fromJson, toJson } from '../../../core/events/kafka-codec.ts'
import type { KafkaMessageParts } from '../../../core/events/kafka-codec.ts'
import { isTributaryError } from '../../../core/errors.ts'

const telemetry = (): CloudEvent =>
  buildEvent({
    kind: 'telemetry',
    tenant: 'acme',
    device: 'sensor:1',
    sender: 'gateway-7',
    protocol: 'mqtt',
    subject: 'temperature/room-1',
    ...jsonData({ celsius: 21.5 }),
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  })

/** Our parts as the SDK's Kafka message: string headers, key and value as given. */
function toSdkMessage(parts: KafkaMessageParts): KafkaMessage<Buffer> {
  const headers: Record<string, string> = {}
  for (const [name, value] of parts.headers) headers[name] = value.toString()
  return {
    key: parts.key?.toString() ?? '',
    value: parts.value ?? Buffer.alloc(0),
    headers,
    body: parts.value,
    timestamp: undefined,
  } as unknown as KafkaMessage<Buffer>
}

describe('Kafka binary-mode codec', () => {
  it('writes every attribute as a ce_ header, datacontenttype as content-type and partitionkey as the key', () => {
    const event = telemetry()
    const parts = encodeBinary(event)
    expect(parts.key?.toString()).toBe('acme/sensor%3A1')
    expect(parts.headers.get('content-type')?.toString()).toBe('application/json')
    expect(parts.headers.get('ce_specversion')?.toString()).toBe('1.0')
    expect(parts.headers.get('ce_type')?.toString()).toBe('io.tributary.telemetry.v1')
    expect(parts.headers.get('ce_source')?.toString()).toBe('tributary://acme/sensor%3A1')
    expect(parts.headers.get('ce_subject')?.toString()).toBe('temperature/room-1')
    expect(parts.headers.get('ce_sender')?.toString()).toBe('gateway-7')
    expect(parts.headers.has('ce_datacontenttype')).toBe(false)
    expect(parts.headers.has('ce_partitionkey')).toBe(false)
    expect(JSON.parse(parts.value!.toString())).toEqual({ celsius: 21.5 })
  })

  it('round-trips through its own decoder', () => {
    const event = telemetry()
    const decoded = decode(encodeBinary(event))
    expect(decoded.attributes).toEqual(event.attributes)
    expect(decoded.data?.equals(event.data!)).toBe(true)
  })

  it('is read by the CloudEvents SDK as the same event', () => {
    const event = telemetry()
    const sdk = Kafka.toEvent(toSdkMessage(encodeBinary(event))) as SdkEvent<unknown>
    const { data, ...attributes } = sdk.toJSON()
    expect(attributes).toEqual(event.attributes)
    expect(data).toEqual({ celsius: 21.5 })
  })

  it('reads what the CloudEvents SDK writes in binary mode', () => {
    const sdk = new SdkEvent({
      id: '0190f1a2-0000-7000-8000-000000000001',
      source: 'tributary://acme/pump-2',
      type: 'io.tributary.command.v1',
      subject: 'reboot',
      time: '2026-11-22T08:00:00.000Z',
      datacontenttype: 'text/plain',
      data: 'now',
      partitionkey: 'acme/pump-2',
      tenant: 'acme',
      device: 'pump-2',
    })
    const message = Kafka.binary(sdk)
    const headers = new Map<string, Buffer>()
    for (const [name, value] of Object.entries(message.headers))
      if (value !== undefined) headers.set(name, Buffer.from(String(value)))
    const decoded = decode({
      key: Buffer.from(String(message.key)),
      value: Buffer.from(String(message.value)),
      headers,
    })
    expect(decoded.attributes).toEqual({
      specversion: '1.0',
      id: sdk.id,
      source: sdk.source,
      type: sdk.type,
      subject: 'reboot',
      time: '2026-11-22T08:00:00.000Z',
      datacontenttype: 'text/plain',
      partitionkey: 'acme/pump-2',
      tenant: 'acme',
      device: 'pump-2',
    })
    expect(decoded.data?.toString()).toBe('now')
  })

  it('reads what the CloudEvents SDK writes in structured mode', () => {
    const sdk = new SdkEvent({
      source: 'tributary://acme/pump-2',
      type: 'io.tributary.command.v1',
      datacontenttype: 'application/json',
      data: { speed: 3 },
      partitionkey: 'acme/pump-2',
    })
    const message = Kafka.structured(sdk)
    const headers = new Map<string, Buffer>([
      ['content-type', Buffer.from(String(message.headers['content-type']))],
    ])
    const decoded = decode({
      key: Buffer.from(String(message.key)),
      value: Buffer.from(String(message.value)),
      headers,
    })
    expect(decoded.attributes).toMatchObject({ id: sdk.id, type: sdk.type, partitionkey: 'acme/pump-2' })
    expect(JSON.parse(decoded.data!.toString())).toEqual({ speed: 3 })
  })

  it('refuses records that are not CloudEvents, naming what is missing', () => {
    const error = (() => {
      try {
        decode({ key: undefined, value: Buffer.from('x'), headers: new Map([['ce_id', Buffer.from('1')]]) })
      } catch (err) {
        return err
      }
      return undefined
    })()
    expect(isTributaryError(error, 'EVENT_INVALID')).toBe(true)
    expect((error as Error).message).toContain('missing required attribute "source"')
    expect((error as Error).message).toContain('missing required attribute "type"')
  })

  it('keeps binary data as data_base64 in the JSON format and reads it back', () => {
    const event = buildEvent({
      kind: 'telemetry',
      tenant: 'acme',
      device: 'd1',
      protocol: 'coap',
      subject: 'raw',
      data: Buffer.from([0, 1, 254, 255]),
      datacontenttype: 'application/octet-stream',
    })
    const json = toJson(event)
    expect(json['data_base64']).toBe('AAH+/w==')
    expect(fromJson(JSON.parse(JSON.stringify(json))).data).toEqual(Buffer.from([0, 1, 254, 255]))
  })
})
