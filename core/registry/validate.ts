// Input checks of the registry service: identifiers, limits and field shapes, checked before
// anything is written. Every failure is REGISTRY_INVALID with details { field, reason }.
import { TributaryError } from '../errors.ts'
import { isDeviceId, isTenantId } from '../events/ids.ts'
import type { DeviceSpec, Role } from './model.ts'
import { ROLES } from './model.ts'
import type { DeviceInput } from './service.ts'
import { CertificateProblem, fingerprintOf, normaliseFingerprint, parseCertificate } from './x509.ts'

export const LIMITS = {
  labels: 64,
  labelKey: 63,
  labelValue: 256,
  gateways: 64,
  settingsBytes: 16 * 1024,
  settingsDepth: 8,
  trustAnchors: 16,
  jwksKeys: 32,
  jwksBytes: 64 * 1024,
  urlLength: 2048,
  /** Default shortest device password; a tenant may set its own (settings.passwordMinLength). */
  passwordMin: 8,
  passwordMax: 256,
  subjectCn: 256,
  tokenName: 64,
  listLimit: 1000,
  cursor: 512,
} as const

const LABEL_KEY = /^[A-Za-z0-9._/-]{1,63}$/
// Control characters have no place in names and labels (they break logs and selectors).
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/
const DAY_MS = 86_400_000

export function invalid(field: string, reason: string): TributaryError {
  return new TributaryError('REGISTRY_INVALID', `${field}: ${reason}`, { details: { field, reason } })
}

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** Rejects keys outside `allowed`, so a typo never silently does nothing. */
export function onlyKeys(value: unknown, allowed: readonly string[], field: string): Record<string, unknown> {
  if (!isRecord(value)) throw invalid(field, 'must be an object')
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw invalid(field === '' ? key : `${field}.${key}`, 'unknown field')
  }
  return value
}

export function checkTenantId(id: unknown, field = 'tenant'): string {
  if (typeof id !== 'string' || !isTenantId(id)) {
    throw invalid(field, 'must be 1-63 lowercase letters, digits and inner hyphens')
  }
  return id
}

export function checkDeviceId(id: unknown, field = 'device'): string {
  if (typeof id !== 'string' || !isDeviceId(id))
    throw invalid(field, 'must be 1-128 of A-Z a-z 0-9 . _ : ~ -')
  return id
}

export function checkBoolean(value: unknown, field: string): boolean {
  if (typeof value !== 'boolean') throw invalid(field, 'must be true or false')
  return value
}

export function checkText(value: unknown, field: string, min: number, max: number): string {
  if (typeof value !== 'string' || value.length < min || value.length > max) {
    throw invalid(field, `must be a string of ${min}-${max} characters`)
  }
  if (CONTROL.test(value)) throw invalid(field, 'must not contain control characters')
  return value
}

/** A password of `min` (the tenant's policy, see passwordMinLength) to LIMITS.passwordMax characters. */
export function checkPassword(value: unknown, field = 'password', min: number = LIMITS.passwordMin): string {
  if (typeof value !== 'string' || value.length < min || value.length > LIMITS.passwordMax) {
    throw invalid(field, `must be ${min}-${LIMITS.passwordMax} characters`)
  }
  return value
}

/** The tenant's shortest allowed device password: settings.passwordMinLength, else the default. */
export function passwordMinLength(settings: Readonly<Record<string, unknown>> | undefined): number {
  const value = settings?.['passwordMinLength']
  return typeof value === 'number' ? value : LIMITS.passwordMin
}

/** An ISO 8601 time strictly after `now`, normalised; null stays null. */
export function checkFutureTime(value: unknown, now: Date, field = 'expiresAt'): string | null {
  if (value === null) return null
  if (typeof value !== 'string' || value.length > 40 || !ISO_TIME.test(value)) {
    throw invalid(field, 'must be an ISO 8601 date-time with a time zone, or null')
  }
  const time = Date.parse(value)
  if (Number.isNaN(time)) throw invalid(field, 'is not a valid date-time')
  if (time <= now.getTime()) throw invalid(field, 'must be in the future')
  return new Date(time).toISOString()
}

