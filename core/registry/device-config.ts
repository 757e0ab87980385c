// Desired device configuration as data: documents checked and bounded, the three levels (tenant
// default, application version, device) merged, JSON merge patches applied, and the configuration
// id: a content hash of the merged document, so equal configurations have equal ids everywhere.
import { createHash } from 'node:crypto'
import type { ConfigInputs, ConfigReportInput, ConfigRule, ConfigRuleSpec } from './model.ts'
import { APP_VERSION_PATTERN, checkLabels, invalid, isRecord, onlyKeys } from './validate.ts'

export { APP_VERSION_PATTERN, checkAppVersion } from './validate.ts'

export type ConfigValue = null | boolean | number | string | ConfigValue[] | { [key: string]: ConfigValue }
export type ConfigObject = { [key: string]: ConfigValue }

/** Default bound of one configuration document as canonical JSON (tenant setting `configMaxBytes`). */
export const DEFAULT_CONFIG_MAX_BYTES = 64 * 1024
/** What `settings.configMaxBytes` may be set to. */
export const CONFIG_MAX_BYTES_LIMITS = { min: 2, max: 1024 * 1024 } as const
/** Containers nested deeper than this are refused (keeps every walk over a document shallow). */
export const CONFIG_MAX_DEPTH = 32

/** The bound a tenant's settings set, else the default. */
export function configMaxBytes(settings: Readonly<Record<string, unknown>>): number {
  const value = settings['configMaxBytes']
  return typeof value === 'number' && Number.isSafeInteger(value) ? value : DEFAULT_CONFIG_MAX_BYTES
}

/** JSON with object keys sorted at every level (RFC 8785 for the values JSON.parse gives us). */
export function canonicalJson(value: ConfigValue): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  const keys = Object.keys(value).sort()
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k] as ConfigValue)}`).join(',')}}`
}

/** sha256 of the canonical JSON, first 128 bits as base64url (22 characters). */
export function configId(document: ConfigObject): string {
  return createHash('sha256').update(canonicalJson(document)).digest().subarray(0, 16).toString('base64url')
}

/** A JSON object of plain JSON values, no deeper than CONFIG_MAX_DEPTH, at most maxBytes as canonical JSON. */
export function checkConfigDocument(value: unknown, maxBytes: number, field = 'config'): ConfigObject {
  if (!isRecord(value)) throw invalid(field, 'must be a JSON object')
  const walk = (node: unknown, depth: number): void => {
    if (node === null || typeof node === 'string' || typeof node === 'boolean') return
    if (typeof node === 'number') {
      if (!Number.isFinite(node)) throw invalid(field, 'numbers must be finite')
      return
    }
    if (depth > CONFIG_MAX_DEPTH) throw invalid(field, `nested deeper than ${CONFIG_MAX_DEPTH} levels`)
    if (Array.isArray(node)) return node.forEach((item) => walk(item, depth + 1))
    if (isRecord(node) && Object.getPrototypeOf(node) === Object.prototype) {
      for (const item of Object.values(node)) walk(item, depth + 1)
      return
    }
    throw invalid(field, 'must hold only JSON values')
  }
  walk(value, 1)
  const document = value as ConfigObject
  const bytes = Buffer.byteLength(canonicalJson(document))
  if (bytes > maxBytes) {
    throw invalid(
      field,
      `is ${bytes} bytes as JSON, the tenant allows at most ${maxBytes} (settings.configMaxBytes)`,
    )
  }
  return structuredClone(document)
}

const isObject = (value: ConfigValue | undefined): value is ConfigObject =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * Deep merge of the levels in order, later wins: objects merge key by key, anything else (arrays,
 * scalars, null) replaces what an earlier level had.
 */
export function mergeLevels(levels: readonly ConfigObject[]): ConfigObject {
  const merge = (base: ConfigObject, over: ConfigObject): ConfigObject => {
    const out: ConfigObject = { ...base }
    for (const [key, value] of Object.entries(over)) {
      const before = out[key]
      out[key] = isObject(before) && isObject(value) ? merge(before, value) : value
    }
    return out
  }
  return levels.reduce<ConfigObject>((merged, level) => merge(merged, level), {})
}

/** RFC 7396 JSON Merge Patch: null removes a key, objects merge, anything else replaces. */
export function applyMergePatch(target: ConfigValue, patch: ConfigValue): ConfigValue {
  if (!isObject(patch)) return patch
  const out: ConfigObject = isObject(target) ? { ...target } : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key]
    else out[key] = applyMergePatch(out[key] ?? null, value)
  }
  return out
}

/** Most configuration rules one tenant may have (every push evaluates all of them). */
export const CONFIG_RULES_MAX = 100
/** Pairs one rule's selector may have. */
export const CONFIG_RULE_SELECTOR_MAX = 16
/** What a rule's priority may be; higher merges later, so it wins. */
export const CONFIG_RULE_PRIORITY = { min: -1_000_000, max: 1_000_000 } as const

