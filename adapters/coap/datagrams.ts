// The gate every datagram passes before the `coap` library sees it: requests that can never be
// taken are answered here (a method other than POST or GET, a body over the limit), and block-wise
// request bodies (RFC 7959 Block1) are reassembled here under limits, because the library keys
// blocks by token (libcoap changes the token per block, RFC 7959 §2.3 allows it) and buffers
// without bound. A finished body goes on to the library as one request without Block1.
import { randomInt } from 'node:crypto'
import type { RemoteInfo } from 'node:dgram'
import { generate, parse } from 'coap-packet'
import type { Option, ParsedPacket } from 'coap-packet'
import { CODES, DEFAULT_RETRY_SECONDS, diagnostic } from './outcome.ts'
import type { CoapCode } from './outcome.ts'

export interface GateLimits {
  readonly maxPayloadBytes: number
  /** Transfers being reassembled at once, and per peer address. */
  readonly maxTransfers: number
  readonly maxTransfersPerPeer: number
  /** A transfer with no block for this long is forgotten. */
  readonly idleMs: number
  /** How long a finished transfer's request is kept to answer a retransmitted last block. */
  readonly rememberMs: number
}

export interface GateDeps {
  /** Hands a datagram to the library. */
  pass(datagram: Buffer, rinfo: RemoteInfo): void
  /** Sends a response the gate made. */
  send(datagram: Buffer, rinfo: RemoteInfo): void
  /** A request got its final answer here. */
  answered(code: CoapCode): void
  /** An ACK (reset false) or RST for message `messageId` arrived from `peer` (`address:port`). */
  acknowledged?: (peer: string, messageId: number, reset: boolean) => void
  /** Answers a POST asking for a later block of a block-wise response (blocks.ts), if it is one. */
  followUp?: (p: ParsedPacket, peer: string) => Buffer | undefined
  now?: () => number
}

export const MAX_TRANSMIT_SPAN_MS = 45_000
/** RFC 9175 Request-Tag: tells apart block-wise bodies of one endpoint. */
const REQUEST_TAG = '292'
/** Options that differ from block to block of one body; the others identify it (RFC 7959 §2.3). */
const PER_BLOCK = new Set(['Block1', 'Block2', 'Size1', 'Size2'])
const GET = '0.01'
const POST = '0.02'
const EMPTY = '0.00'
/** Critical options (odd numbers, RFC 7252 §5.4.1) the adapter understands; 4209 carries credentials. */
const CRITICAL_UNDERSTOOD = new Set([
  'Uri-Host',
  'Uri-Port',
  'Uri-Path',
  'Uri-Query',
  'Accept',
  'Block1',
  'Block2',
  '4209',
])
/** Critical options coap-packet names (others come as numbers). */
const CRITICAL_NAMED = new Set([
  'If-Match',
  'If-None-Match',
  'OSCORE',
  'Q-Block1',
  'Q-Block2',
  'Proxy-Uri',
  'Proxy-Scheme',
  'OCF-Accept-Content-Format-Version',
  'OCF-Content-Format-Version',
])

/** The first critical option not understood, if any: RFC 7252 §5.4.1 says such a request gets 4.02. */
function unsupportedCritical(p: ParsedPacket): string | undefined {
  for (const o of p.options) {
    const name = optionName(o)
    if (CRITICAL_UNDERSTOOD.has(name)) continue
    const number = Number(name)
    if (CRITICAL_NAMED.has(name) || (Number.isInteger(number) && number % 2 === 1)) return name
  }
  return undefined
}

interface Transfer {
  readonly peer: string
  readonly parts: Buffer[]
  /** Bytes received so far: the offset the next block must start at. */
  next: number
  lastAt: number
}

interface Finished {
  readonly request: Buffer
  readonly at: number
}

const optionName = (o: { name: unknown }): string => String(o.name)
const optionValue = (p: ParsedPacket, name: string): Buffer | undefined =>
  p.options.find((o) => optionName(o) === name)?.value

function uint(value: Buffer | undefined): number | undefined {
  if (value === undefined) return undefined
  if (value.length > 4) return Number.MAX_SAFE_INTEGER
  return value.length === 0 ? 0 : value.readUIntBE(0, value.length)
}

