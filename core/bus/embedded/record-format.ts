// On-disk record format of the embedded log. Every record is self-delimiting and checksummed, so
// recovery can find the last whole record after a crash (a torn tail fails the size or CRC check).
//
//   u32 size           bytes after this field
//   u32 crc32          of the bytes after this field
//   u8  version        1
//   u64 offset         (two u32, high first)
//   u64 timestamp      (two u32, high first), ms since the epoch
//   i32 keyLength      -1 = no key
//   ... key
//   i32 valueLength    -1 = no value
//   ... value
//   u16 headerCount
//   per header: u16 nameLength, name, i32 valueLength, value
import { crc32 } from 'node:zlib'
import type { BusMessage, Headers } from '../bus.ts'

const VERSION = 1
const PREFIX = 8 // size + crc
const FIXED = 1 + 8 + 8 + 4 + 4 + 2
const TWO_32 = 2 ** 32

export interface StoredRecord {
  readonly offset: number
  readonly timestamp: number
  readonly key: Buffer | undefined
  readonly value: Buffer | undefined
  readonly headers: Headers
}

/** Bytes the record takes on disk, without encoding it (for size limits before side effects). */
export function encodedSize(
  key: Buffer | undefined,
  value: Buffer | undefined,
  headers: Headers | undefined,
): number {
  let size = PREFIX + FIXED + (key?.length ?? 0) + (value?.length ?? 0)
  if (headers !== undefined)
    for (const [name, v] of headers) size += 2 + Buffer.byteLength(name) + 4 + v.length
  return size
}

export function encodeRecord(record: StoredRecord): Buffer {
  const nameBuffers: Buffer[] = []
  for (const name of record.headers.keys()) nameBuffers.push(Buffer.from(name))
  const buf = Buffer.allocUnsafe(encodedSize(record.key, record.value, record.headers))
  let p = PREFIX
  buf.writeUInt8(VERSION, p)
  p += 1
  p = writeU64(buf, record.offset, p)
  p = writeU64(buf, record.timestamp, p)
  p = writeBytes(buf, record.key, p)
  p = writeBytes(buf, record.value, p)
  buf.writeUInt16BE(record.headers.size, p)
  p += 2
  let i = 0
  for (const value of record.headers.values()) {
    const name = nameBuffers[i++]!
    buf.writeUInt16BE(name.length, p)
    p += 2
    p += name.copy(buf, p)
    p = writeBytes(buf, value, p)
  }
  buf.writeUInt32BE(buf.length - 4, 0)
  buf.writeUInt32BE(crc32(buf.subarray(PREFIX)), 4)
  return buf
}

export type DecodeResult =
  | { readonly kind: 'record'; readonly record: StoredRecord; readonly length: number }
  | { readonly kind: 'incomplete'; readonly needed: number }
  | { readonly kind: 'corrupt'; readonly reason: string }

/** Decodes the record at `position` of `buf`; values are views into `buf`, not copies. */
export function decodeRecord(buf: Buffer, position: number): DecodeResult {
  if (buf.length - position < PREFIX) return { kind: 'incomplete', needed: PREFIX }
  const size = buf.readUInt32BE(position)
  if (size < 4 + FIXED) return { kind: 'corrupt', reason: `record size ${size} is too small` }
  const length = size + 4
  if (buf.length - position < length) return { kind: 'incomplete', needed: length }
  const body = buf.subarray(position + PREFIX, position + length)
  if (crc32(body) !== buf.readUInt32BE(position + 4)) return { kind: 'corrupt', reason: 'checksum mismatch' }
  if (body.readUInt8(0) !== VERSION)
    return { kind: 'corrupt', reason: `unknown record version ${body.readUInt8(0)}` }
  try {
    return { kind: 'record', record: decodeBody(body), length }
  } catch (err) {
    return { kind: 'corrupt', reason: (err as Error).message }
  }
}

function decodeBody(body: Buffer): StoredRecord {
  let p = 1
  const offset = readU64(body, p)
  p += 8
  const timestamp = readU64(body, p)
  p += 8
  const key = readBytes(body, p)
  p = key.next
  const value = readBytes(body, p)
  p = value.next
  const count = body.readUInt16BE(p)
  p += 2
  const headers = new Map<string, Buffer>()
  for (let i = 0; i < count; i++) {
    const nameLength = body.readUInt16BE(p)
    p += 2
    const name = body.toString('utf8', p, p + nameLength)
    p += nameLength
    const v = readBytes(body, p)
    p = v.next
    headers.set(name, v.bytes ?? Buffer.alloc(0))
  }
  return { offset, timestamp, key: key.bytes, value: value.bytes, headers }
}

export function toMessage(topic: string, partition: number, record: StoredRecord): BusMessage {
  return {
    topic,
    partition,
    offset: record.offset,
    timestamp: record.timestamp,
    key: record.key?.toString(),
    value: record.value,
    headers: record.headers,
  }
}

function writeU64(buf: Buffer, value: number, p: number): number {
  buf.writeUInt32BE(Math.floor(value / TWO_32), p)
  buf.writeUInt32BE(value >>> 0, p + 4)
  return p + 8
}

function readU64(buf: Buffer, p: number): number {
  return buf.readUInt32BE(p) * TWO_32 + buf.readUInt32BE(p + 4)
}

function writeBytes(buf: Buffer, bytes: Buffer | undefined, p: number): number {
  if (bytes === undefined) {
    buf.writeInt32BE(-1, p)
    return p + 4
  }
  buf.writeInt32BE(bytes.length, p)
  return p + 4 + bytes.copy(buf, p + 4)
}

function readBytes(buf: Buffer, p: number): { bytes: Buffer | undefined; next: number } {
  const length = buf.readInt32BE(p)
  if (length < 0) return { bytes: undefined, next: p + 4 }
  if (p + 4 + length > buf.length) throw new RangeError('field runs past the end of the record')
  return { bytes: buf.subarray(p + 4, p + 4 + length), next: p + 4 + length }
}
