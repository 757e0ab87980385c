// Resources the store contract suite writes, and an assertion on the TributaryError a call fails with.
import { expect } from 'vitest'
import type { ErrorCode } from '../../../core/errors.ts'
import { isTributaryError } from '../../../core/errors.ts'
import type { DeviceSpec, TenantQuotas, TenantSpec } from '../../../core/registry/model.ts'
import type { NewCredential } from '../../../core/registry/store.ts'
import { uniqueName } from '../../helpers/wait.ts'

export const tenantId = (): string => uniqueName('t').toLowerCase().slice(0, 63)

/** Quotas with no limits but the ones given. */
export const quotas = (overrides: Partial<TenantQuotas> = {}): TenantQuotas => ({
  maxDevices: null,
  maxMessagesPerSecond: null,
  maxEventsPerSecond: null,
  maxBytesPerSecond: null,
  maxPayloadBytes: null,
  maxFileStorageBytes: null,
  maxFiles: null,
  ...overrides,
})

export function tenantSpec(overrides: Partial<TenantSpec> = {}): TenantSpec {
  return {
    enabled: true,
    oidc: {
      issuer: 'https://issuer.example',
      audience: 'tributary',
      jwksUri: 'https://issuer.example/jwks',
      rolesClaim: 'roles',
    },
    quotas: quotas({ maxMessagesPerSecond: 50, maxEventsPerSecond: 200, maxPayloadBytes: 65_536 }),
    authMethods: ['password', 'x509', 'psk', 'token'],
    trustAnchors: [
      {
        certificate: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
        subject: 'CN=Test CA',
        fingerprint: 'ab'.repeat(32),
        notAfter: '2035-01-01T00:00:00.000Z',
      },
    ],
    settings: { ttn: { mapping: 'decoded' }, nested: [1, 'two', { three: true }] },
    ...overrides,
  }
}

export function deviceSpec(overrides: Partial<DeviceSpec> = {}): DeviceSpec {
  return { enabled: true, labels: { room: 'lab' }, gateways: [], appVersion: null, ...overrides }
}

export const password = (
  tenant: string,
  device: string,
  hash = '$scrypt$n=16384,r=8,p=1$c2FsdA$aGFzaA',
): NewCredential => ({
  type: 'password',
  tenant,
  device,
  enabled: true,
  expiresAt: null,
  passwordHash: hash,
})

export const psk = (tenant: string, device: string): NewCredential => ({
  type: 'psk',
  tenant,
  device,
  enabled: true,
  expiresAt: null,
  identity: `${device}@${tenant}`,
  keyEncrypted: 'v1.iv.ciphertext.tag',
})

export const x509 = (
  tenant: string,
  device: string,
  by: { cn: string } | { fingerprint: string },
): NewCredential => ({
  type: 'x509',
  tenant,
  device,
  enabled: true,
  expiresAt: null,
  ...('cn' in by
    ? { match: 'cn' as const, subjectCn: by.cn, fingerprint: null }
    : { match: 'fingerprint' as const, subjectCn: null, fingerprint: by.fingerprint }),
})

export const token = (tenant: string, device: string, expiresAt: string | null = null): NewCredential => ({
  type: 'token',
  tenant,
  device,
  enabled: true,
  expiresAt,
  tokenHash: 'cd'.repeat(32),
})

/** Awaits a call that must fail with a TributaryError of this code, and returns the error. */
export async function failsWith(call: Promise<unknown>, code: ErrorCode) {
  const err: unknown = await call.then(
    () => new Error(`expected ${code}, but the call succeeded`),
    (e: unknown) => e,
  )
  if (!isTributaryError(err)) throw err
  expect(err.code, err.message).toBe(code)
  return err
}
