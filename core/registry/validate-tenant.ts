// Input checks of tenants: OIDC issuer settings, quotas, device authentication methods, trust
// anchors and settings (free-form but for the few keys Tributary reads). Failures are
// REGISTRY_INVALID like every check in validate.ts.
import { CONFIG_MAX_BYTES_LIMITS } from './device-config.ts'
import { DEFAULT_MAX_MESSAGE_BYTES } from '../bus/bus.ts'
import { ALLOW_PRIVATE_VARIABLE, targetHostProblem } from '../outbound.ts'
import type { AuthMethod, OidcSettings, TenantQuotas, TenantSpec, TrustAnchor } from './model.ts'
import { AUTH_METHODS } from './model.ts'
import type { TenantInput } from './service.ts'
import { LIMITS, checkBoolean, checkText, invalid, isRecord, onlyKeys } from './validate.ts'
import { CertificateProblem, trustAnchorFrom } from './x509.ts'

/** Bounds of the tenant-wide quotas the processors enforce. */
export const QUOTA_LIMITS = {
  maxEventsPerSecond: 100_000_000,
  maxBytesPerSecond: 2 ** 40,
  /** The bus refuses larger records, so a larger payload could never be accepted anyway. */
  maxPayloadBytes: DEFAULT_MAX_MESSAGE_BYTES,
} as const

/** Bounds of the tenant topic settings (`settings.topicPartitions`, `settings.topicRetentionMs`). */
export const TOPIC_SETTING_LIMITS = {
  partitions: { min: 1, max: 1000 },
  /** -1 keeps events forever; otherwise one minute to ten years, as TRIBUTARY_TOPIC_RETENTION_MS. */
  retentionMs: { min: 60_000, max: 10 * 365 * 86_400_000 },
} as const

/** Settings that size the tenant's topics: like quotas, only the operator (admin token) may change them. */
export const OPERATOR_SETTINGS: readonly string[] = ['topicPartitions', 'topicRetentionMs']

const isWhole = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value)

/** The settings keys Tributary itself reads; every other key is left to the features that own it. */
function checkKnownSettings(value: Record<string, unknown>, field: string): void {
  const minLength = value['passwordMinLength']
  if (minLength !== undefined && !(isWhole(minLength) && minLength >= 1 && minLength <= LIMITS.passwordMax)) {
    throw invalid(`${field}.passwordMinLength`, `must be a whole number from 1 to ${LIMITS.passwordMax}`)
  }
  const configBytes = value['configMaxBytes']
  const { min, max } = CONFIG_MAX_BYTES_LIMITS
  if (configBytes !== undefined && !(isWhole(configBytes) && configBytes >= min && configBytes <= max)) {
    throw invalid(`${field}.configMaxBytes`, `must be a whole number of bytes from ${min} to ${max}`)
  }
  const { partitions, retentionMs } = TOPIC_SETTING_LIMITS
  const topicPartitions = value['topicPartitions']
  if (
    topicPartitions !== undefined &&
    !(isWhole(topicPartitions) && topicPartitions >= partitions.min && topicPartitions <= partitions.max)
  ) {
    throw invalid(
      `${field}.topicPartitions`,
      `must be a whole number from ${partitions.min} to ${partitions.max}`,
    )
  }
  const topicRetentionMs = value['topicRetentionMs']
  if (
    topicRetentionMs !== undefined &&
    !(
      isWhole(topicRetentionMs) &&
      (topicRetentionMs === -1 ||
        (topicRetentionMs >= retentionMs.min && topicRetentionMs <= retentionMs.max))
    )
  ) {
    throw invalid(
      `${field}.topicRetentionMs`,
      `must be -1 (keep forever) or a whole number of milliseconds from ${retentionMs.min} (one minute) to ${retentionMs.max} (ten years)`,
    )
  }
}

export function checkSettings(value: unknown, field = 'settings'): Record<string, unknown> {
  if (!isRecord(value)) throw invalid(field, 'must be a JSON object')
  // depth counts containers: `{ "a": { "b": 1 } }` is 2 deep.
  const walk = (node: unknown, depth: number): void => {
    if (node === null || typeof node === 'string' || typeof node === 'boolean') return
    if (typeof node === 'number') {
      if (!Number.isFinite(node)) throw invalid(field, 'numbers must be finite')
      return
    }
    if (depth > LIMITS.settingsDepth)
      throw invalid(field, `nested deeper than ${LIMITS.settingsDepth} levels`)
    if (Array.isArray(node)) return node.forEach((item) => walk(item, depth + 1))
    if (isRecord(node) && Object.getPrototypeOf(node) === Object.prototype) {
      for (const item of Object.values(node)) walk(item, depth + 1)
      return
    }
    throw invalid(field, 'must hold only JSON values')
  }
  walk(value, 1)
  checkKnownSettings(value, field)
  if (Buffer.byteLength(JSON.stringify(value)) > LIMITS.settingsBytes) {
    throw invalid(field, `larger than ${LIMITS.settingsBytes} bytes as JSON`)
  }
  return structuredClone(value)
}

