// Keyset pagination over ids: limits, and opaque cursors (core/registry/cursor.ts).
import { TributaryError } from '../../errors.ts'
import { encodeCursor } from '../cursor.ts'
import type { ListOptions, Page } from '../model.ts'

export { decodeCursor, encodeCursor } from '../cursor.ts'

export const DEFAULT_LIMIT = 100
export const MAX_LIMIT = 1000

export function pageLimit(options: ListOptions | undefined): number {
  const limit = options?.limit ?? DEFAULT_LIMIT
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
    throw new TributaryError('REGISTRY_INVALID', `limit must be an integer from 1 to ${MAX_LIMIT}`, {
      details: { limit },
    })
  }
  return limit
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