function uintOption(value: number): Buffer {
  if (value === 0) return Buffer.alloc(0)
  const bytes = value < 0x100 ? 1 : value < 0x10000 ? 2 : value < 0x1000000 ? 3 : 4
  const out = Buffer.alloc(bytes)
  out.writeUIntBE(value, 0, bytes)
  return out
}

export interface DatagramGate {
  (datagram: Buffer, rinfo: RemoteInfo): void
  /** Transfers being reassembled now. */
  readonly transfers: number
}

export function createDatagramGate(limits: GateLimits, deps: GateDeps): DatagramGate {
  const now = deps.now ?? Date.now
  const transfers = new Map<string, Transfer>()
  const perPeer = new Map<string, number>()
  const finished = new Map<string, Finished>()
  let messageId = randomInt(0x10000)

  /** A piggybacked ACK to a CON request, a NON response (new message id) to a NON one (RFC 7252 §5.2). */
  function respond(
    p: ParsedPacket,
    rinfo: RemoteInfo,
    code: string,
    options: Option[] = [],
    detail?: string,
  ): void {
    messageId = (messageId + 1) & 0xffff
    const payload = diagnostic(detail)
    deps.send(
      generate({
        code,
        messageId: p.confirmable ? p.messageId : messageId,
        token: p.token,
        ack: p.confirmable,
        confirmable: false,
        options,
        ...(payload === undefined ? {} : { payload }),
      }),
      rinfo,
    )
  }

  function refuse(
    p: ParsedPacket,
    rinfo: RemoteInfo,
    code: CoapCode,
    detail: string,
    options: Option[] = [],
  ): void {
    respond(p, rinfo, code, options, detail)
    deps.answered(code)
  }

  const tooLarge = (p: ParsedPacket, rinfo: RemoteInfo, size: number): void =>
    refuse(p, rinfo, CODES.tooLarge, `the body of ${size} bytes exceeds ${limits.maxPayloadBytes}`, [
      { name: 'Size1', value: uintOption(limits.maxPayloadBytes) },
    ])

  function drop(key: string): void {
    const t = transfers.get(key)
    if (t === undefined) return
    transfers.delete(key)
    const left = (perPeer.get(t.peer) ?? 1) - 1
    if (left <= 0) perPeer.delete(t.peer)
    else perPeer.set(t.peer, left)
  }

  function sweep(at: number): void {
    // Both maps are in order of last use (entries are re-inserted when touched): stop at the first live one.
    for (const [key, t] of transfers) {
      if (at - t.lastAt < limits.idleMs) break
      drop(key)
    }
    for (const [key, f] of finished) {
      if (at - f.at < limits.rememberMs) break
      finished.delete(key)
    }
  }

  function block(p: ParsedPacket, rinfo: RemoteInfo, block1: Buffer): void {
    const at = now()
    sweep(at)
    const peer = rinfo.address
    const endpoint = `${peer}:${rinfo.port}`
    const again = finished.get(`${endpoint}#${p.messageId}`)
    if (again !== undefined) {
      // A retransmitted last block: the library answers it from its response cache.
      deps.pass(again.request, rinfo)
      return
    }
    const value = uint(block1)!
    const szx = value & 0x7
    const more = (value & 0x8) !== 0
    const num = Math.floor(value / 16)
    // RFC 7959 §2.2: SZX 7 is reserved; every block but the last is exactly the block size.
    if (szx === 7 || block1.length > 3) return refuse(p, rinfo, CODES.badRequest, 'invalid Block1 option')
    const size = 1 << (szx + 4)
    if (more && p.payload.length !== size) {
      return refuse(p, rinfo, CODES.badRequest, `a block other than the last must hold ${size} bytes`)
    }
    const offset = num * size
    const end = offset + p.payload.length
    const key = `${endpoint}|${p.options
      .filter((o) => !PER_BLOCK.has(optionName(o)))
      .map((o) => `${optionName(o)}=${o.value.toString('hex')}`)
      .join('&')}`
    if (end > limits.maxPayloadBytes) {
      drop(key)
      return tooLarge(p, rinfo, end)
    }
    let transfer = transfers.get(key)
    if (num === 0) {
      // A (re)started body; a restart throws away what came before.
      drop(key)
      if (transfers.size >= limits.maxTransfers || (perPeer.get(peer) ?? 0) >= limits.maxTransfersPerPeer) {
        return refuse(p, rinfo, CODES.unavailable, 'too many block-wise transfers in progress', [
          { name: 'Max-Age', value: uintOption(DEFAULT_RETRY_SECONDS) },
        ])
      }
      transfer = { peer, parts: [], next: 0, lastAt: at }
      perPeer.set(peer, (perPeer.get(peer) ?? 0) + 1)
    } else if (transfer === undefined || offset > transfer.next) {
      drop(key)
      return refuse(
        p,
        rinfo,
        CODES.incomplete,
        `block ${num} does not follow the blocks received; send the body again`,
      )
    }
    const block1Echo = [{ name: 'Block1', value: block1 }]
    if (end <= transfer.next) {
      // A retransmitted earlier block: acknowledge it again, keep nothing.
      if (more) respond(p, rinfo, '2.31', block1Echo)
      return
    }
    if (offset < transfer.next) return refuse(p, rinfo, CODES.badRequest, 'blocks overlap')
    transfer.parts.push(p.payload)
    transfer.next = end
    transfer.lastAt = at
    transfers.delete(key)
    if (more) {
      transfers.set(key, transfer)
      // RFC 7959 §2.3: 2.31 Continue acknowledges the block and asks for the next one.
      respond(p, rinfo, '2.31', block1Echo)
      return
    }
    drop(key)
    const body = Buffer.concat(transfer.parts, transfer.next)
    const request = generate(
      {
        code: p.code,
        messageId: p.messageId,
        token: p.token,
        confirmable: p.confirmable,
        options: p.options.filter((o) => !PER_BLOCK.has(optionName(o)) && optionName(o) !== REQUEST_TAG),
        payload: body,
      },
      body.length + 65_536,
    )
    finished.set(`${endpoint}#${p.messageId}`, { request, at })
    while (finished.size > limits.maxTransfers) finished.delete(finished.keys().next().value!)
    deps.pass(request, rinfo)
  }

  const gate = (datagram: Buffer, rinfo: RemoteInfo): void => {
    let p: ParsedPacket
    try {
      p = parse(datagram)
    } catch {
      return // RFC 7252 §4.2/§4.3: a malformed message is silently ignored.
    }
    // ACKs and RSTs answer the library's separate responses and notifications; commands track theirs.
    if (p.ack || p.reset) {
      deps.acknowledged?.(`${rinfo.address}:${rinfo.port}`, p.messageId, p.reset)
      return deps.pass(datagram, rinfo)
    }
    if (p.code === EMPTY) {
      // RFC 7252 §4.3: an empty CON is a ping, answered with RST.
      if (p.confirmable) deps.send(generate({ code: EMPTY, messageId: p.messageId, reset: true }), rinfo)
      return
    }
    if (!p.code.startsWith('0.')) return // a response sent to a server: nothing to do with it
    // GET observes /v1/commands (the handler refuses it elsewhere).
    if (p.code !== POST && p.code !== GET) {
      return refuse(p, rinfo, CODES.methodNotAllowed, 'devices POST to /v1/<channel>')
    }
    const critical = unsupportedCritical(p)
    if (critical !== undefined) {
      // RFC 7252 §5.7.2: a server that is no proxy answers proxy requests 5.05.
      const proxy = critical === 'Proxy-Uri' || critical === 'Proxy-Scheme'
      return refuse(
        p,
        rinfo,
        proxy ? CODES.proxyingNotSupported : CODES.badOption,
        `option ${critical} is not supported`,
      )
    }
    // RFC 7959 §4: Size1 in a request announces the whole body, so it can be refused before any block.
    const announced = uint(optionValue(p, 'Size1'))
    if (announced !== undefined && announced > limits.maxPayloadBytes) return tooLarge(p, rinfo, announced)
    // A later block of a command answered block-wise: never a new message (blocks.ts).
    const rest = p.code === POST ? deps.followUp?.(p, `${rinfo.address}:${rinfo.port}`) : undefined
    if (rest !== undefined) return deps.send(rest, rinfo)
    const block1 = optionValue(p, 'Block1')
    if (block1 !== undefined) return block(p, rinfo, block1)
    if (p.payload.length > limits.maxPayloadBytes) return tooLarge(p, rinfo, p.payload.length)
    deps.pass(datagram, rinfo)
  }
  Object.defineProperty(gate, 'transfers', { get: () => transfers.size })
  return gate as DatagramGate
}
