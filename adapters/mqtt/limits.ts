// The MQTT-only limit that protects the adapter from one device: the size of a packet, checked before
// it is buffered. The per-device message rate every adapter shares is in ../device-limits.ts.
import type { Duplex } from 'node:stream'

/**
 * Room above the payload limit for the rest of a packet: a PUBLISH's topic (a channel is at most
 * 256 characters, a gateway prefix 132 more) and packet id, or a CONNECT's client id, username,
 * password (256 at most) and will topic next to a will payload of up to the limit.
 */
export const PACKET_OVERHEAD_BYTES = 2048

/**
 * Watches the MQTT fixed headers (MQTT 3.1.1 §2.2) of what aedes reads from `stream` and calls
 * `tooLarge` (which must end the connection) as soon as a packet declares a remaining length above
 * `maxBytes`, before it is buffered: mqtt-packet's parser has no size limit of its own and would
 * collect up to 256 MB per packet. aedes reads with stream.read(), so that is where we look.
 */
export function guardPacketSize(
  stream: Duplex,
  maxBytes: number,
  tooLarge: (declared: number) => void,
): void {
  const read = stream.read.bind(stream)
  // 0: expecting a fixed header's first byte; 1: in its remaining-length varint; 2: in a body.
  let state = 0
  let remaining = 0
  let multiplier = 1
  let lengthBytes = 0
  let tripped = false
  stream.read = (size?: number): unknown => {
    const chunk = read(size) as Buffer | null
    if (chunk === null || tripped) return tripped ? null : chunk
    let at = 0
    while (at < chunk.length) {
      if (state === 0) {
        at++
        state = 1
        remaining = 0
        multiplier = 1
        lengthBytes = 0
      } else if (state === 1) {
        const byte = chunk[at++]!
        remaining += (byte & 0x7f) * multiplier
        multiplier *= 128
        lengthBytes++
        if ((byte & 0x80) !== 0 && lengthBytes < 4) continue
        // [MQTT-2.2.3] at most four length bytes; a fifth continuation is malformed.
        if (remaining > maxBytes || (byte & 0x80) !== 0) {
          tripped = true
          tooLarge(remaining)
          return null
        }
        state = remaining === 0 ? 0 : 2
      } else {
        const skip = Math.min(remaining, chunk.length - at)
        at += skip
        remaining -= skip
        if (remaining === 0) state = 0
      }
    }
    return chunk
  }
}
