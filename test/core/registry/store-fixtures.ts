// Resources the store contract suite writes (and an uploaded file), and an assertion on the TributaryError a call fails with.
import { createHash, randomBytes } from 'node:crypto'
import { expect } from 'vitest'
import { buildFileUploadedEvent } from '../../../core/events/build.ts'
import type { ErrorCode } from '../../../core/errors.ts'
import { isTributaryError } from '../../../core/errors.ts'
import type { DeviceSpec, TenantQuotas, TenantSpec } from '../../../core/registry/model.ts'
import type { NewCredential, RegistryStore } from '../../../core/registry/store.ts'
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

let uploads = 0

/**
 * Records an uploaded file of `device` straight in the store (token, claim, completion) and returns
 * its id; ids grow with each call, so pages list them in call order.
 */
export async function uploadedFile(
  store: RegistryStore,
  tenant: string,
  device: string,
  at = new Date('2026-05-01T10:00:00.000Z'),
): Promise<string> {
  uploads += 1
  const id = `f${String(uploads).padStart(5, '0')}${randomBytes(6).toString('base64url')}`
  const tokenHash = createHash('sha256').update(id).digest('hex')
  const name = `firmware-${uploads}.bin`
  await store.files.createUpload({
    tenant,
    id,
    device,
    name,
    size: 10,
    sha256: undefined,
    contentType: 'application/octet-stream',
    tokenHash,
    createdAt: at,
    expiresAt: new Date(at.getTime() + 60_000),
  })
  await store.files.claimUpload(tokenHash, id, at)
  const sha256 = createHash('sha256').update(name).digest('hex')
  const file = { id, name, size: 10, sha256, contentType: 'application/octet-stream' }
  await store.files.completeUpload(
    tenant,
    id,
    { sha256, uploadedAt: at },
    buildFileUploadedEvent({ tenant, device, protocol: 'http', file, dataref: 'ref', time: at }),
  )
  return id
}