export function checkLabels(value: unknown, field = 'labels'): Record<string, string> {
  if (!isRecord(value)) throw invalid(field, 'must be an object of string values')
  const entries = Object.entries(value)
  if (entries.length > LIMITS.labels) throw invalid(field, `at most ${LIMITS.labels} labels`)
  const labels: Record<string, string> = {}
  for (const [key, label] of entries) {
    if (!LABEL_KEY.test(key)) throw invalid(`${field}.${key}`, 'key must be 1-63 of A-Z a-z 0-9 . _ / -')
    labels[key] = checkText(label, `${field}.${key}`, 0, LIMITS.labelValue)
  }
  return labels
}

/** `appVersion`: what Kaa calls the application version; it names a topic level, so no `/ + #`. */
export const APP_VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

export function checkAppVersion(value: unknown, field = 'appVersion'): string {
  if (typeof value !== 'string' || !APP_VERSION_PATTERN.test(value)) {
    throw invalid(field, 'use 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit')
  }
  return value
}

/** Plain JSON (objects, arrays, strings, finite numbers, booleans, null), bounded in depth and size. */
export const DEFAULT_DEVICE_SPEC: DeviceSpec = { enabled: true, labels: {}, gateways: [], appVersion: null }

export function checkGateways(value: unknown, device: string, field = 'gateways'): string[] {
  if (!Array.isArray(value) || value.length > LIMITS.gateways) {
    throw invalid(field, `must be an array of at most ${LIMITS.gateways} device ids`)
  }
  const gateways = new Set<string>()
  value.forEach((gateway: unknown, i) => {
    const id = checkDeviceId(gateway, `${field}[${i}]`)
    if (id === device) throw invalid(`${field}[${i}]`, 'a device needs no gateway permission for itself')
    gateways.add(id)
  })
  return [...gateways]
}

export function deviceSpec(input: DeviceInput, base: DeviceSpec, device: string): DeviceSpec {
  const fields = onlyKeys(input, ['enabled', 'labels', 'gateways', 'appVersion'], '')
  const appVersion = fields['appVersion']
  return {
    enabled: fields['enabled'] === undefined ? base.enabled : checkBoolean(fields['enabled'], 'enabled'),
    labels: fields['labels'] === undefined ? base.labels : checkLabels(fields['labels']),
    gateways: fields['gateways'] === undefined ? base.gateways : checkGateways(fields['gateways'], device),
    appVersion:
      appVersion === undefined ? base.appVersion : appVersion === null ? null : checkAppVersion(appVersion),
  }
}

export function checkRole(value: unknown, field = 'role'): Role {
  if (!ROLES.includes(value as Role)) throw invalid(field, `must be one of ${ROLES.join(', ')}`)
  return value as Role
}

/** API token expiry: default 90 days, at most two years ahead. */
export function apiTokenExpiry(value: unknown, now: Date, field = 'expiresAt'): string {
  if (value === undefined) return new Date(now.getTime() + 90 * DAY_MS).toISOString()
  const expiresAt = checkFutureTime(value, now, field)
  if (expiresAt === null) throw invalid(field, 'API tokens must expire')
  const latest = new Date(now)
  latest.setUTCFullYear(latest.getUTCFullYear() + 2)
  if (Date.parse(expiresAt) > latest.getTime()) throw invalid(field, 'must be at most two years ahead')
  return expiresAt
}

export function checkListOptions(value: unknown): { limit?: number; after?: string } {
  if (value === undefined) return {}
  const input = onlyKeys(value, ['limit', 'after', 'labels'], '')
  const out: { limit?: number; after?: string } = {}
  const limit = input['limit']
  if (limit !== undefined) {
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > LIMITS.listLimit) {
      throw invalid('limit', `must be a whole number 1-${LIMITS.listLimit}`)
    }
    out.limit = limit
  }
  if (input['after'] !== undefined) out.after = checkText(input['after'], 'after', 1, LIMITS.cursor)
  return out
}

