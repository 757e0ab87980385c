// ETag and If-Match: the resource version is its strong ETag `"<version>"`; If-Match carries one
// ETag or `*` (RFC 9110 §13.1.1, strong comparison).
import { TributaryError, isTributaryError } from '../core/errors.ts'
import type { Precondition } from '../core/registry/store.ts'

export const etag = (version: number): string => `"${version}"`

const ENTITY_TAG = /^(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"$/

/**
 * The precondition an If-Match header asks for. Undefined header or `*`: none (the resource must
 * exist, which every change checks anyway). Malformed: 400. A weak or non-numeric tag can never
 * match a version: 412 straight away, before anything is written.
 */
export function precondition(header: string | undefined): Precondition | undefined {
  if (header === undefined) return undefined
  const value = header.trim()
  if (value === '*') return undefined
  const match = ENTITY_TAG.exec(value)
  if (match === null) {
    throw new TributaryError(
      'REQUEST_INVALID',
      `If-Match must be one ETag such as "3" (quotes included) or *, got ${JSON.stringify(header.slice(0, 64))}`,
    )
  }
  const [, weak, tag = ''] = match
  if (weak !== undefined || !/^\d{1,15}$/.test(tag)) {
    throw new TributaryError(
      'REGISTRY_VERSION_MISMATCH',
      `If-Match ${value.slice(0, 64)} does not match the current version`,
    )
  }
  return { ifVersion: Number(tag) }
}

/**
 * The precondition of a create-or-replace (PUT): `If-None-Match: *` creates only (ifVersion 0),
 * `If-Match: "<n>"` replaces version n only, `If-Match: *` replaces only what exists ('exists').
 */
export function putPrecondition(
  ifMatch: string | undefined,
  ifNoneMatch: string | undefined,
): Precondition | 'exists' | undefined {
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() !== '*') {
      throw new TributaryError('REQUEST_INVALID', 'If-None-Match takes only * here (create only)')
    }
    if (ifMatch !== undefined) {
      throw new TributaryError('REQUEST_INVALID', 'send either If-Match or If-None-Match, not both')
    }
    return { ifVersion: 0 }
  }
  if (ifMatch?.trim() === '*') return 'exists'
  return precondition(ifMatch)
}

/**
 * The precondition a PUT of a resource that may be missing is written under: `If-Match: *` is the
 * version `read` finds (RFC 9110 §13.1.1: replace only what exists), 412 saying `missing` when there
 * is none; anything else as putPrecondition said.
 */
export async function existingPrecondition(
  asked: Precondition | 'exists' | undefined,
  read: () => Promise<{ readonly version: number }>,
  missing: string,
): Promise<Precondition | undefined> {
  if (asked !== 'exists') return asked
  const current = await read().catch((err: unknown) => {
    if (!isTributaryError(err, 'REGISTRY_NOT_FOUND')) throw err
    throw new TributaryError('REGISTRY_VERSION_MISMATCH', missing)
  })
  return { ifVersion: current.version }
}
