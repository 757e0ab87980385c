// Opaque ids (file ids): URL-safe, and never taken for a command-line option. A file id that began
// with '-' (one in 64) could not follow `tributary files get` without `--`.
import { expect, it } from 'vitest'
import { opaqueId } from '../../../core/events/ids.ts'

it('draws again when the id would start with "-"', () => {
  // 0xf8 = 0b111110.. encodes to '-' as the first base64url character.
  const draws = [Buffer.alloc(16, 0xf8), Buffer.alloc(16, 0x01)]
  const random = (size: number): Buffer => {
    const next = draws.shift()
    if (next === undefined || next.length !== size) throw new Error('unexpected draw')
    return next
  }
  expect(opaqueId(16, random)).toBe(Buffer.alloc(16, 0x01).toString('base64url'))
  expect(draws).toEqual([])
})

it('gives 22 URL-safe characters for 16 bytes, none of them a leading "-"', () => {
  for (let i = 0; i < 500; i++) expect(opaqueId()).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/)
})
