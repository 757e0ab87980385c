// Device authentication on the hot path: by password, client certificate, PSK identity or bearer
// token, each answered from the credential cache (auth-cache.ts) when it can. A verified password
// is remembered as an HMAC under a per-process key, never in the clear.
import { createHmac, createSecretKey, randomBytes, timingSafeEqual } from 'node:crypto'
import { isDeviceId, isTenantId } from '../events/ids.ts'
import type { Logger } from '../log.ts'
import type { AuthCache } from './auth-cache.ts'
import { found } from './auth-cache.ts'
import type { AuthMethod, Credential, Device, Tenant, TrustAnchor } from './model.ts'
import type { Secrets } from './secrets.ts'
import { PASSWORD_MAX_LENGTH } from './secrets.ts'
import type { RegistryStore } from './store.ts'
import { normaliseFingerprint } from './x509.ts'

export type DeviceAuthFailure =
  'malformed' | 'unknown' | 'bad-secret' | 'disabled' | 'expired' | 'method-not-allowed'

export type DeviceAuthResult =
  | {
      readonly ok: true
      readonly tenant: string
      readonly device: string
      readonly method: AuthMethod
      readonly credentialId: string
    }
  | { readonly ok: false; readonly reason: DeviceAuthFailure }

export type PskAuthResult =
  | (DeviceAuthResult & { readonly ok: false })
  | (DeviceAuthResult & { readonly ok: true; readonly key: Buffer })

export interface DeviceAuthenticator {
  /** username `<device>@<tenant>` (split at the last `@`). */
  byPassword(username: string, password: string): Promise<DeviceAuthResult>
  /**
   * A client certificate the TLS layer has already verified against trustAnchors(tenant): the
   * device is found by fingerprint first, then by subject CN.
   */
  byCertificate(
    tenant: string,
    certificate: { cn?: string | undefined; fingerprint?: string | undefined },
  ): Promise<DeviceAuthResult>
  trustAnchors(tenant: string): Promise<readonly TrustAnchor[]>
  /** identity `<device>@<tenant>`; the decrypted key for the handshake when the device may connect. */
  byPsk(identity: string): Promise<PskAuthResult>
  pskKey(identity: string): Promise<Buffer | undefined>
  /** A bearer device token `tdt_<id>_<secret>`. */
  byToken(token: string): Promise<DeviceAuthResult>
}

export interface DeviceAuthDeps {
  readonly store: RegistryStore
  readonly secrets: Secrets
  readonly cache: AuthCache
  readonly log: Logger
  readonly now: () => Date
  /** Cached tenant and device rows, shared with the API token authenticator. */
  readonly tenantRow: (tenant: string) => Promise<Tenant | undefined>
  readonly deviceRow: (tenant: string, device: string) => Promise<Device | undefined>
}

interface PasswordEntry {
  readonly credential: Credential | undefined
  /** HMAC of the last password that verified against this row; the password itself is never kept. */
  verified: Buffer | undefined
}

const fail = (reason: DeviceAuthFailure): DeviceAuthResult => ({ ok: false, reason })

/** Splits `<device>@<tenant>` at the last `@`. */
function splitIdentity(value: unknown): { tenant: string; device: string } | undefined {
  if (typeof value !== 'string' || value.length > 200) return undefined
  const at = value.lastIndexOf('@')
  const device = value.slice(0, at)
  const tenant = value.slice(at + 1)
  return at > 0 && isDeviceId(device) && isTenantId(tenant) ? { tenant, device } : undefined
}

