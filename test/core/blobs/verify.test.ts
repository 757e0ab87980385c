// The verifier every put streams through: it never lets the last chunk go before the end checks out.
import { createHash } from 'node:crypto'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, expect, it } from 'vitest'
import { createVerifier } from '../../../core/blobs/verify.ts'

async function run(
  chunks: string[],
  size: number,
  sha256?: string,
): Promise<{ passed: string; err?: unknown }> {
  let passed = ''
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      passed += chunk.toString()
      callback()
    },
  })
  try {
    await pipeline(Readable.from(chunks.map((c) => Buffer.from(c))), createVerifier(size, sha256), sink)
    return { passed }
  } catch (err) {
    return { passed, err }
  }
}

const hex = (text: string): string => createHash('sha256').update(text).digest('hex')

describe('createVerifier', () => {
  it('passes a body of the declared length and SHA-256', async () => {
    expect(await run(['ab', 'cd'], 4, hex('abcd'))).toEqual({ passed: 'abcd' })
  })

  it('holds back the last chunk of a body that fails at the end', async () => {
    const short = await run(['ab', 'cd'], 5)
    expect(short.passed).toBe('ab')
    expect(short.err).toMatchObject({ code: 'BLOB_INTEGRITY' })
    const mismatch = await run(['ab', 'cd'], 4, hex('abce'))
    expect(mismatch.passed).toBe('ab')
    expect(mismatch.err).toMatchObject({ code: 'BLOB_INTEGRITY' })
  })

  it('stops a body as soon as it passes the declared length', async () => {
    const long = await run(['ab', 'cd', 'ef'], 3)
    expect(long.passed).toBe('')
    expect(long.err).toMatchObject({ code: 'BLOB_INTEGRITY' })
  })

  it('refuses a malformed declaration', () => {
    expect(() => createVerifier(-1, undefined)).toThrow(/size/)
    expect(() => createVerifier(1, 'ABC')).toThrow(/sha256/)
  })
})
