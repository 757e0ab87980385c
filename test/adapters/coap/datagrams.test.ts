// The datagram gate in front of the coap library: block-wise (RFC 7959 Block1) bodies reassembled
// under limits, oversize refused early, non-POST and pings answered, the rest passed on as is.
import type { RemoteInfo } from 'node:dgram'
import { generate, parse } from 'coap-packet'
import type { Option, ParsedPacket } from 'coap-packet'
import { beforeEach, describe, expect, it } from 'vitest'
import { createDatagramGate } from '../../../adapters/coap/datagrams.ts'
import type { DatagramGate, GateLimits } from '../../../adapters/coap/datagrams.ts'

const peer = (port = 40000, address = '127.0.0.1'): RemoteInfo => ({ address, port, family: 'IPv4', size: 0 })

const LIMITS: GateLimits = {
  maxPayloadBytes: 256,
  maxTransfers: 3,
  maxTransfersPerPeer: 2,
  idleMs: 1_000,
  rememberMs: 500,
}

/** Block1 value: NUM, M and SZX (block size 2^(SZX+4)). */
const block1 = (num: number, more: boolean, szx: number): Option => {
  const value = (num << 4) | (more ? 8 : 0) | szx
  return { name: 'Block1', value: value === 0 ? Buffer.alloc(0) : Buffer.from([value]) }
}
const uint = (n: number): Buffer => Buffer.from([n >> 8, n & 0xff])

let mid = 100
function request(init: {
  payload?: Buffer
  options?: Option[]
  code?: string
  confirmable?: boolean
  token?: Buffer
}): Buffer {
  return generate({
    code: init.code ?? '0.02',
    messageId: mid++,
    token: init.token ?? Buffer.from([mid & 0xff]),
    confirmable: init.confirmable ?? true,
    options: [
      { name: 'Uri-Path', value: Buffer.from('v1') },
      { name: 'Uri-Path', value: Buffer.from('c') },
      ...(init.options ?? []),
    ],
    ...(init.payload === undefined ? {} : { payload: init.payload }),
  })
}

let passed: Buffer[]
let sent: ParsedPacket[]
let answered: string[]
let clock: number
let gate: DatagramGate

beforeEach(() => {
  passed = []
  sent = []
  answered = []
  clock = 0
  gate = createDatagramGate(LIMITS, {
    pass: (datagram) => passed.push(datagram),
    send: (datagram) => sent.push(parse(datagram)),
    answered: (code) => answered.push(code),
    now: () => clock,
  })
})

const option = (p: ParsedPacket, name: string): Buffer | undefined =>
  p.options.find((o) => String(o.name) === name)?.value

/** Sends `body` in blocks of 2^(szx+4) bytes, each with a fresh token as libcoap does. */
function sendBlocks(body: Buffer, szx: number, from = peer(), extra: Option[] = []): void {
  const size = 1 << (szx + 4)
  const count = Math.max(1, Math.ceil(body.length / size))
  for (let num = 0; num < count; num++) {
    const more = num < count - 1
    gate(
      request({
        payload: body.subarray(num * size, (num + 1) * size),
        options: [block1(num, more, szx), ...extra],
        token: Buffer.from([num, 0xaa]),
      }),
      from,
    )
  }
}

