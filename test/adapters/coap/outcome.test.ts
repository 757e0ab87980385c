// Outcomes → CoAP response codes, Max-Age and Size1, and the diagnostic payload's bound.
import { describe, expect, it } from 'vitest'
import type { Outcome } from '../../../adapters/adapter.ts'
import {
  CODES,
  MAX_DETAIL_BYTES,
  diagnostic,
  replyFor,
  retrySeconds,
} from '../../../adapters/coap/outcome.ts'

const rejected = (
  reason: 'invalid' | 'unauthenticated' | 'forbidden' | 'too-large',
  detail = 'why',
): Outcome => ({
  kind: 'rejected',
  reason,
  detail,
})

describe('replyFor', () => {
  it('answers 2.04 Changed for an accepted message, with no payload', () => {
    expect(replyFor({ kind: 'accepted' }, 100)).toEqual({ code: '2.04' })
  })

  it('maps each refusal to its 4.xx code with the detail as diagnostic payload', () => {
    expect(replyFor(rejected('invalid'), 100)).toEqual({ code: '4.00', detail: 'why' })
    expect(replyFor(rejected('unauthenticated'), 100)).toEqual({ code: '4.01', detail: 'why' })
    expect(replyFor(rejected('forbidden'), 100)).toEqual({ code: '4.03', detail: 'why' })
    expect(replyFor(rejected('too-large'), 100)).toEqual({ code: '4.13', detail: 'why', size1: 100 })
  })

  it('says when to retry with Max-Age: 4.29 for the rate (RFC 8516), 5.03 for the bus', () => {
    expect(
      replyFor({ kind: 'rejected', reason: 'rate-limited', detail: 'slow down', retryAfterMs: 1_200 }, 1),
    ).toEqual({ code: '4.29', detail: 'slow down', maxAge: 2 })
    expect(
      replyFor({ kind: 'rejected', reason: 'rate-limited', detail: 'x', retryAfterMs: 3 }, 1),
    ).toMatchObject({
      maxAge: 1,
    })
    expect(replyFor({ kind: 'unavailable', detail: 'bus down' }, 1)).toEqual({
      code: CODES.unavailable,
      detail: 'bus down',
      maxAge: 5,
    })
    expect(replyFor({ kind: 'unavailable', detail: 'x', retryAfterMs: 30_000 }, 1)).toMatchObject({
      maxAge: 30,
    })
  })

  it('rounds retry times up to whole seconds, never below one', () => {
    expect(retrySeconds(0)).toBe(1)
    expect(retrySeconds(1_001)).toBe(2)
    expect(retrySeconds(undefined)).toBe(5)
    expect(retrySeconds(undefined, 1)).toBe(1)
  })
})

describe('diagnostic', () => {
  it('is the detail in UTF-8, absent when there is none', () => {
    expect(diagnostic('bad channel')?.toString()).toBe('bad channel')
    expect(diagnostic(undefined)).toBeUndefined()
    expect(diagnostic('')).toBeUndefined()
  })

  it('is cut to the bound on a character boundary', () => {
    const long = diagnostic('é'.repeat(300))!
    expect(long.length).toBeLessThanOrEqual(MAX_DETAIL_BYTES)
    expect(long.length).toBe(MAX_DETAIL_BYTES)
    expect(long.toString('utf8')).toBe('é'.repeat(MAX_DETAIL_BYTES / 2))
    const odd = diagnostic(`x${'é'.repeat(300)}`)!
    expect(odd.length).toBe(MAX_DETAIL_BYTES - 1)
    expect(odd.toString('utf8')).not.toContain('\ufffd')
  })
})
