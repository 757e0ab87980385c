// Roles from an OIDC token: the tenant names the claim that holds them (a plain name, a namespaced
// URI-like name, or a dotted path such as `realm_access.roles`); only Tributary's roles are kept.
import type { Role } from '../registry/model.ts'
import { ROLES } from '../registry/model.ts'

/** Reads the claim: an exact key first (namespaced claims contain dots), then a dotted path. */
export function claimValue(payload: Readonly<Record<string, unknown>>, claim: string): unknown {
  if (Object.hasOwn(payload, claim)) return payload[claim]
  let value: unknown = payload
  for (const part of claim.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, part)) {
      return undefined
    }
    value = (value as Record<string, unknown>)[part]
  }
  return value
}

/** A string (space- or comma-separated, as `scope` is) or an array of strings; unknown roles are dropped. */
export function rolesFromClaim(payload: Readonly<Record<string, unknown>>, claim: string): Role[] {
  const value = claimValue(payload, claim)
  const names =
    typeof value === 'string'
      ? value.split(/[\s,]+/)
      : Array.isArray(value)
        ? value.filter((v): v is string => typeof v === 'string')
        : []
  return ROLES.filter((role) => names.includes(role))
}
