// Input checks of webhook subscriptions: the endpoint URL (and, unless private targets are allowed,
// that its literal host is not a loopback, link-local or private address), the event filter, extra
// headers, timeouts, the retry policy and a caller's own signing secret. Failures are REGISTRY_INVALID.
import { targetHostProblem } from '../outbound.ts'
import { isDeviceId } from '../events/ids.ts'
import type { RetryPolicy, SubscriptionFilter, WebhookSubscription } from './model.ts'
import { TYPE_PATTERN, isChannelFilter } from './validate-routes.ts'
import { checkLabels, invalid, isRecord, onlyKeys } from './validate.ts'

export const SUBSCRIPTION_LIMITS = {
  urlLength: 2048,
  filterEntries: 32,
  headers: 32,
  headerName: 256,
  headerValue: 1024,
  batchSize: 1000,
  timeoutMinMs: 1000,
  timeoutMaxMs: 30_000,
  maxAttempts: 50,
  initialBackoffMinMs: 100,
  initialBackoffMaxMs: 600_000,
  maxBackoffMaxMs: 86_400_000,
  secretMinBytes: 24,
  secretMaxBytes: 64,
} as const

export const DEFAULT_TIMEOUT_MS = 10_000
export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 8, initialBackoffMs: 1000, maxBackoffMs: 300_000 }
export const SECRET_PREFIX = 'whsec_'

/** RFC 9110 token characters. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const HEADER_VALUE = /^[\x20-\x7e]*$/
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

/** Headers Tributary sets itself, that HTTP reserves for the connection, or that the signature covers. */
const RESERVED_HEADERS = new Set([
  'content-type',
  'content-length',
  'host',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
])
const RESERVED_PREFIXES = ['webhook-', 'ce-']

/** The endpoint: absolute http(s), no userinfo or fragment; a literal private host only when allowed. */
export function checkWebhookUrl(value: unknown, allowPrivate: boolean, field = 'url'): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > SUBSCRIPTION_LIMITS.urlLength) {
    throw invalid(field, `must be a URL of at most ${SUBSCRIPTION_LIMITS.urlLength} characters`)
  }
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw invalid(field, 'is not an absolute URL')
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid(field, 'must be https or http')
  if (url.username !== '' || url.password !== '') throw invalid(field, 'may not carry a user or password')
  if (value.includes('#')) throw invalid(field, 'may not have a fragment')
  // The policy of every tenant-chosen URL (core/outbound.ts); delivery checks the dialled address.
  const hostProblem = allowPrivate ? undefined : targetHostProblem(url.hostname)
  if (hostProblem !== undefined) throw invalid(field, hostProblem)
  return url.href
}

function checkList(value: unknown, field: string, test: (entry: string) => boolean, rule: string): string[] {
  if (!Array.isArray(value) || value.length < 1 || value.length > SUBSCRIPTION_LIMITS.filterEntries) {
    throw invalid(field, `must be an array of 1-${SUBSCRIPTION_LIMITS.filterEntries} entries`)
  }
  return value.map((entry: unknown, i) => {
    if (typeof entry !== 'string' || !test(entry)) throw invalid(`${field}[${i}]`, `must be ${rule}`)
    return entry
  })
}

export function checkSubscriptionFilter(value: unknown, field = 'filter'): SubscriptionFilter {
  const input = onlyKeys(value, ['types', 'channels', 'devices', 'labels'], field)
  const filter: { -readonly [K in keyof SubscriptionFilter]: SubscriptionFilter[K] } = {}
  if (input['types'] !== undefined) {
    filter.types = checkList(
      input['types'],
      `${field}.types`,
      (t) => TYPE_PATTERN.test(t),
      '1-256 printable characters',
    )
  }
  if (input['channels'] !== undefined) {
    filter.channels = checkList(
      input['channels'],
      `${field}.channels`,
      isChannelFilter,
      'a channel or a filter with + for one level and a last # for the rest',
    )
  }
  if (input['devices'] !== undefined) {
    filter.devices = checkList(input['devices'], `${field}.devices`, isDeviceId, 'a device id')
  }
  const labels = input['labels']
  if (labels !== undefined) {
    if (isRecord(labels) && Object.keys(labels).length > SUBSCRIPTION_LIMITS.filterEntries) {
      throw invalid(`${field}.labels`, `at most ${SUBSCRIPTION_LIMITS.filterEntries} labels`)
    }
    filter.labels = checkLabels(labels, `${field}.labels`)
  }
  return filter
}

