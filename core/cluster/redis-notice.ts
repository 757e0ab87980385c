// Decoding what the Redis scripts send back and publish: session owners and takeover notices,
// checked field by field (anything on a shared Redis may have been written by something else).
import type { SessionOwner, TakeoverNotice } from './cluster.ts'
import { MESSAGE_MAX_BYTES } from './cluster.ts'

/** A notice is a few short ids; anything longer is not ours. */
const MAX_MESSAGE_LENGTH = 4096

type Json = Record<string, unknown>

const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

function ownerOf(value: unknown): SessionOwner | undefined {
  if (!isObject(value)) return undefined
  const { instance, connection } = value
  if (typeof instance !== 'string' || typeof connection !== 'string') return undefined
  return { instance, connection }
}

function parse(raw: string): unknown {
  if (raw.length > MAX_MESSAGE_LENGTH) return undefined
  try {
    return JSON.parse(raw)
  } catch {
    return undefined
  }
}

/** An owner as the scripts return it; the scripts only return well-formed ones. */
export function parseOwner(raw: string): SessionOwner | undefined {
  return ownerOf(parse(raw))
}

export function parseNotice(raw: string): TakeoverNotice | undefined {
  const value = parse(raw)
  if (!isObject(value)) return undefined
  const { tenant, device } = value
  const previous = ownerOf(value.previous)
  const by = ownerOf(value.by)
  if (
    typeof tenant !== 'string' ||
    typeof device !== 'string' ||
    previous === undefined ||
    by === undefined
  ) {
    return undefined
  }
  return { tenant, device, previous, by }
}

/** A message of send() or broadcast(): a topic and a body. */
export function parseMessage(raw: string): { topic: string; body: string } | undefined {
  if (raw.length > MESSAGE_MAX_BYTES + 1024) return undefined
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    return undefined
  }
  if (!isObject(value) || typeof value.topic !== 'string' || typeof value.body !== 'string') return undefined
  return { topic: value.topic, body: value.body }
}
