// Roles from OIDC claims: plain, namespaced and dotted claim names, strings and arrays, and only
// Tributary's roles kept.
import { describe, expect, it } from 'vitest'
import { allows, topRole } from '../../../core/auth/principal.ts'
import type { Principal } from '../../../core/auth/principal.ts'
import { claimValue, rolesFromClaim } from '../../../core/auth/roles.ts'

describe('roles from a claim', () => {
  it('reads a plain claim as an array or a space- or comma-separated string', () => {
    expect(rolesFromClaim({ roles: ['reader', 'admin', 'owner'] }, 'roles')).toEqual(['admin', 'reader'])
    expect(rolesFromClaim({ roles: 'manager reader' }, 'roles')).toEqual(['manager', 'reader'])
    expect(rolesFromClaim({ roles: 'manager,admin' }, 'roles')).toEqual(['admin', 'manager'])
  })

  it('follows a dotted path, and prefers an exact (namespaced) claim name', () => {
    const payload = {
      realm_access: { roles: ['manager'] },
      'https://example.com/roles': ['reader'],
      'a.b': 'admin',
      a: { b: 'reader' },
    }
    expect(rolesFromClaim(payload, 'realm_access.roles')).toEqual(['manager'])
    expect(rolesFromClaim(payload, 'https://example.com/roles')).toEqual(['reader'])
    expect(rolesFromClaim(payload, 'a.b')).toEqual(['admin'])
  })

  it('finds nothing in missing, odd or inherited places', () => {
    expect(rolesFromClaim({}, 'roles')).toEqual([])
    expect(rolesFromClaim({ roles: 42 }, 'roles')).toEqual([])
    expect(rolesFromClaim({ roles: [1, null, 'Admin'] }, 'roles')).toEqual([])
    expect(claimValue({ realm_access: ['x'] }, 'realm_access.roles')).toBeUndefined()
    expect(claimValue({}, 'constructor.name')).toBeUndefined()
    expect(claimValue({ a: null }, 'a.b')).toBeUndefined()
  })
})

describe('what roles allow', () => {
  const user = (roles: Principal['roles']): Principal => ({
    kind: 'oidc',
    subject: 's',
    tenant: 'acme',
    roles,
  })

  it('orders admin over manager over reader, on the own tenant only', () => {
    expect(allows(user(['admin']), 'acme', 'manager')).toBe(true)
    expect(allows(user(['manager']), 'acme', 'reader')).toBe(true)
    expect(allows(user(['manager']), 'acme', 'admin')).toBe(false)
    expect(allows(user(['reader']), 'acme', 'manager')).toBe(false)
    expect(allows(user([]), 'acme', 'reader')).toBe(false)
    expect(allows(user(['admin']), 'other', 'reader')).toBe(false)
    expect(
      allows({ kind: 'admin', subject: 'admin-token', tenant: null, roles: ['admin'] }, 'any', 'admin'),
    ).toBe(true)
    expect(topRole(user(['reader', 'admin', 'manager']))).toBe('admin')
    expect(topRole(user([]))).toBeUndefined()
  })
})
