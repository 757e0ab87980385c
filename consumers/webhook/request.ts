// The HTTP request of one webhook delivery: one event in CloudEvents HTTP binary or structured
// mode, or several as a JSON batch, with the subscription's headers and a Standard Webhooks signature.
import { createHash } from 'node:crypto'
import type { CloudEvent } from '../../core/events/cloudevent.ts'
import { STRUCTURED_JSON_CONTENT_TYPE, encodeStructured } from '../../core/events/structured.ts'
import type { WebhookSubscription } from '../../core/registry/model.ts'
import type { WebhookRequest } from './ports.ts'
import { sign } from './signing.ts'

/** CloudEvents JSON format §4: a batch is a JSON array of JSON-format events. */
export const BATCH_CONTENT_TYPE = 'application/cloudevents-batch+json; charset=utf-8'
export const USER_AGENT = 'Tributary-Webhooks/1'

// Headers the engine sets: a subscription's custom headers never replace them.
const RESERVED =
  /^(ce-|webhook-)|^(content-type|content-length|host|user-agent|transfer-encoding|connection|traceparent|tracestate)$/i

/**
 * CloudEvents HTTP binding §3.1.3.2: header values are percent-encoded outside printable ASCII,
 * and `%` and `"` are encoded too so the value reads back unambiguously.
 */
export function encodeHeaderValue(value: string): string {
  let out = ''
  for (const char of value) {
    const code = char.codePointAt(0)!
    if (code >= 0x20 && code <= 0x7e && char !== '%' && char !== '"') out += char
    else for (const byte of Buffer.from(char)) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/** Binary content mode (HTTP binding §3.1): attributes as `ce-` headers, data as the body. */
function binary(event: CloudEvent): { headers: Record<string, string>; body: Buffer } {
  const headers: Record<string, string> = {}
  const attributes = event.attributes
  for (const name in attributes) {
    const value = attributes[name]
    if (value === undefined) continue
    // §3.1.1: datacontenttype maps to Content-Type.
    if (name === 'datacontenttype') headers['content-type'] = value
    else headers[`ce-${name}`] = encodeHeaderValue(value)
  }
  return { headers, body: event.data ?? Buffer.alloc(0) }
}

/** A batch's webhook-id: the same for the same events, so receivers can drop redeliveries. */
export function batchId(events: readonly CloudEvent[]): string {
  const hash = createHash('sha256')
  for (const event of events)
    hash.update(event.attributes.source).update('\n').update(event.attributes.id).update('\n')
  return `batch_${hash.digest('base64url').slice(0, 32)}`
}

export interface RequestInput {
  readonly subscription: WebhookSubscription
  /** One event, or up to batchSize events when the subscription is in batch mode. */
  readonly events: readonly CloudEvent[]
  /** The signing key (secretKey() of the subscription's secret). */
  readonly key: Buffer
  /** Send time in ms, for webhook-timestamp. */
  readonly now: number
  /** W3C trace context of the delivery, sent as the traceparent header. */
  readonly traceparent?: string | undefined
}

export function buildRequest(input: RequestInput): WebhookRequest {
  const { subscription, events } = input
  const first = events[0]
  if (first === undefined) throw new RangeError('a webhook request needs at least one event')
  let own: Record<string, string>
  let body: Buffer
  let id: string
  if (subscription.batchSize !== null) {
    body = Buffer.from(`[${events.map(encodeStructured).join(',')}]`)
    own = { 'content-type': BATCH_CONTENT_TYPE }
    id = batchId(events)
  } else {
    if (events.length !== 1) throw new RangeError('one event per request outside batch mode')
    if (subscription.mode === 'binary') ({ headers: own, body } = binary(first))
    else {
      body = Buffer.from(encodeStructured(first))
      own = { 'content-type': STRUCTURED_JSON_CONTENT_TYPE }
    }
    id = first.attributes.id
  }
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(subscription.headers)) {
    if (!RESERVED.test(name)) headers[name.toLowerCase()] = value
  }
  Object.assign(headers, own, { 'user-agent': USER_AGENT }, sign(input.key, id, input.now, body))
  if (input.traceparent !== undefined) headers['traceparent'] = input.traceparent
  return { url: subscription.url, headers, body }
}
