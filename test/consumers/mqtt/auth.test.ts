// CONNECT authentication of application clients against a fake bearer authenticator and tenant
// lookup (the ports): which credentials get in, and which CONNACK code the others get.
import { describe, expect, it } from 'vitest'
import type { AuthOutcome, BearerAuthenticator } from '../../../core/auth/bearer.ts'
import type { Principal } from '../../../core/auth/principal.ts'
import { TributaryError } from '../../../core/errors.ts'
import type { Tenant } from '../../../core/registry/model.ts'
import { connackError, connackFor, createAppAuthenticator } from '../../../consumers/mqtt/auth.ts'

const token = (tenant: string, role: 'admin' | 'manager' | 'reader'): Principal => ({
  kind: 'api-token',
  subject: `tok-${tenant}-${role}`,
  tenant,
  roles: [role],
  expiresAt: 1_900_000_000_000,
})
const admin: Principal = { kind: 'admin', subject: 'admin-token', tenant: null, roles: ['admin'] }

/** Credentials by password: what the bearer authenticator answers for them. */
const outcomes: Record<string, AuthOutcome> = {
  'tat_acme-reader': { kind: 'authenticated', principal: token('acme', 'reader') },
  'tat_acme-manager': { kind: 'authenticated', principal: token('acme', 'manager') },
  'tat_other-reader': { kind: 'authenticated', principal: token('other', 'reader') },
  'no-roles': { kind: 'authenticated', principal: { ...token('acme', 'reader'), roles: [] } },
  admin: { kind: 'authenticated', principal: admin },
  'jwt-foreign': { kind: 'foreign' },
}

const calls: Array<{ token: string | undefined; tenant: string | undefined }> = []
const bearer: BearerAuthenticator = {
  authenticate(password, tenant) {
    calls.push({ token: password, tenant })
    if (password === 'down') return Promise.reject(new TributaryError('AUTH_UNAVAILABLE', 'registry down'))
    return Promise.resolve(outcomes[password ?? ''] ?? { kind: 'rejected', reason: 'unknown' })
  },
}
const tenants: Record<string, Partial<Tenant>> = {
  acme: { enabled: true },
  other: { enabled: true },
  off: { enabled: false },
}
const authenticate = createAppAuthenticator({
  bearer,
  tenant: (id) => Promise.resolve(tenants[id] as Tenant | undefined),
})
const login = (username: string | undefined, password: string | undefined) =>
  authenticate(username, password === undefined ? undefined : Buffer.from(password))

describe('application CONNECT authentication', () => {
  it('accepts a reader (or stronger) credential of the tenant named as user name', async () => {
    expect(await login('acme', 'tat_acme-reader')).toEqual({
      kind: 'accepted',
      tenant: 'acme',
      subject: 'tok-acme-reader',
      canCommand: false,
      expiresAt: 1_900_000_000_000,
    })
    expect(await login('acme', 'tat_acme-manager')).toMatchObject({
      kind: 'accepted',
      tenant: 'acme',
      canCommand: true,
    })
    expect(calls.at(-1)).toEqual({ token: 'tat_acme-manager', tenant: 'acme' })
  })

  it('accepts the admin token for any existing, enabled tenant', async () => {
    expect(await login('other', 'admin')).toEqual({
      kind: 'accepted',
      tenant: 'other',
      subject: 'admin-token',
      canCommand: true,
      expiresAt: undefined,
    })
    expect(await login('nowhere', 'admin')).toEqual({ kind: 'refused', reason: 'not-authorized' })
    expect(await login('off', 'admin')).toEqual({ kind: 'refused', reason: 'not-authorized' })
  })

  it('refuses another tenant’s credential, a foreign JWT and a principal without roles as not authorized', async () => {
    expect(await login('acme', 'tat_other-reader')).toEqual({ kind: 'refused', reason: 'not-authorized' })
    expect(await login('acme', 'jwt-foreign')).toEqual({ kind: 'refused', reason: 'not-authorized' })
    expect(await login('acme', 'no-roles')).toEqual({ kind: 'refused', reason: 'not-authorized' })
  })

  it('refuses missing and unknown credentials, and user names that are no tenant id, as bad credentials', async () => {
    const before = calls.length
    expect(await login(undefined, 'tat_acme-reader')).toEqual({
      kind: 'refused',
      reason: 'missing-credentials',
    })
    expect(await login('acme', undefined)).toEqual({ kind: 'refused', reason: 'missing-credentials' })
    expect(await login('', 'x')).toEqual({ kind: 'refused', reason: 'missing-credentials' })
    expect(await login('acme', '')).toEqual({ kind: 'refused', reason: 'missing-credentials' })
    expect(await login('Not A Tenant', 'tat_acme-reader')).toEqual({
      kind: 'refused',
      reason: 'bad-credentials',
    })
    expect(calls.length).toBe(before) // none of these reached the authenticator
    expect(await login('acme', 'tat_wrong')).toEqual({ kind: 'refused', reason: 'bad-credentials' })
  })

  it('lets an unavailable registry or issuer surface as an error (CONNACK 3)', async () => {
    await expect(login('acme', 'down')).rejects.toMatchObject({ code: 'AUTH_UNAVAILABLE' })
    expect(connackFor('unavailable')).toBe(3)
  })

  it('maps refusals to MQTT 3.1.1 CONNACK codes', () => {
    expect(connackFor('missing-credentials')).toBe(4)
    expect(connackFor('bad-credentials')).toBe(4)
    expect(connackFor('not-authorized')).toBe(5)
    expect(connackFor('connection-limit')).toBe(5)
    expect(connackFor('shutting-down')).toBe(3)
    expect(connackError('not-authorized')).toMatchObject({ returnCode: 5 })
  })
})
