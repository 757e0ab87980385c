// If-Match parsing: one strong ETag or *, malformed values are 400, unmatchable ones 412.
import { describe, expect, it } from 'vitest'
import { etag, existingPrecondition, precondition } from '../../api/etag.ts'
import { TributaryError, isTributaryError } from '../../core/errors.ts'

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

describe('existingPrecondition', () => {
  const missing = async (): Promise<{ version: number }> => {
    throw new TributaryError('REGISTRY_NOT_FOUND', 'gone')
  }

  it('turns If-Match: * into the current version, and leaves other preconditions as they are', async () => {
    expect(await existingPrecondition('exists', async () => ({ version: 4 }), 'none')).toEqual({
      ifVersion: 4,
    })
    expect(await existingPrecondition({ ifVersion: 2 }, missing, 'none')).toEqual({ ifVersion: 2 })
    expect(await existingPrecondition(undefined, missing, 'none')).toBeUndefined()
  })

  it('is 412 naming what is missing when there is nothing to replace; other failures pass through', async () => {
    await expect(existingPrecondition('exists', missing, 'no rule r')).rejects.toMatchObject({
      code: 'REGISTRY_VERSION_MISMATCH',
      message: 'no rule r',
    })
    const down = async (): Promise<{ version: number }> => {
      throw new TributaryError('REGISTRY_UNAVAILABLE', 'database away')
    }
    await expect(existingPrecondition('exists', down, 'no rule r')).rejects.toMatchObject({
      code: 'REGISTRY_UNAVAILABLE',
    })
  })
})