const OPAQUE_ID = /^[0-9A-Za-z-]{1,64}$/
const HEX = /^(?:[0-9a-fA-F]{2})+$/

/** Credential and API token ids (UUIDs made by the store). */
export function checkOpaqueId(value: unknown, field = 'id'): string {
  if (typeof value !== 'string' || !OPAQUE_ID.test(value))
    throw invalid(field, 'must be 1-64 of 0-9 A-Z a-z -')
  return value
}

/** A credential input, checked: secrets still in the clear (service-impl.ts hashes or encrypts them). */
export type CredentialFields = { readonly enabled: boolean; readonly expiresAt: string | null } & (
  | { readonly type: 'password'; readonly password: string }
  | { readonly type: 'x509'; readonly match: 'cn'; readonly subjectCn: string }
  | { readonly type: 'x509'; readonly match: 'fingerprint'; readonly fingerprint: string }
  | { readonly type: 'psk'; readonly key: Buffer | undefined }
  | { readonly type: 'token' }
)

const CREDENTIAL_KEYS = {
  password: ['password'],
  x509: ['subjectCn', 'fingerprint', 'certificate'],
  psk: ['key'],
  token: [],
} as const

export function credentialFields(input: unknown, now: Date): CredentialFields {
  if (!isRecord(input)) throw invalid('credential', 'must be an object')
  const type = input['type']
  if (type !== 'password' && type !== 'x509' && type !== 'psk' && type !== 'token') {
    throw invalid('type', 'must be one of password, x509, psk, token')
  }
  const fields = onlyKeys(input, ['type', 'enabled', 'expiresAt', ...CREDENTIAL_KEYS[type]], '')
  const common = {
    enabled: fields['enabled'] === undefined ? true : checkBoolean(fields['enabled'], 'enabled'),
    expiresAt: fields['expiresAt'] === undefined ? null : checkFutureTime(fields['expiresAt'], now),
  }
  switch (type) {
    case 'password':
      return { ...common, type, password: checkPassword(fields['password'], 'password', 1) }
    case 'x509':
      return { ...common, ...x509Match(fields) }
    case 'psk': {
      const key = fields['key']
      if (key === undefined) return { ...common, type, key: undefined }
      if (typeof key !== 'string' || key.length < 32 || key.length > 128 || !HEX.test(key)) {
        throw invalid('key', 'must be 16-64 bytes in hex (or omitted to have one generated)')
      }
      return { ...common, type, key: Buffer.from(key, 'hex') }
    }
    case 'token':
      return { ...common, type }
  }
}

function x509Match(fields: Record<string, unknown>) {
  const given = CREDENTIAL_KEYS.x509.filter((name) => fields[name] !== undefined)
  if (given.length !== 1) throw invalid('x509', 'set exactly one of subjectCn, fingerprint, certificate')
  if (given[0] === 'subjectCn') {
    return {
      type: 'x509',
      match: 'cn',
      subjectCn: checkText(fields['subjectCn'], 'subjectCn', 1, LIMITS.subjectCn),
    } as const
  }
  if (given[0] === 'fingerprint') {
    const fingerprint =
      typeof fields['fingerprint'] === 'string' ? normaliseFingerprint(fields['fingerprint']) : undefined
    if (fingerprint === undefined)
      throw invalid('fingerprint', 'must be a SHA-256 fingerprint: 64 hex digits, colons allowed')
    return { type: 'x509', match: 'fingerprint', fingerprint } as const
  }
  if (typeof fields['certificate'] !== 'string') throw invalid('certificate', 'must be a PEM certificate')
  try {
    return {
      type: 'x509',
      match: 'fingerprint',
      fingerprint: fingerprintOf(parseCertificate(fields['certificate'])),
    } as const
  } catch (err) {
    if (err instanceof CertificateProblem) throw invalid('certificate', err.message)
    throw err
  }
}
