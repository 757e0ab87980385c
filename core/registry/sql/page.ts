// Keyset pagination over ids: limits, and opaque cursors (base64url of the last id on a page).
import { TributaryError } from '../../errors.ts'
import type { ListOptions, Page } from '../model.ts'

export const DEFAULT_LIMIT = 100
export const MAX_LIMIT = 1000
// Ids are at most a few hundred bytes; anything longer is not one of our cursors.
const MAX_CURSOR_LENGTH = 1024

export function pageLimit(options: ListOptions | undefined): number {
  const limit = options?.limit ?? DEFAULT_LIMIT
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new TributaryError('REGISTRY_INVALID', `limit must be an integer from 1 to ${MAX_LIMIT}`, {
      details: { limit },
    })
  }
  return limit
}

export const encodeCursor = (id: string): string => Buffer.from(id, 'utf8').toString('base64url')

/** The id a cursor stands for, or null for the first page; REGISTRY_INVALID when it is not ours. */
export function decodeCursor(cursor: string | undefined): string | null {
  if (cursor === undefined) return null
  const invalid = () =>
    new TributaryError('REGISTRY_INVALID', 'the page cursor is invalid; use a `next` value as given')
  if (cursor.length === 0 || cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    throw invalid()
  }
  const id = Buffer.from(cursor, 'base64url').toString('utf8')
  // A round trip catches truncated or hand-made cursors and bytes that are not UTF-8.
  if (id.length === 0 || encodeCursor(id) !== cursor) throw invalid()
  return id
}

/** Builds a page from limit + 1 rows: the extra row only says that there is a next page. */
export function toPage<R, T>(
  rows: readonly R[],
  limit: number,
  map: (row: R) => T,
  idOf: (item: T) => string,
): Page<T> {
  const items = rows.slice(0, limit).map(map)
  const last = items.at(-1)
  return { items, next: rows.length > limit && last !== undefined ? encodeCursor(idOf(last)) : null }
}
