// The tiny SQL client both engines implement (PGlite, and a `pg` pool), and the translation of
// engine errors into the registry's TributaryError codes.
import { TributaryError } from '../../errors.ts'

/** One statement with positional parameters ($1, $2 ...). */
export interface SqlClient {
  query<T>(sql: string, params?: readonly unknown[]): Promise<{ rows: T[] }>
  /** Several statements without parameters (migrations). */
  exec(sql: string): Promise<void>
}

export interface SqlDatabase extends SqlClient {
  /** Runs fn in one transaction: COMMIT when it resolves, ROLLBACK when it throws. */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>
  close(): Promise<void>
}

/** What a unique or foreign key violation means to a caller, by constraint name. */
export type ConstraintMessages = Readonly<Record<string, string>>

const SQLSTATE = /^[0-9A-Z]{5}$/
// Network errors of Node and the messages `pg` and PGlite use when no connection can be had.
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
])
const UNAVAILABLE_MESSAGE =
  /connection terminated|timeout exceeded when trying to connect|connection error|cannot use a pool after calling end|client was closed|pglite is closed|not connected/i

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && SQLSTATE.test(code) ? code : undefined
}

/** True when the database could not be reached (or went away), not when a statement failed. */
function isUnavailable(err: unknown): boolean {
  if (err instanceof AggregateError) return err.errors.some(isUnavailable)
  const state = sqlState(err)
  if (state !== undefined) {
    // Class 08 connection exception, 57P0x shutdown, 53300 too many connections, and the
    // transient conflicts (serialization failure, deadlock) that a retry resolves.
    return (
      state.startsWith('08') ||
      state.startsWith('57P') ||
      state === '53300' ||
      state === '40001' ||
      state === '40P01'
    )
  }
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true
  return err instanceof Error && UNAVAILABLE_MESSAGE.test(err.message)
}

/**
 * Turns an engine error into a TributaryError (unique violation → REGISTRY_CONFLICT, foreign key
 * violation → REGISTRY_NOT_FOUND, bad value → REGISTRY_INVALID, no connection →
 * REGISTRY_UNAVAILABLE); TributaryErrors and anything unknown pass through unchanged.
 */
export function translateError(err: unknown, constraints: ConstraintMessages): unknown {
  if (err instanceof TributaryError) return err
  if (isUnavailable(err)) {
    const reason = err instanceof Error ? err.message : String(err)
    return new TributaryError('REGISTRY_UNAVAILABLE', `the registry database is unavailable: ${reason}`, {
      cause: err,
    })
  }
  const state = sqlState(err)
  if (state === undefined) return err
  const constraint = (err as { constraint?: unknown }).constraint
  const known = typeof constraint === 'string' ? constraints[constraint] : undefined
  if (state === '23505') {
    return new TributaryError('REGISTRY_CONFLICT', known ?? 'the resource exists already', {
      cause: err,
      details: { constraint },
    })
  }
  if (state === '23503') {
    return new TributaryError('REGISTRY_NOT_FOUND', known ?? 'a resource it refers to does not exist', {
      cause: err,
      details: { constraint },
    })
  }
  // Class 22 data exception (a malformed timestamp, a value out of range) and 23514 check violation.
  if (state.startsWith('22') || state === '23514' || state === '23502') {
    const reason = err instanceof Error ? err.message : String(err)
    return new TributaryError('REGISTRY_INVALID', `the registry refused a value: ${reason}`, { cause: err })
  }
  return err
}
