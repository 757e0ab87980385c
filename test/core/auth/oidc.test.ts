// The OIDC verifier with static keys (no network): what verifies, what is invalid for the tenant
// (its issuer or its keys), and what is a stranger's token.
import { SignJWT, UnsecuredJWT, exportJWK, generateKeyPair } from 'jose'
import type { CryptoKey, JWK } from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import { createOidcVerifier, looksLikeJwt } from '../../../core/auth/oidc.ts'
import { silentLogger } from '../../../core/log.ts'
import type { OidcSettings } from '../../../core/registry/model.ts'

const ISSUER = 'https://id.example.com/realms/acme'
let key: CryptoKey
let strangerKey: CryptoKey
let settings: OidcSettings
const verifier = createOidcVerifier({ jwksCacheMs: 60_000, log: silentLogger })

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true })
  key = pair.privateKey
  strangerKey = (await generateKeyPair('ES256')).privateKey
  const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256' }
  settings = { issuer: ISSUER, audience: 'api', jwks: [jwk], rolesClaim: 'roles' }
})

function token(
  claims: Record<string, unknown> = {},
  options: { iss?: string; aud?: string; exp?: number | null; signWith?: CryptoKey; kid?: string } = {},
) {
  const jwt = new SignJWT({ roles: ['manager'], ...claims })
    .setProtectedHeader({ alg: 'ES256', kid: options.kid ?? 'k1' })
    .setIssuer(options.iss ?? ISSUER)
    .setAudience(options.aud ?? 'api')
    .setSubject('alice')
  const exp = options.exp === undefined ? Math.floor(Date.now() / 1000) + 60 : options.exp
  if (exp !== null) jwt.setExpirationTime(exp)
  return jwt.sign(options.signWith ?? key)
}

describe('OIDC verifier', () => {
  it('verifies a token of the tenant issuer and takes its roles', async () => {
    expect(await verifier.verify(await token(), 'acme', settings)).toEqual({
      kind: 'verified',
      subject: 'alice',
      roles: ['manager'],
    })
  })

  it('tolerates a little clock skew but not an expired token', async () => {
    const now = Math.floor(Date.now() / 1000)
    expect((await verifier.verify(await token({}, { exp: now - 5 }), 'acme', settings)).kind).toBe('verified')
    expect(await verifier.verify(await token({}, { exp: now - 120 }), 'acme', settings)).toEqual({
      kind: 'invalid',
      reason: 'the token has expired',
    })
  })

  it('calls a token invalid when it names the issuer or carries its signature but fails a check', async () => {
    const cases = [
      await token({}, { aud: 'other' }),
      await token({}, { exp: null }),
      await token({}, { signWith: strangerKey }),
      await token({}, { kid: 'k2' }),
      await token({}, { iss: 'https://elsewhere' }), // the tenant's own key signed it
      new UnsecuredJWT({}).setIssuer(ISSUER).setAudience('api').setExpirationTime('1m').encode(),
      'a.b.c',
    ]
    for (const jwt of cases) expect((await verifier.verify(jwt, 'acme', settings)).kind, jwt).toBe('invalid')
  })

  it('calls a token of another issuer signed with other keys foreign', async () => {
    const stranger = await token({}, { iss: 'https://other-issuer', signWith: strangerKey, kid: 'other' })
    expect(await verifier.verify(stranger, 'acme', settings)).toEqual({ kind: 'foreign' })
    const none = new UnsecuredJWT({}).setIssuer('https://other-issuer').encode()
    expect(await verifier.verify(none, 'acme', settings)).toEqual({ kind: 'foreign' })
  })

  it('tells JWT-shaped strings apart', () => {
    expect(looksLikeJwt('eyJh.eyJi.c2ln')).toBe(true)
    expect(looksLikeJwt('tat_abc_def')).toBe(false)
    expect(looksLikeJwt('a.b')).toBe(false)
  })
})