describe('datagram gate', () => {
  it('passes a plain POST through untouched', () => {
    const datagram = request({ payload: Buffer.from('hello') })
    gate(datagram, peer())
    expect(passed).toEqual([datagram])
    expect(sent).toEqual([])
  })

  it('reassembles a Block1 body sent with a new token per block, answering 2.31 Continue per block', () => {
    const body = Buffer.from(Array.from({ length: 200 }, (_, i) => i))
    sendBlocks(body, 2, peer(), [
      { name: 'Size1', value: uint(200) },
      { name: '292', value: Buffer.from('tag') },
    ])
    expect(sent.map((p) => p.code)).toEqual(['2.31', '2.31', '2.31'])
    expect(sent.every((p) => p.ack)).toBe(true)
    expect(sent.map((p) => option(p, 'Block1'))).toEqual([0, 1, 2].map((n) => block1(n, true, 2).value))
    expect(passed).toHaveLength(1)
    const whole = parse(passed[0]!)
    expect(whole.payload).toEqual(body)
    // The library must see one ordinary request: no Block1, Size1 or Request-Tag left.
    expect(whole.options.map((o) => String(o.name))).toEqual(['Uri-Path', 'Uri-Path'])
    expect(whole.token).toEqual(Buffer.from([3, 0xaa]))
    expect(gate.transfers).toBe(0)
  })

  it('keeps the bodies of two peers apart', () => {
    const a = Buffer.alloc(40, 'a')
    const b = Buffer.alloc(40, 'b')
    gate(request({ payload: a.subarray(0, 32), options: [block1(0, true, 1)] }), peer(1))
    gate(request({ payload: b.subarray(0, 32), options: [block1(0, true, 1)] }), peer(2))
    gate(request({ payload: a.subarray(32), options: [block1(1, false, 1)] }), peer(1))
    gate(request({ payload: b.subarray(32), options: [block1(1, false, 1)] }), peer(2))
    expect(passed.map((d) => parse(d).payload.toString())).toEqual(['a'.repeat(40), 'b'.repeat(40)])
  })

  it('refuses a body over the limit as soon as a block reaches past it, and as soon as Size1 announces it', () => {
    sendBlocks(Buffer.alloc(300), 3)
    expect(passed).toEqual([])
    expect(answered).toEqual(['4.13'])
    const refusal = sent.at(-1)!
    expect(refusal.code).toBe('4.13')
    expect(option(refusal, 'Size1')).toEqual(Buffer.from([1, 0]))
    expect(refusal.payload.toString()).toMatch(/exceeds 256/)
    expect(gate.transfers).toBe(0)

    sent = []
    gate(
      request({
        payload: Buffer.alloc(16),
        options: [block1(0, true, 0), { name: 'Size1', value: uint(5000) }],
      }),
      peer(),
    )
    expect(sent.map((p) => p.code)).toEqual(['4.13'])
    expect(gate.transfers).toBe(0)
  })

  it('refuses a single datagram over the limit', () => {
    gate(request({ payload: Buffer.alloc(257) }), peer())
    expect(sent.map((p) => p.code)).toEqual(['4.13'])
    expect(passed).toEqual([])
  })

  it('answers 4.08 when a block does not follow the ones received, and forgets the body', () => {
    gate(request({ payload: Buffer.alloc(16), options: [block1(0, true, 0)] }), peer())
    gate(request({ payload: Buffer.alloc(16), options: [block1(2, true, 0)] }), peer())
    expect(sent.map((p) => p.code)).toEqual(['2.31', '4.08'])
    expect(gate.transfers).toBe(0)
    gate(request({ payload: Buffer.alloc(16), options: [block1(5, false, 0)] }), peer(9))
    expect(sent.at(-1)!.code).toBe('4.08')
  })

  it('acknowledges a retransmitted block again without storing it twice', () => {
    const first = request({ payload: Buffer.alloc(16, 1), options: [block1(0, true, 0)] })
    gate(first, peer())
    gate(first, peer())
    gate(request({ payload: Buffer.from('end'), options: [block1(1, false, 0)] }), peer())
    expect(sent.map((p) => p.code)).toEqual(['2.31', '2.31'])
    expect(parse(passed[0]!).payload).toEqual(Buffer.concat([Buffer.alloc(16, 1), Buffer.from('end')]))
  })

  it('hands a retransmitted last block to the library again (it answers from its cache) for a while', () => {
    gate(request({ payload: Buffer.alloc(16), options: [block1(0, true, 0)] }), peer())
    const last = request({ payload: Buffer.from('z'), options: [block1(1, false, 0)] })
    gate(last, peer())
    gate(last, peer())
    expect(passed).toHaveLength(2)
    expect(passed[1]).toEqual(passed[0])
    clock += LIMITS.rememberMs + 1
    gate(last, peer())
    expect(passed).toHaveLength(2)
    expect(sent.at(-1)!.code).toBe('4.08')
  })

  it('bounds the transfers in progress, per peer and in all, and forgets idle ones', () => {
    const start = (from: RemoteInfo) =>
      gate(request({ payload: Buffer.alloc(16), options: [block1(0, true, 0)] }), from)
    start(peer(1, '10.0.0.1'))
    start(peer(2, '10.0.0.1'))
    start(peer(3, '10.0.0.1'))
    expect(sent.map((p) => p.code)).toEqual(['2.31', '2.31', '5.03'])
    expect(option(sent[2]!, 'Max-Age')).toEqual(Buffer.from([5]))
    start(peer(1, '10.0.0.2'))
    start(peer(1, '10.0.0.3'))
    expect(sent.map((p) => p.code).slice(3)).toEqual(['2.31', '5.03'])
    expect(gate.transfers).toBe(3)
    clock += LIMITS.idleMs
    start(peer(1, '10.0.0.3'))
    expect(sent.at(-1)!.code).toBe('2.31')
    expect(gate.transfers).toBe(1)
  })

  it('refuses a reserved block size and a short middle block', () => {
    gate(request({ payload: Buffer.alloc(16), options: [block1(0, true, 7)] }), peer())
    gate(request({ payload: Buffer.alloc(10), options: [block1(0, true, 0)] }), peer())
    expect(sent.map((p) => p.code)).toEqual(['4.00', '4.00'])
    expect(answered).toEqual(['4.00', '4.00'])
  })

  it('answers methods other than POST and GET with 4.05, a ping with RST, and drops what is not CoAP', () => {
    gate(request({ code: '0.04' }), peer())
    expect(sent[0]).toMatchObject({ code: '4.05', ack: true })
    gate(generate({ code: '0.00', messageId: 7, confirmable: true }), peer())
    expect(sent[1]).toMatchObject({ code: '0.00', reset: true, messageId: 7 })
    gate(Buffer.from([0xff, 0x00]), peer())
    gate(generate({ code: '2.05', messageId: 8, confirmable: true }), peer())
    expect(sent).toHaveLength(2)
    expect(passed).toEqual([])
    // GET goes on: the handler observes /v1/commands with it and refuses it elsewhere.
    const get = request({ code: '0.01' })
    gate(get, peer())
    expect(passed).toEqual([get])
  })

  it('answers critical options it does not understand with 4.02 and proxy requests with 5.05', () => {
    gate(
      request({ payload: Buffer.from('x'), options: [{ name: 'If-Match', value: Buffer.from('e') }] }),
      peer(),
    )
    gate(request({ payload: Buffer.from('x'), options: [{ name: '2051', value: Buffer.from('z') }] }), peer())
    gate(
      request({
        payload: Buffer.from('x'),
        options: [{ name: 'Proxy-Uri', value: Buffer.from('coap://x/') }],
      }),
      peer(),
    )
    expect(sent.map((p) => p.code)).toEqual(['4.02', '4.02', '5.05'])
    expect(sent[1]!.payload.toString()).toContain('2051')
    expect(passed).toEqual([])
    // Elective options it does not know (even numbers) are ignored; 4209 (odd) is understood.
    gate(
      request({
        payload: Buffer.from('x'),
        options: [
          { name: '2048', value: Buffer.from('z') },
          { name: '4209', value: Buffer.from('Basic eA==') },
        ],
      }),
      peer(),
    )
    expect(passed).toHaveLength(1)
  })

  it('passes ACKs and RSTs to the library (they answer its separate responses), telling who acknowledged what', () => {
    const seen: Array<[string, number, boolean]> = []
    const tracking = createDatagramGate(LIMITS, {
      pass: (datagram) => passed.push(datagram),
      send: (datagram) => sent.push(parse(datagram)),
      answered: (code) => answered.push(code),
      acknowledged: (from, id, reset) => seen.push([from, id, reset]),
    })
    const ack = generate({ code: '0.00', messageId: 9, ack: true })
    const rst = generate({ code: '0.00', messageId: 10, reset: true })
    tracking(ack, peer())
    tracking(rst, peer())
    expect(passed).toEqual([ack, rst])
    const { address, port } = peer()
    expect(seen).toEqual([
      [`${address}:${port}`, 9, false],
      [`${address}:${port}`, 10, true],
    ])
  })

  it('answers the follow-up of a block-wise response itself, never passing it on', () => {
    const answers: string[] = []
    const following = createDatagramGate(LIMITS, {
      pass: (datagram) => passed.push(datagram),
      send: (datagram) => sent.push(parse(datagram)),
      answered: (code) => answered.push(code),
      followUp: (p, from) => {
        answers.push(from)
        return p.options.some((o) => String(o.name) === 'Block2')
          ? generate({ code: '2.05', messageId: p.messageId, ack: true })
          : undefined
      },
    })
    following(request({ options: [{ name: 'Block2', value: Buffer.from([0x16]) }] }), peer())
    expect(sent.map((p) => p.code)).toEqual(['2.05'])
    expect(passed).toEqual([])
    const plain = request({ payload: Buffer.from('x') })
    following(plain, peer())
    expect(passed).toEqual([plain])
    expect(answers).toEqual(['127.0.0.1:40000', '127.0.0.1:40000'])
  })

  it('answers a NON request with a NON response under a new message id', () => {
    const datagram = request({ code: '0.03', confirmable: false })
    gate(datagram, peer())
    const answer = sent[0]!
    expect(answer).toMatchObject({ code: '4.05', ack: false, confirmable: false })
    expect(answer.messageId).not.toBe(parse(datagram).messageId)
    expect(answer.token).toEqual(parse(datagram).token)
  })
})
