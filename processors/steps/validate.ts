// Per-channel data validation: when the tenant gave a JSON Schema for the event's channel (its
// subject), the data must be JSON that satisfies it; otherwise the event is refused with the
// validation errors as the detail. Compiled schemas are cached per channel and schema version.
import type { CloudEvent } from '../../core/events/cloudevent.ts'
import type { SchemaCheck, SchemaError } from '../../core/registry/json-schema.ts'
import { compileSchema } from '../../core/registry/json-schema.ts'
import type { ChannelSchema } from '../../core/registry/model.ts'
import type { Step } from '../step.ts'
import { DETAIL_MAX_BYTES, next, reject } from '../step.ts'

export interface ValidateDeps {
  channelSchema(tenant: string, channel: string): Promise<ChannelSchema | undefined>
}

export interface ValidateOptions {
  /** Most compiled schemas kept (least recently used go first); default 1,000. */
  readonly cacheSize?: number | undefined
}

/** Dead-letter reasons this step gives. */
export const validateReasons = ['data-not-json', 'schema-invalid', 'schema-unusable'] as const

const DEFAULT_CACHE_SIZE = 1000
const NOT_JSON = Symbol('not JSON')
// RFC 8259 §8.1: JSON exchanged between systems is UTF-8; `fatal` refuses anything else.
const utf8 = new TextDecoder('utf-8', { fatal: true })

/** application/json or any `+json` structured syntax suffix (RFC 6839 §3.1), parameters ignored. */
export function isJsonContentType(contentType: string): boolean {
  const essence = (contentType.split(';')[0] ?? '').trim().toLowerCase()
  return essence === 'application/json' || (essence.includes('/') && essence.endsWith('+json'))
}

function parseData(event: CloudEvent): unknown {
  const contentType = event.attributes.datacontenttype
  if (contentType !== undefined && !isJsonContentType(contentType)) return NOT_JSON
  if (event.data === undefined) return NOT_JSON
  try {
    return JSON.parse(utf8.decode(event.data)) as unknown
  } catch {
    return NOT_JSON
  }
}

/** The errors as a JSON array that fits a reject detail: whole errors are left off, never cut. */
export function errorsDetail(errors: readonly SchemaError[]): string {
  const kept = errors.map((e) => ({ path: e.path, message: e.message }))
  let detail = JSON.stringify(kept)
  while (Buffer.byteLength(detail) > DETAIL_MAX_BYTES && kept.length > 1) {
    kept.pop()
    detail = JSON.stringify(kept)
  }
  if (Buffer.byteLength(detail) <= DETAIL_MAX_BYTES) return detail
  // One error longer than the limit (a huge path): keep the start of each field; the room allows
  // for JSON escapes of up to six bytes per character.
  const first = kept[0] ?? { path: '', message: '' }
  const room = Math.floor(DETAIL_MAX_BYTES / 16)
  return JSON.stringify([{ path: first.path.slice(0, room), message: first.message.slice(0, room) }])
}

type Compiled = { readonly check: SchemaCheck } | { readonly unusable: string }

interface CacheEntry {
  /** Changes whenever the stored schema does, including a delete and re-create at version 1. */
  readonly stamp: string
  readonly compiled: Compiled
}

function compile(schema: ChannelSchema): Compiled {
  try {
    return { check: compileSchema(schema.schema) }
  } catch (err) {
    return { unusable: err instanceof Error ? err.message : String(err) }
  }
}

export function createValidate(deps: ValidateDeps, options: ValidateOptions = {}): Step {
  const cacheSize = options.cacheSize ?? DEFAULT_CACHE_SIZE
  const cache = new Map<string, CacheEntry>()

  function compiled(schema: ChannelSchema): Compiled {
    const key = `${schema.tenant}\u0000${schema.channel}`
    const stamp = `${schema.version}\u0000${schema.createdAt}\u0000${schema.updatedAt}`
    const cached = cache.get(key)
    // Delete then set: a Map iterates in insertion order, so its first key is the least recent.
    cache.delete(key)
    const entry = cached?.stamp === stamp ? cached : { stamp, compiled: compile(schema) }
    cache.set(key, entry)
    if (cache.size > cacheSize) {
      const oldest = cache.keys().next()
      if (oldest.done !== true) cache.delete(oldest.value)
    }
    return entry.compiled
  }

  return async (event) => {
    const { tenant, subject: channel } = event.attributes
    if (tenant === undefined || channel === undefined) return next
    const schema = await deps.channelSchema(tenant, channel)
    if (schema === undefined) return next
    const data = parseData(event)
    if (data === NOT_JSON) return reject('data-not-json', 'the channel has a schema; its data must be JSON')
    const use = compiled(schema)
    if ('unusable' in use) return reject('schema-unusable', use.unusable)
    let errors: readonly SchemaError[]
    try {
      errors = use.check(data)
    } catch (err) {
      // Validation that throws (a recursive schema on very deep data) fails for this event only:
      // refusing it keeps it from blocking its partition forever.
      errors = [{ path: '', message: err instanceof Error ? err.message : String(err) }]
    }
    return errors.length === 0 ? next : reject('schema-invalid', errorsDetail(errors))
  }
}
