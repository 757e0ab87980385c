// Page cursors of every list (the registry's and the API's): opaque to clients, base64url of the
// last id on a page. One reading, so that the API refuses a cursor that is not one (400) whatever
// the route does with it, and the stores read the same ones.
import { TributaryError } from '../errors.ts'

// Ids are at most a few hundred bytes; anything longer is not one of our cursors.
export const MAX_CURSOR_LENGTH = 1024

export const encodeCursor = (id: string): string => Buffer.from(id, 'utf8').toString('base64url')

/** The id a cursor stands for, or undefined when it is not a cursor this registry made. */
export function cursorId(cursor: string): string | undefined {
  if (cursor.length === 0 || cursor.length > MAX_CURSOR_LENGTH || !/^[A-Za-z0-9_-]+$/.test(cursor)) {
    return undefined
  }
  const id = Buffer.from(cursor, 'base64url').toString('utf8')
  // A round trip catches truncated or hand-made cursors and bytes that are not UTF-8.
  return id.length === 0 || encodeCursor(id) !== cursor ? undefined : id
}

export const isCursor = (cursor: string): boolean => cursorId(cursor) !== undefined

export const CURSOR_RULE = 'is not a page cursor; pass the `next` value of the previous page as given'

/** The id a cursor stands for, or null for the first page; REGISTRY_INVALID when it is not ours. */
export function decodeCursor(cursor: string | undefined): string | null {
  if (cursor === undefined) return null
  const id = cursorId(cursor)
  if (id === undefined) {
    throw new TributaryError('REGISTRY_INVALID', `the page cursor ${CURSOR_RULE}`)
  }
  return id
}
