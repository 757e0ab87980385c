// The rest of a command too large for one response (RFC 7959 Block2). The `coap` library sends the
// first block of a `?ct=` answer of 1024 bytes or more; the device then asks for the next blocks
// with the same POST and a Block2 option, but under a new token, which the library takes for a new
// request (another message, another wait). The datagram gate answers those follow-ups from here,
// by peer and Uri-Path/Uri-Query, and refuses one it has nothing for: never a second message.
import { randomInt } from 'node:crypto'
import { generate } from 'coap-packet'
import type { Option, ParsedPacket } from 'coap-packet'

/** The library splits responses from this size on, in blocks of it (its maxBlock2). */
export const BLOCK_SIZE = 1024
/** A body is kept this long for its follow-ups (RFC 7252 EXCHANGE_LIFETIME is 247 s; blocks come fast). */
export const KEEP_MS = 60_000
/** Bodies kept at most; the oldest go first. */
export const MAX_KEPT = 1024

interface Kept {
  readonly body: Buffer
  readonly options: readonly Option[]
  readonly at: number
}

export interface ResponseBlocks {
  /** Keeps a response body that goes out block-wise, for the follow-ups of `peer`'s request. */
  keep(peer: string, request: RequestKey, body: Buffer, options: readonly Option[]): void
  /**
   * The answer to a POST asking for block 1 or later (Block2 in the request): a datagram, or
   * undefined when it is no such request. A follow-up for a body not kept is answered 4.08.
   */
  answer(p: ParsedPacket, peer: string): Buffer | undefined
  readonly size: number
}

/** What identifies the request across its follow-ups: its Uri-Path and Uri-Query options. */
export interface RequestKey {
  readonly uriPath: readonly Buffer[]
  readonly uriQuery: readonly Buffer[]
}

const optionName = (o: { name: unknown }): string => String(o.name)

function keyOf(peer: string, uriPath: readonly Buffer[], uriQuery: readonly Buffer[]): string {
  const hex = (values: readonly Buffer[]): string => values.map((v) => v.toString('hex')).join('/')
  return `${peer}|${hex(uriPath)}?${hex(uriQuery)}`
}

/** The `coap` library's ETag of a block-wise body (two bytes XORed over it), so that all blocks carry the same. */
export function libraryEtag(body: Buffer): Buffer {
  const id = Buffer.of(0, 0)
  for (let i = 0; i < body.length; i += 2) {
    id[0]! ^= body[i]!
    id[1]! ^= body[i + 1] ?? 0
  }
  return id
}

/** RFC 7959 §2.2: NUM, M and SZX in as few bytes as they need. */
export function block2Value(num: number, more: boolean, szx: number): Buffer {
  const value = num * 16 + (more ? 8 : 0) + szx
  const bytes = value < 0x100 ? 1 : value < 0x10000 ? 2 : 3
  const out = Buffer.alloc(bytes)
  out.writeUIntBE(value, 0, bytes)
  return out
}

export function createResponseBlocks(now: () => number = Date.now): ResponseBlocks {
  const kept = new Map<string, Kept>()
  let messageId = randomInt(0x10000)

  function sweep(at: number): void {
    for (const [key, entry] of kept) {
      if (at - entry.at < KEEP_MS && kept.size <= MAX_KEPT) break
      kept.delete(key)
    }
  }

  function reply(p: ParsedPacket, code: string, options: Option[], payload?: Buffer): Buffer {
    messageId = (messageId + 1) & 0xffff
    return generate({
      code,
      messageId: p.confirmable ? p.messageId : messageId,
      token: p.token,
      ack: p.confirmable,
      confirmable: false,
      options,
      ...(payload === undefined ? {} : { payload }),
    })
  }

  return {
    get size() {
      return kept.size
    },
    keep(peer, request, body, options) {
      const at = now()
      const key = keyOf(peer, request.uriPath, request.uriQuery)
      kept.delete(key)
      kept.set(key, { body, options, at })
      sweep(at)
    },
    answer(p, peer) {
      const block2 = p.options.find((o) => optionName(o) === 'Block2')?.value
      if (block2 === undefined || block2.length === 0 || block2.length > 3) return undefined
      const value = block2.readUIntBE(0, block2.length)
      const num = Math.floor(value / 16)
      if (num === 0) return undefined
      sweep(now())
      const values = (name: string): Buffer[] =>
        p.options.filter((o) => optionName(o) === name).map((o) => o.value)
      const entry = kept.get(keyOf(peer, values('Uri-Path'), values('Uri-Query')))
      if (entry === undefined) {
        // RFC 7959 §2.4 does not say; 4.08 tells the device to send its request again, and no
        // message is ever made of a follow-up.
        return reply(
          p,
          '4.08',
          [],
          Buffer.from('the response is no longer available; send the request again'),
        )
      }
      const szx = Math.min(value & 0x7, 6)
      const size = 1 << (szx + 4)
      const offset = num * size
      if (offset >= entry.body.length) return reply(p, '4.02', [], Buffer.from('no such block'))
      const end = Math.min(offset + size, entry.body.length)
      const more = end < entry.body.length
      return reply(
        p,
        '2.05',
        [
          ...entry.options,
          { name: 'ETag', value: libraryEtag(entry.body) },
          { name: 'Block2', value: block2Value(num, more, szx) },
        ],
        entry.body.subarray(offset, end),
      )
    },
  }
}
