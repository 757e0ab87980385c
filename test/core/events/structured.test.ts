// The JSON event format as application-facing transports send it, checked against the CloudEvents SDK.
import { HTTP } from 'cloudevents'
import type { CloudEvent as SdkEvent } from 'cloudevents'
import { describe, expect, it } from 'vitest'
import { buildEvent, jsonData } from '../../../core/events/build.ts'
import {
  decodeStructured,
  encodeStructured,
  encodeStructuredBuffer,
  STRUCTURED_JSON_CONTENT_TYPE,
} from '../../../core/events/structured.ts'
import { isTributaryError } from '../../../core/errors.ts'

const base = { kind: 'telemetry', tenant: 'acme', device: 'sensor:1', protocol: 'http' } as const

describe('structured JSON CloudEvents', () => {
  it('puts every attribute at the top level and JSON data inline', () => {
    const event = buildEvent({ ...base, subject: 'temperature', ...jsonData({ celsius: 21.5 }) })
    const doc = JSON.parse(encodeStructured(event)) as Record<string, unknown>
    expect(doc).toMatchObject({
      specversion: '1.0',
      id: event.attributes.id,
      type: event.attributes.type,
      source: event.attributes.source,
      tenant: 'acme',
      device: 'sensor:1',
      subject: 'temperature',
      datacontenttype: 'application/json',
      data: { celsius: 21.5 },
    })
    expect(doc).not.toHaveProperty('data_base64')
  })

  it('carries binary data as data_base64 and text as a string', () => {
    const binary = buildEvent({
      ...base,
      subject: 'raw',
      data: Buffer.from([0, 1, 254, 255]),
      datacontenttype: 'application/octet-stream',
    })
    const doc = JSON.parse(encodeStructured(binary)) as Record<string, unknown>
    expect(doc['data_base64']).toBe('AAH+/w==')
    expect(doc).not.toHaveProperty('data')

    const text = buildEvent({
      ...base,
      subject: 'log',
      data: Buffer.from('hello'),
      datacontenttype: 'text/plain',
    })
    expect((JSON.parse(encodeStructured(text)) as Record<string, unknown>)['data']).toBe('hello')
  })

  it('keeps bytes that claim to be JSON but are not, as data_base64', () => {
    const event = buildEvent({
      ...base,
      subject: 'x',
      data: Buffer.from('{not json'),
      datacontenttype: 'application/json',
    })
    const doc = JSON.parse(encodeStructured(event)) as Record<string, unknown>
    expect(Buffer.from(doc['data_base64'] as string, 'base64').toString()).toBe('{not json')
  })

  it('is read by the CloudEvents SDK as the same event', () => {
    const event = buildEvent({ ...base, subject: 'temperature', ...jsonData({ celsius: 3 }) })
    const received = HTTP.toEvent({
      headers: { 'content-type': STRUCTURED_JSON_CONTENT_TYPE },
      body: encodeStructuredBuffer(event).toString(),
    }) as SdkEvent<unknown>
    expect(received.id).toBe(event.attributes.id)
    expect(received.type).toBe(event.attributes.type)
    expect(received['device']).toBe('sensor:1')
    expect(received.data).toEqual({ celsius: 3 })
  })

  it('round-trips through decodeStructured', () => {
    const event = buildEvent({
      ...base,
      subject: 'raw',
      data: Buffer.from([9, 8]),
      datacontenttype: 'application/octet-stream',
    })
    const back = decodeStructured(encodeStructuredBuffer(event))
    expect(back.attributes).toEqual(event.attributes)
    expect(back.data).toEqual(event.data)
  })

  it('rejects text that is not a JSON CloudEvent with EVENT_INVALID', () => {
    for (const bad of ['{oops', '[]', '{"id":"1"}']) {
      let caught: unknown
      try {
        decodeStructured(bad)
      } catch (err) {
        caught = err
      }
      expect(isTributaryError(caught) && caught.code).toBe('EVENT_INVALID')
    }
  })
})
