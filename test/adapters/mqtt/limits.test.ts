// The packet-size guard on what aedes reads (fixed headers tracked across chunks). The per-device
// rate limit all adapters share is tested in ../device-limits.test.ts.
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { guardPacketSize } from '../../../adapters/mqtt/limits.ts'

/** Remaining length as MQTT 3.1.1 §2.2.3 encodes it. */
function varint(n: number): number[] {
  const out: number[] = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    out.push(byte)
  } while (n > 0)
  return out
}

/** A QoS 0 PUBLISH with `size` bytes after the fixed header. */
const packet = (size: number): Buffer =>
  Buffer.concat([Buffer.from([0x30, ...varint(size)]), Buffer.alloc(size, 1)])

function guarded(max: number): { stream: PassThrough; tripped: number[]; drain(): Buffer[] } {
  const stream = new PassThrough()
  const tripped: number[] = []
  guardPacketSize(stream, max, (declared) => tripped.push(declared))
  return {
    stream,
    tripped,
    drain() {
      const out: Buffer[] = []
      let chunk: Buffer | null
      while ((chunk = stream.read() as Buffer | null) !== null) out.push(chunk)
      return out
    },
  }
}

describe('guardPacketSize', () => {
  it('passes packets up to the limit through unchanged, however the bytes are split', () => {
    const g = guarded(300)
    const bytes = Buffer.concat([packet(0), packet(5), packet(300), packet(200), Buffer.from([0xc0, 0])])
    const seen: Buffer[] = []
    for (let at = 0; at < bytes.length; at += 7) {
      g.stream.write(bytes.subarray(at, at + 7))
      seen.push(...g.drain())
    }
    expect(Buffer.concat(seen)).toEqual(bytes)
    expect(g.tripped).toEqual([])
  })

  it('trips on a header declaring more than the limit, before the body arrives', () => {
    const g = guarded(1000)
    g.stream.write(packet(10))
    expect(Buffer.concat(g.drain())).toEqual(packet(10))
    g.stream.write(Buffer.from([0x30, ...varint(16 * 1024 * 1024)]))
    expect(g.drain()).toEqual([])
    expect(g.tripped).toEqual([16 * 1024 * 1024])
    g.stream.write(Buffer.alloc(100))
    expect(g.drain()).toEqual([])
  })

  it('follows a remaining length split across reads', () => {
    const g = guarded(20_000)
    const header = Buffer.from([0x30, ...varint(20_001)])
    g.stream.write(header.subarray(0, 2))
    g.drain()
    expect(g.tripped).toEqual([])
    g.stream.write(header.subarray(2))
    g.drain()
    expect(g.tripped).toEqual([20_001])
  })

  it('trips on a remaining length of more than four bytes [MQTT-2.2.3]', () => {
    const g = guarded(Number.MAX_SAFE_INTEGER)
    g.stream.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]))
    g.drain()
    expect(g.tripped).toHaveLength(1)
  })
})
