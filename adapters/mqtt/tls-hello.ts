// Reads the client's side of a TLS handshake while it is still in the clear, to learn a TLS-PSK
// identity before OpenSSL asks for its key: Node's pskCallback is synchronous, the registry is not.
// TLS 1.3 sends the identity in the ClientHello (RFC 8446 §4.2.11), TLS 1.2 in the
// ClientKeyExchange (RFC 4279 §2). Nothing here decides anything; it only parses.

/** TLS record content types (RFC 8446 §5.1) and handshake message types (§4). */
const HANDSHAKE = 22
const CLIENT_HELLO = 1
const CLIENT_KEY_EXCHANGE = 16
const PRE_SHARED_KEY = 41

/** Bytes of handshake read before giving up on finding what we look for. */
export const MAX_INSPECTED_BYTES = 64 * 1024

export interface HandshakeMessage {
  readonly type: number
  readonly body: Buffer
}

/**
 * Reassembles handshake messages from the client's records. `done` turns true at the first
 * non-handshake record (ChangeCipherSpec, alert, application data: the clear part is over) or past
 * MAX_INSPECTED_BYTES; `tls` turns false when the first byte is not a TLS handshake record.
 */
export function createHandshakeReader() {
  let records: Buffer = Buffer.alloc(0)
  let handshake: Buffer = Buffer.alloc(0)
  let inspected = 0
  const state = { done: false, tls: true }
  return {
    state,
    feed(chunk: Buffer): HandshakeMessage[] {
      const messages: HandshakeMessage[] = []
      if (state.done || chunk.length === 0) return messages
      if (inspected === 0 && chunk[0] !== HANDSHAKE) {
        state.tls = false
        state.done = true
        return messages
      }
      inspected += chunk.length
      records = records.length === 0 ? chunk : Buffer.concat([records, chunk])
      while (records.length >= 5) {
        const length = records.readUInt16BE(3)
        if (records.length < 5 + length) break
        const type = records[0]
        const fragment = records.subarray(5, 5 + length)
        records = records.subarray(5 + length)
        if (type !== HANDSHAKE) {
          state.done = true
          return messages
        }
        handshake = Buffer.concat([handshake, fragment])
        while (handshake.length >= 4) {
          const size = handshake.readUIntBE(1, 3)
          if (handshake.length < 4 + size) break
          messages.push({ type: handshake[0]!, body: handshake.subarray(4, 4 + size) })
          handshake = handshake.subarray(4 + size)
        }
      }
      if (inspected > MAX_INSPECTED_BYTES) state.done = true
      return messages
    },
  }
}

/** IANA code points of the TLS 1.2 PSK cipher suites (plain, DHE, RSA and ECDHE PSK). */
const PSK_SUITES: ReadonlyArray<readonly [number, number]> = [
  [0x008a, 0x0095],
  [0x00a8, 0x00b9],
  [0xc033, 0xc03b],
  [0xc064, 0xc071],
  [0xc08e, 0xc09b],
  [0xc0a4, 0xc0ab],
  [0xccab, 0xccae],
  [0xd001, 0xd005],
]
const isPskSuite = (code: number): boolean => PSK_SUITES.some(([low, high]) => code >= low && code <= high)

export interface ClientHelloFacts {
  /** The first identity of a TLS 1.3 pre_shared_key extension. */
  readonly pskIdentity?: string | undefined
  /** Whether a TLS 1.2 PSK cipher suite is offered. */
  readonly offersPsk12: boolean
}

/** ClientHello (RFC 8446 §4.1.2); undefined when it does not parse. */
export function parseClientHello(message: HandshakeMessage): ClientHelloFacts | undefined {
  if (message.type !== CLIENT_HELLO) return undefined
  const b = message.body
  try {
    let at = 2 + 32 // legacy_version, random
    at += 1 + b.readUInt8(at) // legacy_session_id
    const suitesLength = b.readUInt16BE(at)
    let offersPsk12 = false
    for (let i = at + 2; i < at + 2 + suitesLength; i += 2) offersPsk12 ||= isPskSuite(b.readUInt16BE(i))
    at += 2 + suitesLength
    at += 1 + b.readUInt8(at) // legacy_compression_methods
    if (at >= b.length) return { offersPsk12 }
    const end = at + 2 + b.readUInt16BE(at)
    at += 2
    while (at + 4 <= end) {
      const type = b.readUInt16BE(at)
      const length = b.readUInt16BE(at + 2)
      if (type === PRE_SHARED_KEY) {
        // OfferedPsks: identities<7..2^16-1> of { identity<1..2^16-1>, obfuscated_ticket_age }.
        const identityLength = b.readUInt16BE(at + 6)
        const identity = b.subarray(at + 8, at + 8 + identityLength).toString('utf8')
        return { pskIdentity: identity, offersPsk12 }
      }
      at += 4 + length
    }
    return { offersPsk12 }
  } catch {
    return undefined
  }
}

/** The psk_identity a TLS 1.2 PSK ClientKeyExchange starts with (RFC 4279 §2, RFC 5489 §2). */
export function clientKeyExchangeIdentity(message: HandshakeMessage): string | undefined {
  if (message.type !== CLIENT_KEY_EXCHANGE || message.body.length < 2) return undefined
  const length = message.body.readUInt16BE(0)
  if (length === 0 || 2 + length > message.body.length) return undefined
  return message.body.subarray(2, 2 + length).toString('utf8')
}
