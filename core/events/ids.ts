// Identifiers: the documented charsets and lengths, checks for them, and UUIDv7 event ids.
import { randomBytes } from 'node:crypto'
import { TributaryError } from '../errors.ts'

/** Tenant ids become part of Kafka topic names, so they keep to a charset Kafka accepts as is. */
export const TENANT_ID_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
/** Device ids are percent-encoded wherever they enter a key or URI; `@` and `/` stay out (usernames, paths). */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9._:~-]{1,128}$/
/**
 * A random opaque id: `bytes` random bytes in URL-safe base64 without padding, never starting with
 * '-' (drawn again, one time in 64), so that it can follow a command-line command as a positional
 * argument (`tributary files get <id>`) without being read as an option.
 */
export function opaqueId(bytes = 16, random: (size: number) => Buffer = randomBytes): string {
  for (;;) {
    const id = random(bytes).toString('base64url')
    if (!id.startsWith('-')) return id
  }
}

/** A channel is one to eight levels of unreserved URI characters, 256 characters at most. */
export const CHANNEL_PATTERN = /^[A-Za-z0-9._~-]+(?:\/[A-Za-z0-9._~-]+){0,7}$/
export const CHANNEL_MAX_LENGTH = 256

export const isTenantId = (value: string): boolean => TENANT_ID_PATTERN.test(value)
export const isDeviceId = (value: string): boolean => DEVICE_ID_PATTERN.test(value)
export const isChannel = (value: string): boolean =>
  value.length <= CHANNEL_MAX_LENGTH && CHANNEL_PATTERN.test(value)

export function assertTenantId(value: string): string {
  if (!isTenantId(value)) {
    throw new TributaryError(
      'IDENTIFIER_INVALID',
      `tenant id ${JSON.stringify(value)} is invalid: use 1-63 lowercase letters, digits and inner hyphens`,
    )
  }
  return value
}

export function assertDeviceId(value: string): string {
  if (!isDeviceId(value)) {
    throw new TributaryError(
      'IDENTIFIER_INVALID',
      `device id ${JSON.stringify(value)} is invalid: use 1-128 of A-Z a-z 0-9 . _ : ~ -`,
    )
  }
  return value
}

export function assertChannel(value: string): string {
  if (!isChannel(value)) {
    throw new TributaryError(
      'IDENTIFIER_INVALID',
      `channel ${JSON.stringify(value)} is invalid: 1-8 levels of A-Z a-z 0-9 . _ ~ - separated by /, at most ${CHANNEL_MAX_LENGTH} characters`,
    )
  }
  return value
}

// UUIDv7 (RFC 9562 §5.7): 48-bit Unix milliseconds, then 12 bits used as a counter so that ids made in
// the same millisecond still sort in creation order (RFC 9562 §6.2, method 1), then 62 random bits.
let lastMs = 0
let counter = 0

// Random bytes drawn from the CSPRNG in blocks rather than per id, as crypto.randomUUID does: one
// synchronous call per id cost more than the rest of building an event.
const RANDOM_BLOCK = 4096
let block = Buffer.alloc(0)
let blockAt = 0

function randomSlice(size: number): Buffer {
  if (blockAt + size > block.length) {
    block = randomBytes(RANDOM_BLOCK)
    blockAt = 0
  }
  const slice = block.subarray(blockAt, blockAt + size)
  blockAt += size
  return slice
}

export function uuidv7(now: number = Date.now()): string {
  let ms = now
  if (ms <= lastMs) {
    ms = lastMs
    counter += 1
    if (counter > 0xfff) {
      // Counter exhausted: borrow the next millisecond rather than lose ordering.
      ms = lastMs + 1
      counter = 0
    }
  } else {
    counter = randomSlice(2).readUInt16BE(0) & 0x3ff
  }
  lastMs = ms
  const bytes = randomSlice(16)
  bytes.writeUIntBE(ms, 0, 6)
  bytes[6] = 0x70 | (counter >> 8)
  bytes[7] = counter & 0xff
  bytes[8] = 0x80 | ((bytes[8] ?? 0) & 0x3f)
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** The millisecond timestamp embedded in a UUIDv7. */
export function uuidv7Time(id: string): number {
  return Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16)
}
