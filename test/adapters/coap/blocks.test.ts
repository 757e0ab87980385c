// Later blocks of a command answered block-wise (RFC 7959 Block2): answered from what was kept for
// the peer and request, refused with 4.08 when nothing is kept (never a new message), and forgotten
// after a while.
import { generate, parse } from 'coap-packet'
import type { Option } from 'coap-packet'
import { describe, expect, it } from 'vitest'
import {
  BLOCK_SIZE,
  KEEP_MS,
  block2Value,
  createResponseBlocks,
  libraryEtag,
} from '../../../adapters/coap/blocks.ts'

const path = [Buffer.from('v1'), Buffer.from('state')]
const query = [Buffer.from('ct=30')]

function followUp(num: number, szx = 6, extra: Option[] = [], confirmable = true) {
  return parse(
    generate({
      code: '0.02',
      messageId: 500 + num,
      token: Buffer.from([num]),
      confirmable,
      options: [
        ...path.map((value) => ({ name: 'Uri-Path' as const, value })),
        ...query.map((value) => ({ name: 'Uri-Query' as const, value })),
        { name: 'Block2', value: block2Value(num, false, szx) },
        ...extra,
      ],
    }),
  )
}

const optionOf = (p: ReturnType<typeof parse>, name: string) =>
  p.options.find((o) => String(o.name) === name)?.value

describe('response blocks', () => {
  it('answers later blocks of a kept body with its options, ETag and Block2, piggybacked', () => {
    let now = 0
    const blocks = createResponseBlocks(() => now)
    const body = Buffer.from(Array.from({ length: 2 * BLOCK_SIZE + 100 }, (_, i) => i % 251))
    const location = { name: 'Location-Query' as const, value: Buffer.from('command=big') }
    blocks.keep('10.0.0.1:5000', { uriPath: path, uriQuery: query }, body, [location])
    const second = parse(blocks.answer(followUp(1), '10.0.0.1:5000')!)
    expect(second).toMatchObject({ code: '2.05', ack: true, messageId: 501 })
    expect(second.token).toEqual(Buffer.from([1]))
    expect(second.payload).toEqual(body.subarray(BLOCK_SIZE, 2 * BLOCK_SIZE))
    expect(optionOf(second, 'Block2')).toEqual(block2Value(1, true, 6))
    expect(optionOf(second, 'ETag')).toEqual(libraryEtag(body))
    expect(optionOf(second, 'Location-Query')).toEqual(Buffer.from('command=big'))
    const last = parse(blocks.answer(followUp(2), '10.0.0.1:5000')!)
    expect(last.payload).toEqual(body.subarray(2 * BLOCK_SIZE))
    expect(optionOf(last, 'Block2')).toEqual(block2Value(2, false, 6))
    // A smaller block size asked for is served at that size.
    const small = parse(blocks.answer(followUp(3, 2), '10.0.0.1:5000')!)
    expect(small.payload).toEqual(body.subarray(3 * 64, 4 * 64))
    // Past the end: 4.02.
    expect(parse(blocks.answer(followUp(9), '10.0.0.1:5000')!).code).toBe('4.02')
    // Another peer, or later than KEEP_MS: 4.08, never passed on as a new request.
    expect(parse(blocks.answer(followUp(1), '10.0.0.2:5000')!).code).toBe('4.08')
    now = KEEP_MS
    expect(parse(blocks.answer(followUp(1), '10.0.0.1:5000')!).code).toBe('4.08')
  })

  it('leaves requests that are no follow-up alone', () => {
    const blocks = createResponseBlocks()
    expect(blocks.answer(followUp(0), 'p')).toBeUndefined()
    const plain = parse(
      generate({ code: '0.02', messageId: 1, options: [{ name: 'Uri-Path', value: Buffer.from('v1') }] }),
    )
    expect(blocks.answer(plain, 'p')).toBeUndefined()
  })

  it("computes the library's ETag", () => {
    expect(libraryEtag(Buffer.from([1, 2, 4, 8, 16]))).toEqual(Buffer.from([1 ^ 4 ^ 16, 2 ^ 8]))
  })
})
