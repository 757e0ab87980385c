// How every registry statement runs: reads with engine errors translated, and writes in one
// transaction that appends the write's RegistryChange to the outbox before it commits.
import { TributaryError } from '../../errors.ts'
import type { RegistryChange } from '../model.ts'
import type { ConstraintMessages, SqlClient, SqlDatabase } from './client.ts'
import { translateError } from './client.ts'

/** Advisory lock that orders outbox appends (see appendChange). */
export const OUTBOX_LOCK = 7_151_227_302

export async function read<T>(fn: () => Promise<T>, constraints: ConstraintMessages = {}): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    throw translateError(err, constraints)
  }
}

/**
 * Appends a change to the outbox. The advisory lock, held until COMMIT, makes outbox rows commit in
 * seq order: a relay that has seen seq N has seen every committed row below N, so marking "up to N
 * published" can never skip a row whose transaction was still open. Registry writes are rare
 * (management calls), so serializing their last step costs nothing that matters.
 */
async function appendChange(tx: SqlClient, change: RegistryChange): Promise<void> {
  await tx.query(
    // The lock is taken in the FROM clause, so before nextval() gives this row its seq.
    'INSERT INTO registry_outbox (change) SELECT $1::jsonb FROM (SELECT pg_advisory_xact_lock($2)) AS ordered',
    [JSON.stringify(change), OUTBOX_LOCK],
  )
}

/** Runs a write and records its change in the same transaction; nothing is kept when either fails. */
export async function write<T>(
  db: SqlDatabase,
  constraints: ConstraintMessages,
  fn: (tx: SqlClient) => Promise<{ readonly result: T; readonly change: RegistryChange }>,
): Promise<T> {
  return read(
    () =>
      db.transaction(async (tx) => {
        const { result, change } = await fn(tx)
        await appendChange(tx, change)
        return result
      }),
    constraints,
  )
}

/**
 * Explains why an UPDATE or DELETE guarded by `version = ifVersion` touched no row: the resource
 * is missing (404) or has another version (412, with the current one for the caller to retry with).
 */
export async function noRowWritten(
  tx: SqlClient,
  current: { readonly sql: string; readonly params: readonly unknown[] },
  what: string,
  ifVersion: number | undefined,
): Promise<never> {
  const found = await tx.query<{ version: number }>(current.sql, current.params)
  const row = found.rows[0]
  if (row === undefined) throw new TributaryError('REGISTRY_NOT_FOUND', `${what} does not exist`)
  throw new TributaryError(
    'REGISTRY_VERSION_MISMATCH',
    `${what} is at version ${row.version}, not ${String(ifVersion)}; read it again and retry`,
    { details: { current: row.version } },
  )
}

/** The ifVersion of a precondition as a statement parameter (null: no check). */
export function expectedVersion(ifVersion: number | undefined): number | null {
  if (ifVersion === undefined) return null
  if (!Number.isInteger(ifVersion) || ifVersion < 1) {
    throw new TributaryError('REGISTRY_INVALID', 'ifVersion must be a positive integer', {
      details: { ifVersion },
    })
  }
  return ifVersion
}

export const now = (): string => new Date().toISOString()

/** "tenant acme", "device d1 of tenant acme": how messages name a resource. */
export const tenantName = (tenant: string): string => `tenant ${JSON.stringify(tenant)}`
export const deviceName = (tenant: string, device: string): string =>
  `device ${JSON.stringify(device)} of ${tenantName(tenant)}`

/** The row an INSERT ... RETURNING always gives. */
export function inserted<T>(rows: readonly T[]): T {
  const row = rows[0]
  if (row === undefined) throw new Error('INSERT ... RETURNING returned no row')
  return row
}
