// Who is calling the management API, and what its roles allow: the admin token is a global admin,
// API tokens and OIDC users act on one tenant with the roles they carry.
import type { Role } from '../registry/model.ts'

export type Principal =
  | {
      /** The admin token from configuration: admin on every tenant. */
      readonly kind: 'admin'
      readonly subject: string
      readonly tenant: null
      readonly roles: readonly Role[]
    }
  | {
      readonly kind: 'api-token' | 'oidc'
      /** The API token id, or the JWT `sub`. */
      readonly subject: string
      readonly tenant: string
      readonly roles: readonly Role[]
      /** When the credential stops being valid (ms since the epoch): JWT `exp`, API token expiry. */
      readonly expiresAt?: number | undefined
    }

/** Each role includes the ones after it: admin ⊇ manager ⊇ reader. */
const RANK: Record<Role, number> = { admin: 3, manager: 2, reader: 1 }

export const isGlobalAdmin = (p: Principal): boolean => p.kind === 'admin'

/** True when the principal may act on `tenant` with at least `role`. */
export function allows(p: Principal, tenant: string, role: Role): boolean {
  if (p.kind === 'admin') return true
  if (p.tenant !== tenant) return false
  return p.roles.some((r) => RANK[r] >= RANK[role])
}

/** The strongest role a principal holds, if any. */
export function topRole(p: Principal): Role | undefined {
  let top: Role | undefined
  for (const r of p.roles) if (top === undefined || RANK[r] > RANK[top]) top = r
  return top
}
