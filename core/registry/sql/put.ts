// Create-or-replace writes (channel schemas, route tables) under a precondition: ifVersion 0 means
// "only if there is none", n means "only if it is at version n".
import { TributaryError } from '../../errors.ts'
import type { Precondition } from '../store.ts'
import type { SqlClient } from './client.ts'
import { tenantName } from './write.ts'

/** The ifVersion of a create-or-replace as a statement parameter (null: no check; 0 allowed). */
export function putVersion(pre: Precondition | undefined): number | null {
  const ifVersion = pre?.ifVersion
  if (ifVersion === undefined) return null
  if (!Number.isSafeInteger(ifVersion) || ifVersion < 0) {
    throw new TributaryError('REGISTRY_INVALID', 'ifVersion must be a whole number ≥ 0', {
      details: { ifVersion },
    })
  }
  return ifVersion
}

/**
 * Locks the tenant row for the rest of the transaction, so that the writes of one tenant's
 * resource run one at a time (the existence check and the count below cannot race); 404 when the
 * tenant does not exist. NO KEY UPDATE leaves foreign key checks of other writers unblocked.
 */
export async function lockTenant(tx: SqlClient, tenant: string): Promise<void> {
  const { rows } = await tx.query('SELECT 1 FROM tenants WHERE id = $1 FOR NO KEY UPDATE', [tenant])
  if (rows.length === 0)
    throw new TributaryError('REGISTRY_NOT_FOUND', `${tenantName(tenant)} does not exist`)
}

/** 412 unless the current version (0: none) is the one the precondition asks for. */
export function checkPutVersion(current: number, ifVersion: number | null, what: string): void {
  if (ifVersion === null || ifVersion === current) return
  const message =
    current === 0
      ? `${what} does not exist, so it is not at version ${ifVersion}`
      : ifVersion === 0
        ? `${what} exists already (version ${current}); read it and replace it with its version`
        : `${what} is at version ${current}, not ${ifVersion}; read it again and retry`
  throw new TributaryError('REGISTRY_VERSION_MISMATCH', message, { details: { current } })
}
