// The query of `GET /api/v1/tenants/{t}/events` (WebSocket): which events a socket receives, where
// it starts and which consumer group remembers its place. Every part is bounded and checked here.
import type { StartPosition } from '../../core/bus/bus.ts'
import type { CloudEvent } from '../../core/events/cloudevent.ts'
import { TributaryError } from '../../core/errors.ts'
import { matchesChannel } from '../../core/events/channel-filter.ts'

export interface EventFilters {
  /** Channels (the event's `subject`) or MQTT-style filters; empty: every channel. */
  readonly channels: readonly string[]
  readonly devices: readonly string[]
  readonly types: readonly string[]
}

/** `from`: a position of the bus, or offsets resolved against the topic's partitions at subscribe time. */
export type FromSpec =
  | { readonly kind: 'position'; readonly position: 'earliest' | 'latest' | { readonly time: number } }
  /** A bare offset for every partition. */
  | { readonly kind: 'all'; readonly offset: number }
  | { readonly kind: 'offsets'; readonly offsets: ReadonlyArray<{ partition: number; offset: number }> }

export interface EventsQuery {
  readonly filters: EventFilters
  /** undefined: not given (latest for a new group, the committed place for a named one). */
  readonly from: FromSpec | undefined
  /** A named consumer group of the client, or undefined for an ephemeral one. */
  readonly group: string | undefined
  /** `access_token` (browsers cannot set the Authorization header of a WebSocket). */
  readonly accessToken: string | undefined
}

const KNOWN = new Set(['channel', 'device', 'type', 'from', 'group', 'access_token'])
const MAX_VALUES = 32
const MAX_VALUE_LENGTH = 256
const GROUP = /^[a-z0-9-]{1,64}$/
const OFFSET = /^\d{1,15}$/
const PARTITION_OFFSET = /^(\d{1,5}):(\d{1,15})$/

const invalid = (name: string, message: string): TributaryError =>
  new TributaryError('REQUEST_INVALID', `query.${name}: ${message}`, {
    details: { errors: [{ path: `query.${name}`, message }] },
  })

/** Repeated parameters and comma lists alike, trimmed, empty items dropped, bounded. */
function list(params: URLSearchParams, name: string): string[] {
  const values = params
    .getAll(name)
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '')
  if (values.length > MAX_VALUES) throw invalid(name, `at most ${MAX_VALUES} values`)
  for (const v of values) {
    if (v.length > MAX_VALUE_LENGTH) throw invalid(name, `values are at most ${MAX_VALUE_LENGTH} characters`)
  }
  return values
}

function single(params: URLSearchParams, name: string): string | undefined {
  const values = params.getAll(name)
  if (values.length > 1) throw invalid(name, 'give it once')
  return values[0]
}

/** `latest`, `earliest`, an offset for every partition, `<partition>:<offset>,...`, or an RFC 3339 time. */
export function parseFrom(value: string): FromSpec {
  if (value === 'latest' || value === 'earliest') return { kind: 'position', position: value }
  if (OFFSET.test(value)) return { kind: 'all', offset: Number(value) }
  if (value.includes(':') && value.split(',').every((part) => PARTITION_OFFSET.test(part))) {
    const offsets = value.split(',').map((part) => {
      const [, partition, offset] = PARTITION_OFFSET.exec(part) ?? []
      return { partition: Number(partition), offset: Number(offset) }
    })
    if (offsets.length > 1024) throw invalid('from', 'at most 1024 partitions')
    if (new Set(offsets.map((o) => o.partition)).size !== offsets.length)
      throw invalid('from', 'a partition is named twice')
    return { kind: 'offsets', offsets }
  }
  // RFC 3339 with a date and a time (a bare date is ambiguous about its zone).
  const time = /^\d{4}-\d{2}-\d{2}T/.test(value) ? Date.parse(value) : Number.NaN
  if (!Number.isNaN(time)) return { kind: 'position', position: { time } }
  throw invalid(
    'from',
    'use latest, earliest, an offset, <partition>:<offset>[,...] or an RFC 3339 time such as 2026-01-01T00:00:00Z',
  )
}

export function parseEventsQuery(params: URLSearchParams): EventsQuery {
  for (const name of params.keys()) {
    if (!KNOWN.has(name)) throw invalid(name, `unknown parameter; use ${[...KNOWN].join(', ')}`)
  }
  const from = single(params, 'from')
  const group = single(params, 'group')
  if (group !== undefined && !GROUP.test(group)) throw invalid('group', 'must be 1-64 of a-z 0-9 -')
  return {
    filters: {
      channels: list(params, 'channel'),
      devices: list(params, 'device'),
      types: list(params, 'type'),
    },
    from: from === undefined ? undefined : parseFrom(from),
    group,
    accessToken: single(params, 'access_token'),
  }
}

/** The bus position of a `from`, given the topic's partition count (offsets beyond it are ignored). */
export function startPosition(topic: string, from: FromSpec, partitions: number): StartPosition {
  if (from.kind === 'position') return from.position
  const wanted =
    from.kind === 'all'
      ? Array.from({ length: partitions }, (_, partition) => ({ partition, offset: from.offset }))
      : from.offsets.filter((o) => o.partition < partitions)
  return { offsets: wanted.map((o) => ({ topic, partition: o.partition, offset: o.offset })) }
}

/** An event passes when each non-empty filter list has a value it matches. */
export function matchesFilters(event: CloudEvent, filters: EventFilters): boolean {
  const { subject, device, type } = event.attributes
  if (filters.types.length > 0 && !filters.types.includes(type)) return false
  if (filters.devices.length > 0 && (device === undefined || !filters.devices.includes(device))) return false
  if (filters.channels.length > 0) {
    if (subject === undefined || !filters.channels.some((f) => matchesChannel(f, subject))) return false
  }
  return true
}
