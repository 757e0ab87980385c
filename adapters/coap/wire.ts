// The `coap` library's messages as the adapter reads and writes them: the option names it is
// taught (option 4209, our Content-Format names), a request's options as the handler reads them,
// and a reply, a command (2.05 with its options; block-wise and acknowledged ones followed by
// blocks.ts and exchanges.ts) or a refusal to an Observe registration written onto its response.
import { registerFormat, registerOption } from 'coap'
import type { IncomingMessage, OutgoingMessage } from 'coap'
import { BLOCK_SIZE } from './blocks.ts'
import type { ResponseBlocks } from './blocks.ts'
import { DELIVERED, GONE } from '../command-wait.ts'
import type { Exchanges } from './exchanges.ts'
import type { CommandAnswer } from './handler.ts'
import { AUTH_OPTION, CONTENT_FORMATS, commandLocation, contentFormatOf } from './map.ts'
import type { WireRequest } from './map.ts'
import { CODES, diagnostic } from './outcome.ts'
import type { CoapReply } from './outcome.ts'

let registered = false
/**
 * Teaches the library option 4209 (text), ETag as bytes and our media type names for the
 * Content-Formats we take, so that it converts them as we spell them. Registration is global to the library, and harmless.
 */
export function registerWireNames(): void {
  if (registered) return
  registered = true
  registerOption(
    String(AUTH_OPTION),
    (value) => Buffer.from(String(value), 'utf8'),
    (value) => value.toString('utf8'),
  )
  for (const [number, type] of CONTENT_FORMATS) registerFormat(type, number)
  // ETags are opaque bytes (RFC 7252 §5.10.6): the library's own conversion makes them text.
  registerOption(
    'ETag',
    (value) => (Buffer.isBuffer(value) ? value : Buffer.from(String(value), 'utf8')),
    (value) => value,
  )
}

interface PacketOption {
  readonly name: unknown
  readonly value: unknown
}

/** The parts of a parsed request the handler reads (option values as the library converted them). */
export function wireRequest(req: IncomingMessage): WireRequest {
  const options = (req._packet.options ?? []) as readonly PacketOption[]
  const buffers = (name: string): Buffer[] =>
    options.filter((o) => o.name === name && Buffer.isBuffer(o.value)).map((o) => o.value as Buffer)
  const format = options.find((o) => o.name === 'Content-Format')
  return {
    method: typeof req.method === 'string' ? req.method : undefined,
    uriPath: buffers('Uri-Path'),
    uriQuery: buffers('Uri-Query'),
    // Present with a value the library could not read (null): still present, and refused.
    contentFormat: format === undefined ? undefined : (format.value ?? null),
    credentials: options
      .filter((o) => String(o.name) === String(AUTH_OPTION))
      .map((o) => (Buffer.isBuffer(o.value) ? o.value : String(o.value))),
    payload: req.payload,
    observe: typeof req.headers.Observe === 'number' ? req.headers.Observe : undefined,
    etags: buffers('ETag'),
  }
}

/**
 * 2.05 with the command: payload, Content-Format when known, Location-Query command=/request=/
 * device=. Piggybacked on the ACK (or a NON answer) it is delivered once sent: a retransmitted
 * request is answered from the library's response cache. Sent separately (the wait outlasted the
 * piggyback window) it is confirmable, and delivered once the device acknowledged it.
 */
export function writeCommand(
  res: OutgoingMessage,
  peer: string,
  request: WireRequest,
  answer: CommandAnswer,
  deps: { exchanges: Exchanges; blocks: ResponseBlocks },
): void {
  const { exchanges } = deps
  const { command } = answer.handover
  res.code = CODES.content
  const format = contentFormatOf(command.contentType)
  const location = commandLocation(command, answer.receiver)
  if (format !== undefined) res.setOption('Content-Format', format)
  res.setOption('Location-Query', location)
  if (command.payload.length >= BLOCK_SIZE) {
    // The library sends the first block; the device's follow-ups are answered from blocks.ts.
    const options = location.map((value) => ({ name: 'Location-Query' as const, value }))
    const formatOption =
      format === undefined ? [] : [{ name: 'Content-Format' as const, value: uintBytes(format) }]
    deps.blocks.keep(peer, request, command.payload, [...formatOption, ...options])
  }
  if (res._packet.confirmable !== true) {
    res.end(command.payload)
    answer.handover.settle(DELIVERED)
    return
  }
  const id = exchanges.nextId()
  res._packet.messageId = id
  const fate = exchanges.expect(peer, id)
  res.end(command.payload)
  void fate.then((f) => answer.handover.settle(f === 'ack' ? DELIVERED : GONE))
}

/** An unsigned option value in as few bytes as it needs (RFC 7252 §3.2). */
function uintBytes(value: number): Buffer {
  if (value === 0) return Buffer.alloc(0)
  const bytes = value < 0x100 ? 1 : value < 0x10000 ? 2 : 3
  const out = Buffer.alloc(bytes)
  out.writeUIntBE(value, 0, bytes)
  return out
}

/**
 * The reply as the response. To a GET with Observe 0 the library hands an observe stream, which adds
 * an Observe option to whatever is written: a refusal must not carry one (RFC 7641 §4.2), so it is
 * ended without a payload, which the stream sends as a plain response (no diagnostic then).
 */
export function writeReply(res: OutgoingMessage, reply: CoapReply, observing: boolean): void {
  res.code = reply.code
  if (reply.maxAge !== undefined) res.setOption('Max-Age', reply.maxAge)
  if (reply.size1 !== undefined) res.setOption('Size1', reply.size1)
  if (reply.etag !== undefined) res.setOption('ETag', reply.etag)
  if (observing) {
    res.statusCode = reply.code
    res.end()
    return
  }
  if (reply.body !== undefined) {
    res.setOption('Content-Format', reply.body.contentFormat)
    res.end(reply.body.payload)
    return
  }
  res.end(diagnostic(reply.detail))
}