function absoluteUrl(text: string, field: string): URL {
  try {
    return new URL(text)
  } catch {
    throw invalid(field, 'must be an absolute URL')
  }
}

/**
 * The issuer identifier: https, or http on the loopback interface (a local test issuer). It is only
 * compared with a token's `iss`, never fetched (the JWKS URL is given, no discovery document is read).
 */
export function checkIssuerUrl(value: unknown, field: string): string {
  const text = checkText(value, field, 1, LIMITS.urlLength)
  const url = absoluteUrl(text, field)
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw invalid(field, 'must be an https URL (http only for localhost)')
  }
  return text
}

/**
 * The JWKS URL the API will fetch, under the policy of every tenant-chosen URL (core/outbound.ts):
 * https, no user or password, not localhost or a non-public literal address; http and such hosts
 * only where the operator allows private targets. A host name is checked again on the address the
 * fetch dials (core/auth/oidc.ts).
 */
export function checkJwksUri(value: unknown, field: string, allowPrivate: boolean): string {
  const text = checkText(value, field, 1, LIMITS.urlLength)
  const url = absoluteUrl(text, field)
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) {
    throw invalid(field, `must be an https URL (http only with ${ALLOW_PRIVATE_VARIABLE}=true)`)
  }
  if (url.username !== '' || url.password !== '') throw invalid(field, 'may not carry a user or password')
  const problem = allowPrivate ? undefined : targetHostProblem(url.hostname)
  if (problem !== undefined) throw invalid(field, problem)
  return text
}

// Private members of RSA/EC/OKP keys, and `k` of symmetric keys: none may reach the registry.
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']

export function checkOidc(value: unknown, field = 'oidc', allowPrivate = false): OidcSettings | null {
  if (value === null) return null
  const input = onlyKeys(value, ['issuer', 'audience', 'jwksUri', 'jwks', 'rolesClaim'], field)
  const issuer = checkIssuerUrl(input['issuer'], `${field}.issuer`)
  const audience = checkText(input['audience'], `${field}.audience`, 1, 256)
  const rolesClaim =
    input['rolesClaim'] === undefined
      ? 'roles'
      : checkText(input['rolesClaim'], `${field}.rolesClaim`, 1, 256)
  if ((input['jwksUri'] === undefined) === (input['jwks'] === undefined)) {
    throw invalid(field, 'set exactly one of jwksUri and jwks')
  }
  if (input['jwksUri'] !== undefined) {
    const jwksUri = checkJwksUri(input['jwksUri'], `${field}.jwksUri`, allowPrivate)
    return { issuer, audience, rolesClaim, jwksUri }
  }
  const keys = input['jwks']
  if (!Array.isArray(keys) || keys.length === 0 || keys.length > LIMITS.jwksKeys) {
    throw invalid(`${field}.jwks`, `must be an array of 1-${LIMITS.jwksKeys} public JWKs`)
  }
  if (Buffer.byteLength(JSON.stringify(keys)) > LIMITS.jwksBytes) {
    throw invalid(`${field}.jwks`, `larger than ${LIMITS.jwksBytes} bytes`)
  }
  keys.forEach((key: unknown, i) => {
    const at = `${field}.jwks[${i}]`
    if (!isRecord(key) || typeof key['kty'] !== 'string') throw invalid(at, 'must be a JWK with kty')
    if (key['kty'] === 'oct') throw invalid(at, 'symmetric keys are secrets; give public keys only')
    if (PRIVATE_JWK_MEMBERS.some((member) => member in key)) throw invalid(at, 'must be a public key (no d)')
  })
  return { issuer, audience, rolesClaim, jwks: structuredClone(keys as Record<string, unknown>[]) }
}

function checkQuota(value: unknown, field: string): number | null {
  if (value === null) return null
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalid(field, 'must be a whole number ≥ 0, or null for no limit')
  }
  return value
}

/** A tenant-wide processor quota: 1 to `max`, or null. Zero would refuse everything: disable the tenant instead. */
function checkRate(value: unknown, field: string, max: number): number | null {
  if (value === null) return null
  if (!isWhole(value) || value < 1 || value > max) {
    throw invalid(field, `must be a whole number from 1 to ${max}, or null for no limit`)
  }
  return value
}

