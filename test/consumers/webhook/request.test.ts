// The HTTP request of a delivery in binary, structured and batch mode, signed.
import { Webhook } from 'standardwebhooks'
import { describe, expect, it } from 'vitest'
import { HTTP } from 'cloudevents'
import {
  BATCH_CONTENT_TYPE,
  batchId,
  buildRequest,
  encodeHeaderValue,
} from '../../../consumers/webhook/request.ts'
import { secretKey } from '../../../consumers/webhook/signing.ts'
import { SECRET, subscription, telemetry } from './fakes.ts'

const key = secretKey(SECRET)
// Whole seconds near the present: verify() refuses timestamps over five minutes away.
const now = Math.floor(Date.now() / 1000) * 1000
const verify = (headers: Readonly<Record<string, string>>, body: Buffer): unknown =>
  new Webhook(SECRET).verify(body.toString(), { ...headers })

describe('webhook request', () => {
  it('binary mode: ce- headers, content-type from datacontenttype, data as the body', () => {
    const event = telemetry('dev-1', 'room/temp', { temp: 21 })
    const request = buildRequest({ subscription: subscription(), events: [event], key, now })
    expect(request.url).toBe('https://hooks.example.com/in')
    expect(request.headers['content-type']).toBe('application/json')
    expect(request.headers['ce-id']).toBe(event.attributes.id)
    expect(request.headers['ce-type']).toBe('io.tributary.telemetry.v1')
    expect(request.headers['ce-subject']).toBe('room/temp')
    expect(request.headers['ce-device']).toBe('dev-1')
    expect(request.headers['ce-specversion']).toBe('1.0')
    expect(request.headers['ce-datacontenttype']).toBeUndefined()
    expect(JSON.parse(request.body.toString())).toEqual({ temp: 21 })
    expect(request.headers['webhook-id']).toBe(event.attributes.id)
    expect(request.headers['webhook-timestamp']).toBe(String(now / 1000))
    expect(verify(request.headers, request.body)).toEqual({ temp: 21 })
    // The CloudEvents SDK reads the same message back to the same event.
    const parsed = HTTP.toEvent({ headers: request.headers, body: request.body.toString() })
    expect(parsed).toMatchObject({ id: event.attributes.id, subject: 'room/temp', device: 'dev-1' })
  })

  it('percent-encodes header values outside printable ASCII (HTTP binding §3.1.3.2)', () => {
    expect(encodeHeaderValue('plain value')).toBe('plain value')
    expect(encodeHeaderValue('€ "q" 100%')).toBe('%E2%82%AC %22q%22 100%25')
    expect(encodeHeaderValue('a\nb')).toBe('a%0Ab')
  })

  it('structured mode: one JSON-format event as application/cloudevents+json', () => {
    const event = telemetry('dev-1', 'temp', { temp: 3 })
    const request = buildRequest({
      subscription: subscription({ mode: 'structured' }),
      events: [event],
      key,
      now,
    })
    expect(request.headers['content-type']).toBe('application/cloudevents+json; charset=utf-8')
    expect(request.headers['ce-id']).toBeUndefined()
    const body = JSON.parse(request.body.toString()) as Record<string, unknown>
    expect(body).toMatchObject({ id: event.attributes.id, specversion: '1.0', data: { temp: 3 } })
    expect(verify(request.headers, request.body)).toMatchObject({ id: event.attributes.id })
  })

  it('batch mode: a JSON array as application/cloudevents-batch+json with a stable batch id', () => {
    const events = [telemetry('dev-1'), telemetry('dev-2'), telemetry('dev-1')]
    const sub = subscription({ batchSize: 10 })
    const request = buildRequest({ subscription: sub, events, key, now })
    expect(request.headers['content-type']).toBe(BATCH_CONTENT_TYPE)
    const body = JSON.parse(request.body.toString()) as Array<{ id: string }>
    expect(body.map((e) => e.id)).toEqual(events.map((e) => e.attributes.id))
    expect(request.headers['webhook-id']).toBe(batchId(events))
    expect(request.headers['webhook-id']).toMatch(/^batch_[A-Za-z0-9_-]{32}$/)
    // A retry later carries the same id but a new timestamp, and still verifies.
    const again = buildRequest({ subscription: sub, events, key, now: now + 60_000 })
    expect(again.headers['webhook-id']).toBe(request.headers['webhook-id'])
    expect(again.headers['webhook-timestamp']).toBe(String(now / 1000 + 60))
    expect(batchId(events.slice(0, 2))).not.toBe(request.headers['webhook-id'])
    expect(verify(request.headers, request.body)).toHaveLength(3)
  })

  it('adds custom headers but never lets them replace the ones it sets', () => {
    const sub = subscription({
      headers: {
        'X-Api-Key': 'k1',
        'Content-Type': 'text/plain',
        'Webhook-Signature': 'v1,forged',
        'ce-id': 'forged',
        Host: 'evil.example',
      },
    })
    const event = telemetry('dev-1')
    const request = buildRequest({ subscription: sub, events: [event], key, now })
    expect(request.headers['x-api-key']).toBe('k1')
    expect(request.headers['content-type']).toBe('application/json')
    expect(request.headers['ce-id']).toBe(event.attributes.id)
    expect(request.headers['host']).toBeUndefined()
    expect(request.headers['webhook-signature']).not.toContain('forged')
    expect(request.headers['user-agent']).toBe('Tributary-Webhooks/1')
  })

  it('sends the delivery’s traceparent, which a custom header cannot replace', () => {
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
    const sub = subscription({ headers: { Traceparent: 'forged', tracestate: 'forged' } })
    const request = buildRequest({ subscription: sub, events: [telemetry('dev-1')], key, now, traceparent })
    expect(request.headers['traceparent']).toBe(traceparent)
    expect(request.headers['tracestate']).toBeUndefined()
    const untraced = buildRequest({ subscription: sub, events: [telemetry('dev-1')], key, now })
    expect(untraced.headers['traceparent']).toBeUndefined()
  })

  it('refuses an empty request and several events outside batch mode', () => {
    expect(() => buildRequest({ subscription: subscription(), events: [], key, now })).toThrow(RangeError)
    const two = [telemetry('dev-1'), telemetry('dev-2')]
    expect(() => buildRequest({ subscription: subscription(), events: two, key, now })).toThrow(RangeError)
  })
})
