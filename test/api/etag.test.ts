// If-Match parsing: one strong ETag or *, malformed values are 400, unmatchable ones 412.
import { describe, expect, it } from 'vitest'
import { etag, precondition } from '../../api/etag.ts'
import { isTributaryError } from '../../core/errors.ts'

const codeOf = (header: string): string | undefined => {
  try {
    precondition(header)
    return undefined
  } catch (err) {
    return isTributaryError(err) ? err.code : 'other'
  }
}

describe('If-Match', () => {
  it('reads a strong version tag, and none for * or no header', () => {
    expect(etag(7)).toBe('"7"')
    expect(precondition('"7"')).toEqual({ ifVersion: 7 })
    expect(precondition(' "12" ')).toEqual({ ifVersion: 12 })
    expect(precondition('*')).toBeUndefined()
    expect(precondition(undefined)).toBeUndefined()
  })

  it('refuses malformed values with REQUEST_INVALID', () => {
    for (const header of ['7', '"7', '7"', '"1", "2"', 'W/7', '', '"a b"'])
      expect(codeOf(header), header).toBe('REQUEST_INVALID')
  })

  it('fails weak and non-version tags as a version mismatch (they can never match)', () => {
    for (const header of ['W/"7"', '"abc"', '""', `"${'9'.repeat(16)}"`])
      expect(codeOf(header), header).toBe('REGISTRY_VERSION_MISMATCH')
  })
})