export function checkQuotas(value: unknown, base: TenantQuotas, field = 'quotas'): TenantQuotas {
  const input = onlyKeys(
    value,
    [
      'maxDevices',
      'maxMessagesPerSecond',
      'maxEventsPerSecond',
      'maxBytesPerSecond',
      'maxPayloadBytes',
      'maxFileStorageBytes',
      'maxFiles',
    ],
    field,
  )
  const pick = <K extends keyof TenantQuotas>(
    name: K,
    check: (value: unknown, field: string) => TenantQuotas[K],
  ): TenantQuotas[K] => (input[name] === undefined ? base[name] : check(input[name], `${field}.${name}`))
  return {
    maxDevices: pick('maxDevices', checkQuota),
    maxMessagesPerSecond: pick('maxMessagesPerSecond', checkQuota),
    maxEventsPerSecond: pick('maxEventsPerSecond', (v, f) =>
      checkRate(v, f, QUOTA_LIMITS.maxEventsPerSecond),
    ),
    maxBytesPerSecond: pick('maxBytesPerSecond', (v, f) => checkRate(v, f, QUOTA_LIMITS.maxBytesPerSecond)),
    maxPayloadBytes: pick('maxPayloadBytes', (v, f) => checkRate(v, f, QUOTA_LIMITS.maxPayloadBytes)),
    maxFileStorageBytes: pick('maxFileStorageBytes', checkQuota),
    maxFiles: pick('maxFiles', checkQuota),
  }
}

export function checkAuthMethods(value: unknown, field = 'authMethods'): AuthMethod[] {
  if (!Array.isArray(value) || value.length === 0)
    throw invalid(field, `must list one or more of ${AUTH_METHODS.join(', ')}`)
  const methods = new Set<AuthMethod>()
  for (const method of value) {
    if (!AUTH_METHODS.includes(method as AuthMethod))
      throw invalid(field, `unknown method ${JSON.stringify(method)}`)
    methods.add(method as AuthMethod)
  }
  return AUTH_METHODS.filter((method) => methods.has(method))
}

export function checkTrustAnchors(value: unknown, now: Date, field = 'trustAnchors'): TrustAnchor[] {
  if (!Array.isArray(value) || value.length > LIMITS.trustAnchors) {
    throw invalid(field, `must be an array of at most ${LIMITS.trustAnchors} PEM CA certificates`)
  }
  const anchors: TrustAnchor[] = []
  value.forEach((pem: unknown, i) => {
    if (typeof pem !== 'string') throw invalid(`${field}[${i}]`, 'must be a PEM certificate')
    try {
      const anchor = trustAnchorFrom(pem, now)
      if (anchors.some((a) => a.fingerprint === anchor.fingerprint))
        throw new CertificateProblem('is listed twice')
      anchors.push(anchor)
    } catch (err) {
      if (err instanceof CertificateProblem) throw invalid(`${field}[${i}]`, err.message)
      throw err
    }
  })
  return anchors
}

export const DEFAULT_TENANT_SPEC: TenantSpec = {
  enabled: true,
  oidc: null,
  quotas: {
    maxDevices: null,
    maxMessagesPerSecond: null,
    maxEventsPerSecond: null,
    maxBytesPerSecond: null,
    maxPayloadBytes: null,
    maxFileStorageBytes: null,
    maxFiles: null,
  },
  authMethods: [...AUTH_METHODS],
  trustAnchors: [],
  settings: {},
}

export interface TenantCheckOptions {
  /** TRIBUTARY_WEBHOOK_ALLOW_PRIVATE: `oidc.jwksUri` may name loopback, private and special hosts. */
  readonly allowPrivateTargets?: boolean | undefined
}

/** The spec to store: `input` over `base` (the current spec on update, the defaults on create). */
export function tenantSpec(
  input: TenantInput,
  base: TenantSpec,
  now: Date,
  options: TenantCheckOptions = {},
): TenantSpec {
  const fields = onlyKeys(input, ['enabled', 'oidc', 'quotas', 'authMethods', 'trustAnchors', 'settings'], '')
  const given = (name: string): boolean => fields[name] !== undefined
  return {
    enabled: given('enabled') ? checkBoolean(fields['enabled'], 'enabled') : base.enabled,
    oidc: given('oidc') ? checkOidc(fields['oidc'], 'oidc', options.allowPrivateTargets ?? false) : base.oidc,
    quotas: given('quotas') ? checkQuotas(fields['quotas'], base.quotas) : base.quotas,
    authMethods: given('authMethods') ? checkAuthMethods(fields['authMethods']) : base.authMethods,
    trustAnchors: given('trustAnchors') ? checkTrustAnchors(fields['trustAnchors'], now) : base.trustAnchors,
    settings: given('settings') ? checkSettings(fields['settings']) : base.settings,
  }
}
