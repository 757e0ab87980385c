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

/**
 * SQLSTATEs that mean "not now" (PostgreSQL appendix A): the same statement can succeed later.
 * Class 08 connection exception; class 53 insufficient resources (disk full, out of memory, too
 * many connections); 57P01-57P05 admin or crash shutdown, cannot connect now (starting, in
 * recovery), database dropped, idle session timeout; 57014 a statement cancelled by
 * statement_timeout; 55006 object in use and 55P03 lock not available (lock_timeout, NOWAIT);
 * 40001 serialization failure and 40P01 deadlock, which a retry resolves.
 */
const NOT_NOW_CLASSES = ['08', '53', '57P']
const NOT_NOW_STATES = new Set(['57014', '55006', '55P03', '40001', '40P01'])
// 55000 (object not in prerequisite state) is mostly a statement's own fault; a database that
// refuses connections (ALLOW_CONNECTIONS false, a maintenance window) says so with this message.
const NOT_ACCEPTING_CONNECTIONS = /not currently accepting connections/i

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && SQLSTATE.test(code) ? code : undefined
}

function notNow(state: string, err: unknown): boolean {
  if (NOT_NOW_STATES.has(state) || NOT_NOW_CLASSES.some((c) => state.startsWith(c))) return true
  return state === '55000' && err instanceof Error && NOT_ACCEPTING_CONNECTIONS.test(err.message)
}

/**
 * True when the database could not be reached, went away or cannot serve the statement now, as
 * opposed to a statement that failed for good. Looks through AggregateErrors (one per address
 * tried) and causes.
 */
function isUnavailable(err: unknown, depth = 0): boolean {
  if (depth > 8 || err === null || typeof err !== 'object') return false
  if (err instanceof AggregateError && err.errors.some((e) => isUnavailable(e, depth + 1))) return true
  const code = (err as { code?: unknown }).code
  // Before the SQLSTATE test: EPIPE has the shape of one.
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true
  const state = sqlState(err)
  if (state !== undefined) return notNow(state, err)
  if (err instanceof Error && UNAVAILABLE_MESSAGE.test(err.message)) return true
  return err instanceof Error && err.cause !== undefined && isUnavailable(err.cause, depth + 1)
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
