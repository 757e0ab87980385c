// The bearer authenticator: the admin token, API tokens, and OIDC tokens in a tenant's context.
import { SignJWT, decodeJwt, exportJWK, generateKeyPair } from 'jose'
import { describe, expect, it } from 'vitest'
import type { CallerLookups } from '../../../core/auth/bearer.ts'
import { MAX_TOKEN_LENGTH, createBearerAuthenticator } from '../../../core/auth/bearer.ts'
import { createOidcVerifier } from '../../../core/auth/oidc.ts'
import { silentLogger } from '../../../core/log.ts'
import type { Tenant } from '../../../core/registry/model.ts'

const ADMIN = 'the-admin-token-0123456789'

async function setup() {
  const { publicKey, privateKey } = await generateKeyPair('ES256')
  const tenant = {
    id: 'acme',
    enabled: true,
    oidc: {
      issuer: 'https://id',
      audience: 'api',
      jwks: [{ ...(await exportJWK(publicKey)), kid: 'k' }],
      rolesClaim: 'roles',
    },
  } as unknown as Tenant
  const asked: string[] = []
  const lookups: CallerLookups = {
    apiToken: (token) => {
      asked.push(token)
      return Promise.resolve(
        token === 'tat_good' ? { tenant: 'acme', role: 'manager', id: 'tok-1' } : undefined,
      )
    },
    tenant: (id) =>
      Promise.resolve(
        id === 'acme' ? tenant : id === 'plain' ? { ...tenant, id: 'plain', oidc: null } : undefined,
      ),
  }
  const auth = createBearerAuthenticator({
    adminToken: ADMIN,
    lookups,
    oidc: createOidcVerifier({ jwksCacheMs: 1000, log: silentLogger }),
  })
  const jwt = await new SignJWT({ roles: 'reader' })
    .setProtectedHeader({ alg: 'ES256', kid: 'k' })
    .setIssuer('https://id')
    .setAudience('api')
    .setSubject('bob')
    .setExpirationTime('1m')
    .sign(privateKey)
  return { auth, asked, jwt }
}

describe('bearer authentication', () => {
  it('knows the admin token exactly', async () => {
    const { auth } = await setup()
    expect(await auth.authenticate(ADMIN, undefined)).toMatchObject({
      kind: 'authenticated',
      principal: { kind: 'admin', tenant: null },
    })
    for (const near of [`${ADMIN}x`, ADMIN.slice(0, -1), ADMIN.toUpperCase()]) {
      expect((await auth.authenticate(near, undefined)).kind).toBe('rejected')
    }
    const none = createBearerAuthenticator({
      lookups: { apiToken: async () => undefined, tenant: async () => undefined },
      oidc: createOidcVerifier({ jwksCacheMs: 1000, log: silentLogger }),
    })
    expect((await none.authenticate('', undefined)).kind).toBe('rejected')
  })

  it('looks API tokens up and scopes them to their tenant and role', async () => {
    const { auth, asked } = await setup()
    expect(await auth.authenticate('tat_good', 'other')).toEqual({
      kind: 'authenticated',
      principal: { kind: 'api-token', subject: 'tok-1', tenant: 'acme', roles: ['manager'] },
    })
    expect((await auth.authenticate('tat_bad', undefined)).kind).toBe('rejected')
    expect((await auth.authenticate(`tat_${'x'.repeat(MAX_TOKEN_LENGTH)}`, undefined)).kind).toBe('rejected')
    expect(asked).toEqual(['tat_good', 'tat_bad'])
  })

  it('checks a JWT against the issuer of the tenant it is used for', async () => {
    const { auth, jwt } = await setup()
    expect(await auth.authenticate(jwt, 'acme')).toEqual({
      kind: 'authenticated',
      principal: {
        kind: 'oidc',
        subject: 'bob',
        tenant: 'acme',
        roles: ['reader'],
        // The JWT's `exp` in ms, so that a stream can end when the token does.
        expiresAt: decodeJwt(jwt).exp! * 1000,
      },
    })
    expect((await auth.authenticate(jwt, undefined)).kind).toBe('rejected')
    // A tenant without an issuer, or no tenant at all, answers like a tenant the caller may not see.
    expect(await auth.authenticate(jwt, 'plain')).toEqual({ kind: 'foreign' })
    expect(await auth.authenticate(jwt, 'ghost')).toEqual({ kind: 'foreign' })
    expect((await auth.authenticate('not a token at all', 'acme')).kind).toBe('rejected')
  })
})
