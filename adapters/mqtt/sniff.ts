// Which MQTT version a connection speaks, read from its CONNECT before anyone parses it: the
// Protocol Level byte follows the fixed header and the Protocol Name (MQTT 5 §3.1.2.2, MQTT 3.1.1
// §3.1.2.2). The bytes read are put back, so the endpoint that serves the version reads the
// CONNECT whole.
import type { Duplex } from 'node:stream'

/**
 * The CONNECT's Protocol Level (3, 4, 5 …; undefined when the first bytes are no CONNECT, which
 * the 3.1.1 endpoint refuses as it always did), or why nothing could be read.
 */
export type Sniffed =
  | { readonly ok: true; readonly level: number | undefined }
  | { readonly ok: false; readonly reason: 'connect-timeout' | 'connection-lost' }

/**
 * How many leading bytes decide: 1 type byte, up to 4 length bytes, a 2-byte name length, the
 * name (`MQTT`, or `MQIsdp` for 3.1) and the level byte.
 */
export function levelOf(head: Buffer): number | 'more' | 'not-connect' {
  if (head.length === 0) return 'more'
  // [MQTT-3.1.0-1] the first packet from the client must be a CONNECT (type 1, flags 0).
  if (head[0] !== 0x10) return 'not-connect'
  let at = 1
  for (;;) {
    if (at >= head.length) return 'more'
    if ((head[at++]! & 0x80) === 0) break
    if (at > 4) return 'not-connect' // [MQTT-1.5.5-1] at most four bytes
  }
  if (head.length < at + 2) return 'more'
  const nameLength = head.readUInt16BE(at)
  if (nameLength > 6) return 'not-connect'
  const levelAt = at + 2 + nameLength
  if (head.length <= levelAt) return 'more'
  return head[levelAt]!
}

/**
 * Reads from `stream` until the CONNECT's level is known, then unshifts what it read. Gives up
 * after `timeoutMs` (no CONNECT in time); the caller ends the connection then.
 */
export function sniffLevel(stream: Duplex, timeoutMs: number): Promise<Sniffed> {
  return new Promise((resolve) => {
    let head: Buffer = Buffer.alloc(0)
    const finish = (result: Sniffed): void => {
      clearTimeout(timer)
      stream.off('readable', onReadable)
      stream.off('close', onClose)
      if (head.length > 0 && result.ok) stream.unshift(head)
      resolve(result)
    }
    const onClose = (): void => finish({ ok: false, reason: 'connection-lost' })
    const onReadable = (): void => {
      for (;;) {
        const chunk = stream.read() as Buffer | null
        if (chunk === null) return
        head = head.length === 0 ? chunk : Buffer.concat([head, chunk])
        const level = levelOf(head)
        if (level === 'more') continue
        return finish({ ok: true, level: level === 'not-connect' ? undefined : level })
      }
    }
    const timer = setTimeout(() => finish({ ok: false, reason: 'connect-timeout' }), timeoutMs)
    stream.on('readable', onReadable)
    // An error destroys the stream, which then closes: 'close' covers it (accept() listens for errors).
    stream.once('close', onClose)
  })
}