export function checkWebhookHeaders(value: unknown, field = 'headers'): Record<string, string> {
  if (!isRecord(value)) throw invalid(field, 'must be an object of string values')
  const entries = Object.entries(value)
  if (entries.length > SUBSCRIPTION_LIMITS.headers) {
    throw invalid(field, `at most ${SUBSCRIPTION_LIMITS.headers} headers`)
  }
  const headers: Record<string, string> = {}
  const seen = new Set<string>()
  for (const [name, text] of entries) {
    const lower = name.toLowerCase()
    if (name.length > SUBSCRIPTION_LIMITS.headerName || !HEADER_NAME.test(name)) {
      throw invalid(`${field}.${name}`, 'is not an HTTP header name')
    }
    if (RESERVED_HEADERS.has(lower) || RESERVED_PREFIXES.some((p) => lower.startsWith(p))) {
      throw invalid(`${field}.${name}`, 'is set by Tributary and may not be given')
    }
    if (seen.has(lower)) throw invalid(`${field}.${name}`, 'is given twice')
    seen.add(lower)
    if (
      typeof text !== 'string' ||
      text.length > SUBSCRIPTION_LIMITS.headerValue ||
      !HEADER_VALUE.test(text)
    ) {
      throw invalid(
        `${field}.${name}`,
        `must be at most ${SUBSCRIPTION_LIMITS.headerValue} printable ASCII characters`,
      )
    }
    headers[name] = text
  }
  return headers
}

function checkInteger(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalid(field, `must be a whole number ${min}-${max}`)
  }
  return value
}

export function checkRetryPolicy(value: unknown, base: RetryPolicy, field = 'retry'): RetryPolicy {
  const input = onlyKeys(value, ['maxAttempts', 'initialBackoffMs', 'maxBackoffMs'], field)
  const L = SUBSCRIPTION_LIMITS
  const given = (key: keyof RetryPolicy) => input[key] ?? base[key]
  const maxAttempts = checkInteger(given('maxAttempts'), `${field}.maxAttempts`, 1, L.maxAttempts)
  const initialBackoffMs = checkInteger(
    given('initialBackoffMs'),
    `${field}.initialBackoffMs`,
    L.initialBackoffMinMs,
    L.initialBackoffMaxMs,
  )
  const maxBackoffMs = checkInteger(
    given('maxBackoffMs'),
    `${field}.maxBackoffMs`,
    initialBackoffMs,
    L.maxBackoffMaxMs,
  )
  return { maxAttempts, initialBackoffMs, maxBackoffMs }
}

/** A caller's own signing secret: `whsec_` and the base64 of 24-64 random bytes. */
export function checkSigningSecret(value: unknown, field = 'secret'): string {
  const rule = `must be ${SECRET_PREFIX} followed by the base64 of ${SUBSCRIPTION_LIMITS.secretMinBytes}-${SUBSCRIPTION_LIMITS.secretMaxBytes} bytes`
  if (typeof value !== 'string' || !value.startsWith(SECRET_PREFIX) || value.length > 200) {
    throw invalid(field, rule)
  }
  const encoded = value.slice(SECRET_PREFIX.length)
  const bytes = BASE64.test(encoded) ? Buffer.from(encoded, 'base64') : Buffer.alloc(0)
  if (
    bytes.toString('base64') !== encoded ||
    bytes.length < SUBSCRIPTION_LIMITS.secretMinBytes ||
    bytes.length > SUBSCRIPTION_LIMITS.secretMaxBytes
  ) {
    throw invalid(field, rule)
  }
  return value
}

/** The fields a caller sets, checked; omitted ones keep `base` (update) or take the defaults (create). */
export type SubscriptionFields = Pick<
  WebhookSubscription,
  'url' | 'filter' | 'mode' | 'batchSize' | 'headers' | 'timeoutMs' | 'retry'
>

export const SUBSCRIPTION_FIELDS = [
  'url',
  'filter',
  'mode',
  'batchSize',
  'headers',
  'timeoutMs',
  'retry',
] as const

export function subscriptionFields(
  input: Record<string, unknown>,
  base: SubscriptionFields | undefined,
  allowPrivate: boolean,
): SubscriptionFields {
  const { url, filter, mode, batchSize, headers, timeoutMs, retry } = input
  if (base === undefined && url === undefined) throw invalid('url', 'is required')
  const L = SUBSCRIPTION_LIMITS
  if (mode !== undefined && mode !== 'binary' && mode !== 'structured') {
    throw invalid('mode', 'must be binary or structured')
  }
  return {
    url: url === undefined && base !== undefined ? base.url : checkWebhookUrl(url, allowPrivate),
    filter: filter === undefined ? (base?.filter ?? {}) : checkSubscriptionFilter(filter),
    mode: mode ?? base?.mode ?? 'binary',
    batchSize:
      batchSize === undefined
        ? (base?.batchSize ?? null)
        : batchSize === null
          ? null
          : checkInteger(batchSize, 'batchSize', 1, L.batchSize),
    headers: headers === undefined ? (base?.headers ?? {}) : checkWebhookHeaders(headers),
    timeoutMs:
      timeoutMs === undefined
        ? (base?.timeoutMs ?? DEFAULT_TIMEOUT_MS)
        : checkInteger(timeoutMs, 'timeoutMs', L.timeoutMinMs, L.timeoutMaxMs),
    retry:
      retry === undefined
        ? (base?.retry ?? DEFAULT_RETRY)
        : checkRetryPolicy(retry, base?.retry ?? DEFAULT_RETRY),
  }
}