/** A rule's name: what an appVersion may be (1-64 of `A-Z a-z 0-9 . _ -`, starting with a letter or digit). */
export function checkRuleName(value: unknown, field = 'rule'): string {
  if (typeof value !== 'string' || !APP_VERSION_PATTERN.test(value)) {
    throw invalid(field, 'use 1-64 of A-Z a-z 0-9 . _ -, starting with a letter or digit')
  }
  return value
}

/**
 * A rule as written: `{selector, priority?, config}`. The selector is 1-16 label pairs, all of which a
 * device must have; priority a whole number (default 0); config a document within `maxBytes`.
 */
export function checkConfigRule(value: unknown, maxBytes: number): ConfigRuleSpec {
  if (!isRecord(value)) throw invalid('body', 'must be a JSON object {selector, priority?, config}')
  const fields = onlyKeys(value, ['selector', 'priority', 'config'], '')
  const selector = checkLabels(fields['selector'] ?? null, 'selector')
  const pairs = Object.keys(selector).length
  if (pairs === 0) {
    throw invalid('selector', 'name at least one label; the tenant default is for every device')
  }
  if (pairs > CONFIG_RULE_SELECTOR_MAX) {
    throw invalid('selector', `at most ${CONFIG_RULE_SELECTOR_MAX} labels`)
  }
  const priority = fields['priority'] ?? 0
  if (
    typeof priority !== 'number' ||
    !Number.isInteger(priority) ||
    priority < CONFIG_RULE_PRIORITY.min ||
    priority > CONFIG_RULE_PRIORITY.max
  ) {
    throw invalid(
      'priority',
      `must be a whole number from ${CONFIG_RULE_PRIORITY.min} to ${CONFIG_RULE_PRIORITY.max}`,
    )
  }
  if (fields['config'] === undefined) throw invalid('config', 'must be given: the document the rule sets')
  return { selector, priority, document: checkConfigDocument(fields['config'], maxBytes) }
}

type RuleParts = Pick<ConfigRule, 'name' | 'selector' | 'priority' | 'document'>

/** Rules in the order they merge: ascending priority, then name. */
export function ruleOrder(a: RuleParts, b: RuleParts): number {
  return a.priority - b.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
}

/** The rules (in merge order) whose every selector pair is among the labels. */
export function matchingRules<R extends RuleParts>(
  rules: readonly R[],
  labels: Readonly<Record<string, string>>,
): R[] {
  return [...rules]
    .filter((rule) => Object.entries(rule.selector).every(([key, value]) => labels[key] === value))
    .sort(ruleOrder)
}

/** The documents a device's configuration is made of; `app` absent for a device without appVersion. */
export interface ConfigParts {
  readonly tenant: Readonly<Record<string, unknown>>
  readonly app?: Readonly<Record<string, unknown>> | undefined
  readonly rules: readonly RuleParts[]
  readonly device: Readonly<Record<string, unknown>>
}

/** Tenant default, application version, the matching rules, device: merged in that order. */
export function effectiveDocument(
  parts: ConfigParts,
  labels: Readonly<Record<string, string>>,
): ConfigObject {
  return mergeLevels([
    parts.tenant,
    ...(parts.app === undefined ? [] : [parts.app]),
    ...matchingRules(parts.rules, labels).map((rule) => rule.document),
    parts.device,
  ] as ConfigObject[])
}

/** The parts of one device of `inputs` (loaded for it). */
export function partsOf(
  inputs: ConfigInputs,
  device: {
    readonly appVersion: string | null
    readonly own: { readonly document: Readonly<Record<string, unknown>> }
  },
): ConfigParts {
  return {
    tenant: inputs.tenant.document,
    app: device.appVersion === null ? undefined : (inputs.appVersions.get(device.appVersion)?.document ?? {}),
    rules: inputs.rules,
    device: device.own.document,
  }
}

const CONFIG_ID = /^[A-Za-z0-9_-]{22}$/

/**
 * A device's `config/applied` body: `{configId, statusCode?, reasonPhrase?}` (Kaa 7/CMP): statusCode
 * 200 (default) for applied, 400-599 for rejected; reasonPhrase at most 256 characters.
 */
export function checkConfigReport(value: unknown): ConfigReportInput {
  if (!isRecord(value)) throw invalid('body', 'must be a JSON object {configId, statusCode?, reasonPhrase?}')
  for (const key of Object.keys(value)) {
    if (!['configId', 'statusCode', 'reasonPhrase'].includes(key)) throw invalid(key, 'unknown field')
  }
  const { configId: id, statusCode = 200, reasonPhrase = null } = value
  if (typeof id !== 'string' || !CONFIG_ID.test(id)) {
    throw invalid('configId', 'must be the 22-character id of a configuration the device was sent')
  }
  if (
    typeof statusCode !== 'number' ||
    !Number.isInteger(statusCode) ||
    !(statusCode === 200 || (statusCode >= 400 && statusCode <= 599))
  ) {
    throw invalid('statusCode', 'must be 200 (applied) or 400-599 (rejected)')
  }
  if (reasonPhrase !== null && (typeof reasonPhrase !== 'string' || reasonPhrase.length > 256)) {
    throw invalid('reasonPhrase', 'must be a string of at most 256 characters')
  }
  return { configId: id, statusCode, reasonPhrase }
}
