// Who is connecting: the TLS-PSK identity the handshake proved, else a client certificate checked
// against the tenant's trust anchors, else a bearer device token or a password in CONNECT. The
// registry's authenticator applies the tenant's policy (authMethods) and the enabled flags.
import { isDeviceId, isTenantId } from '../../core/events/ids.ts'
import type { DeviceAuthenticator, DeviceAuthResult } from '../../core/registry/auth.ts'
import { commonNameOf, fingerprintOf } from '../../core/registry/x509.ts'
import type { AnchorIndex } from './anchors.ts'
import { peerChain, verifyChain } from './certificates.ts'
import type { Connection, Session } from './connection.ts'
import type { ConnectRefusal } from './outcome.ts'

export type ConnectDecision =
  { readonly ok: true; readonly session: Session } | { readonly ok: false; readonly reason: ConnectRefusal }

export interface ConnectAuthenticatorDeps {
  readonly device: DeviceAuthenticator
  readonly anchors: AnchorIndex
  readonly now?: () => Date
}

/** Bearer device tokens start so; anything else in the password field is a password. */
const TOKEN_PREFIX = 'tdt_'

/** `<device>@<tenant>`, `@<tenant>` or nothing: the parts a username names (split at the last `@`). */
export function parseUsername(username: string | undefined): { device?: string; tenant?: string } {
  if (username === undefined || username === '') return {}
  const at = username.lastIndexOf('@')
  if (at < 0) return { device: username }
  const device = username.slice(0, at)
  return { tenant: username.slice(at + 1), ...(device === '' ? {} : { device }) }
}

const fromResult = (r: DeviceAuthResult, chain?: Session['chain']): ConnectDecision =>
  r.ok
    ? {
        ok: true,
        session: {
          tenant: r.tenant,
          device: r.device,
          method: r.method,
          credentialId: r.credentialId,
          chain,
        },
      }
    : { ok: false, reason: r.reason }

/** A username given alongside a certificate, PSK or token must name the same device. */
function sameDevice(decision: ConnectDecision, named: { device?: string; tenant?: string }): ConnectDecision {
  if (!decision.ok) return decision
  const { tenant, device } = decision.session
  if ((named.tenant ?? tenant) !== tenant || (named.device ?? device) !== device)
    return { ok: false, reason: 'identity-mismatch' }
  return decision
}

export function createConnectAuthenticator(deps: ConnectAuthenticatorDeps) {
  const { device: registry, anchors } = deps
  const now = deps.now ?? (() => new Date())

  async function byCertificate(
    chain: Session['chain'] & object,
    named: { device?: string; tenant?: string },
  ): Promise<ConnectDecision> {
    const leaf = chain[0]!
    const candidates = named.tenant !== undefined ? [named.tenant] : anchors.tenantsFor(leaf.issuer)
    const trusting: string[] = []
    for (const tenant of candidates.filter(isTenantId)) {
      if (verifyChain(chain, await registry.trustAnchors(tenant), now())) trusting.push(tenant)
    }
    if (trusting.length === 0)
      return {
        ok: false,
        reason: named.tenant !== undefined ? 'certificate-invalid' : 'certificate-tenant-unknown',
      }
    if (trusting.length > 1) return { ok: false, reason: 'certificate-tenant-ambiguous' }
    const result = await registry.byCertificate(trusting[0]!, {
      cn: commonNameOf(leaf),
      fingerprint: fingerprintOf(leaf),
    })
    return sameDevice(fromResult(result, chain), named)
  }

  return {
    async authenticate(
      conn: Connection,
      username: string | undefined,
      password: Buffer | undefined,
    ): Promise<ConnectDecision> {
      const named = parseUsername(username)
      if (named.device !== undefined && !isDeviceId(named.device)) return { ok: false, reason: 'malformed' }
      if (named.tenant !== undefined && !isTenantId(named.tenant)) return { ok: false, reason: 'malformed' }
      if (conn.psk !== undefined) {
        const { tenant, device, credentialId } = conn.psk
        return sameDevice({ ok: true, session: { tenant, device, method: 'psk', credentialId } }, named)
      }
      // A presented certificate decides: a bad one is refused even when a password comes with it.
      const chain = conn.tls === undefined ? [] : peerChain(conn.tls)
      if (chain.length > 0) return byCertificate(chain, named)
      const secret = password?.toString('utf8')
      if (secret === undefined || secret === '') return { ok: false, reason: 'missing-credentials' }
      if (secret.startsWith(TOKEN_PREFIX))
        return sameDevice(fromResult(await registry.byToken(secret)), named)
      if (username === undefined || username === '') return { ok: false, reason: 'missing-credentials' }
      return fromResult(await registry.byPassword(username, secret))
    },
  }
}

export type ConnectAuthenticator = ReturnType<typeof createConnectAuthenticator>