export function createDeviceAuthenticator(deps: DeviceAuthDeps): DeviceAuthenticator {
  const { store, secrets, cache, log, now, tenantRow, deviceRow } = deps
  // A KeyObject made once: a Buffer key would be imported again on every createHmac call.
  const hmacKey = createSecretKey(randomBytes(32))

  const credentialTags = (credential: Credential | undefined, t: string): string[] =>
    credential === undefined ? [`t:${t}`, `n:${t}`] : [`t:${t}`, `d:${t}/${credential.device}`]

  /** The checks every method shares once the secret is proven: enabled, not expired, allowed. */
  async function admit(t: string, credential: Credential, method: AuthMethod): Promise<DeviceAuthResult> {
    const [tenant, device] = await Promise.all([tenantRow(t), deviceRow(t, credential.device)])
    if (tenant === undefined || device === undefined) return fail('unknown')
    if (!tenant.authMethods.includes(method)) return fail('method-not-allowed')
    if (!tenant.enabled || !device.enabled || !credential.enabled) return fail('disabled')
    if (credential.expiresAt !== null && Date.parse(credential.expiresAt) <= now().getTime())
      return fail('expired')
    return { ok: true, tenant: t, device: credential.device, method, credentialId: credential.id }
  }

  async function allows(t: string, method: AuthMethod): Promise<DeviceAuthFailure | undefined> {
    const tenant = await tenantRow(t)
    if (tenant === undefined) return 'unknown'
    return tenant.authMethods.includes(method) ? undefined : 'method-not-allowed'
  }

  const passwordMac = (hash: string, password: string): Buffer =>
    createHmac('sha256', hmacKey).update(hash).update('\0').update(password).digest()

  const device: DeviceAuthenticator = {
    async byPassword(username, password) {
      const id = splitIdentity(username)
      if (id === undefined || typeof password !== 'string') return fail('malformed')
      if (password.length === 0 || password.length > PASSWORD_MAX_LENGTH) return fail('malformed')
      const refused = await allows(id.tenant, 'password')
      if (refused !== undefined) return fail(refused)
      const entry = await cache.get<PasswordEntry>(`pw:${id.tenant}/${id.device}`, async () => {
        const credential = await store.findPassword(id.tenant, id.device)
        const tags = [`t:${id.tenant}`, `d:${id.tenant}/${id.device}`]
        return { value: { credential, verified: undefined }, tags, negative: credential === undefined }
      })
      const credential = entry.credential
      if (credential?.type !== 'password') return fail('unknown')
      const mac = passwordMac(credential.passwordHash, password)
      const remembered = entry.verified !== undefined && timingSafeEqual(entry.verified, mac)
      if (!remembered && !(await secrets.verifyPassword(password, credential.passwordHash)))
        return fail('bad-secret')
      entry.verified = mac
      return admit(id.tenant, credential, 'password')
    },

    async byCertificate(t, certificate) {
      const cn = certificate.cn
      const fingerprint =
        certificate.fingerprint === undefined ? undefined : normaliseFingerprint(certificate.fingerprint)
      if (typeof t !== 'string' || !isTenantId(t)) return fail('malformed')
      if (certificate.fingerprint !== undefined && fingerprint === undefined) return fail('malformed')
      if (cn !== undefined && (typeof cn !== 'string' || cn.length === 0 || cn.length > 256))
        return fail('malformed')
      if (cn === undefined && fingerprint === undefined) return fail('malformed')
      const refused = await allows(t, 'x509')
      if (refused !== undefined) return fail(refused)
      let credential: Credential | undefined
      if (fingerprint !== undefined) {
        credential = await cache.get(`fp:${t}/${fingerprint}`, async () => {
          const row = await store.findX509(t, { fingerprint })
          return found(row, credentialTags(row, t))
        })
      }
      if (credential === undefined && cn !== undefined) {
        credential = await cache.get(`cn:${t}/${cn}`, async () => {
          const row = await store.findX509(t, { cn })
          return found(row, credentialTags(row, t))
        })
      }
      if (credential?.type !== 'x509') return fail('unknown')
      return admit(t, credential, 'x509')
    },

    async trustAnchors(t) {
      return typeof t === 'string' && isTenantId(t) ? ((await tenantRow(t))?.trustAnchors ?? []) : []
    },

    async byPsk(identity) {
      const id = splitIdentity(identity)
      if (id === undefined) return { ok: false, reason: 'malformed' }
      const refused = await allows(id.tenant, 'psk')
      if (refused !== undefined) return { ok: false, reason: refused }
      const credential = await cache.get(`psk:${id.tenant}/${id.device}`, async () => {
        const row = await store.findPsk(id.tenant, id.device)
        return found(row, [`t:${id.tenant}`, `d:${id.tenant}/${id.device}`])
      })
      if (credential?.type !== 'psk') return { ok: false, reason: 'unknown' }
      const result = await admit(id.tenant, credential, 'psk')
      if (!result.ok) return result
      try {
        // Decrypted per handshake rather than cached: the clear key lives only as long as the handshake.
        return { ...result, key: secrets.decrypt(credential.keyEncrypted, credential.identity) }
      } catch (err) {
        log.error(
          { err, tenant: id.tenant, device: id.device },
          'PSK key does not decrypt: is TRIBUTARY_REGISTRY_KEY the one it was written with?',
        )
        return { ok: false, reason: 'unknown' }
      }
    },

    async pskKey(identity) {
      const result = await device.byPsk(identity)
      return result.ok ? result.key : undefined
    },

    async byToken(token) {
      const parsed = typeof token === 'string' ? secrets.parseToken(token) : undefined
      if (parsed?.kind !== 'device') return fail('malformed')
      const credential = await cache.get(`tdt:${parsed.id}`, async () => {
        const row = await store.findDeviceToken(parsed.id)
        return found(row, row === undefined ? [] : [`t:${row.tenant}`, `d:${row.tenant}/${row.device}`])
      })
      if (credential?.type !== 'token') return fail('unknown')
      if (!secrets.verifyTokenSecret(parsed.secret, credential.tokenHash)) return fail('bad-secret')
      return admit(credential.tenant, credential, 'token')
    },
  }
  return device
}
