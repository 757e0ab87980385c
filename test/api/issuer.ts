// A test OIDC issuer: real key pairs (jose), its JWKS served over HTTP by a node:http server on
// port 0, and real signed JWTs. It counts JWKS fetches so that caching can be asserted.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { JWK, JWTPayload, CryptoKey } from 'jose'
import { SignJWT, exportJWK, generateKeyPair } from 'jose'

export interface SignOptions {
  readonly issuer?: string | undefined
  readonly audience?: string | string[] | undefined
  readonly subject?: string | undefined
  /** Seconds from now; negative for an expired token; null for no `exp`. */
  readonly expiresIn?: number | null | undefined
  readonly kid?: string | undefined
  /** Another private key (with `kid` and `alg`) to sign with. */
  readonly key?: CryptoKey | undefined
  readonly alg?: string | undefined
}

export interface TestIssuer {
  readonly url: string
  /** The `iss` its tokens carry. */
  readonly issuer: string
  readonly jwksUri: string
  readonly kid: string
  readonly alg: string
  readonly publicJwk: JWK
  /** JWKS requests served so far. */
  readonly fetches: number
  /** TCP connections accepted so far (a TLS client that got no HTTP answer counts too). */
  readonly connections: number
  sign(claims: JWTPayload, options?: SignOptions): Promise<string>
  close(): Promise<void>
}

let counter = 0

export async function startIssuer(alg: 'ES256' | 'RS256' | 'EdDSA' = 'ES256'): Promise<TestIssuer> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
  const kid = `key-${++counter}`
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  let fetches = 0
  const server = createServer((req, res) => {
    if (req.url === '/.well-known/jwks.json') {
      fetches++
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ keys: [publicJwk] }))
    } else {
      res.writeHead(404)
      res.end()
    }
  })
  let connections = 0
  server.on('connection', () => connections++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    issuer: url,
    jwksUri: `${url}/.well-known/jwks.json`,
    kid,
    alg,
    publicJwk,
    get fetches() {
      return fetches
    },
    get connections() {
      return connections
    },
    async sign(claims, options = {}) {
      const jwt = new SignJWT(claims)
        .setProtectedHeader({ alg: options.alg ?? alg, kid: options.kid ?? kid, typ: 'JWT' })
        .setIssuer(options.issuer ?? url)
        .setSubject(options.subject ?? 'user-1')
        .setIssuedAt()
      if (options.audience !== undefined) jwt.setAudience(options.audience)
      const expiresIn = options.expiresIn === undefined ? 300 : options.expiresIn
      if (expiresIn !== null) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + expiresIn)
      return jwt.sign(options.key ?? privateKey)
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
