// The CloudEvent 1.0 shape Tributary passes around: context attributes as strings, data as bytes.
import { TributaryError } from '../errors.ts'

export interface CloudEventAttributes {
  readonly specversion: '1.0'
  readonly id: string
  readonly source: string
  readonly type: string
  readonly subject?: string
  readonly time?: string
  readonly datacontenttype?: string
  readonly dataschema?: string
  // Tributary's extensions (DESIGN.md "Kafka topics and the event contract").
  readonly tenant?: string
  readonly device?: string
  readonly sender?: string
  readonly protocol?: string
  readonly partitionkey?: string
  readonly traceparent?: string
  readonly [extension: string]: string | undefined
}

export interface CloudEvent {
  readonly attributes: CloudEventAttributes
  readonly data: Buffer | undefined
}

export const REQUIRED_ATTRIBUTES = ['id', 'source', 'type', 'specversion'] as const

// CloudEvents 1.0 §3.1.1: attribute names are lowercase letters and digits; 20 characters is the
// recommended maximum, which we enforce so every name is a portable header name.
const ATTRIBUTE_NAME = /^[a-z0-9]{1,20}$/

/** Checks the attributes the spec requires and the names it allows; throws EVENT_INVALID. */
export function validateAttributes(attributes: Record<string, string | undefined>): CloudEventAttributes {
  const problems: string[] = []
  for (const name of REQUIRED_ATTRIBUTES) {
    const value = attributes[name]
    if (value === undefined || value === '') problems.push(`missing required attribute "${name}"`)
  }
  if (attributes['specversion'] !== undefined && attributes['specversion'] !== '1.0') {
    problems.push(`unsupported specversion ${JSON.stringify(attributes['specversion'])}`)
  }
  for (const name of Object.keys(attributes)) {
    if (!ATTRIBUTE_NAME.test(name))
      problems.push(`attribute name ${JSON.stringify(name)} is not 1-20 of a-z 0-9`)
  }
  const time = attributes['time']
  if (time !== undefined && Number.isNaN(Date.parse(time)))
    problems.push(`time ${JSON.stringify(time)} is not RFC 3339`)
  if (problems.length > 0) {
    throw new TributaryError('EVENT_INVALID', `invalid CloudEvent: ${problems.join('; ')}`, {
      details: { problems },
    })
  }
  return attributes as CloudEventAttributes
}
