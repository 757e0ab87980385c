// Input checks of route tables: bounded rules with unique names, what each matches (a channel or an
// MQTT-style filter, a type, device labels) and what each does. Failures are REGISTRY_INVALID
// naming the JSON path of the bad field (`rules[2].actions[0].name`).
import { EXTENSION_NAME, OWN_ATTRIBUTE_NAMES } from '../events/build.ts'
import { CHANNEL_MAX_LENGTH, isChannel } from '../events/ids.ts'
import { COPY_NAME } from '../events/topics.ts'
import type { RouteAction, RouteMatch, RouteRule } from './model.ts'
import { checkLabels, invalid, isRecord, onlyKeys } from './validate.ts'

export const ROUTE_LIMITS = {
  rules: 100,
  actionsPerRule: 16,
  matchLabels: 16,
  typeLength: 256,
  extensionValue: 256,
} as const

export const RULE_NAME_PATTERN = /^[a-z0-9-]{1,64}$/
export const REASON_PATTERN = /^[a-z0-9-]{1,64}$/
export const EXTENSION_NAME_PATTERN = EXTENSION_NAME
export const COPY_TOPIC_PATTERN = COPY_NAME
/** Printable ASCII, as CloudEvents producers write types (`com.example.reading.v1`). */
export const TYPE_PATTERN = /^[\x20-\x7e]{1,256}$/
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/

/**
 * Attributes a rule may not set or remove: the CloudEvents context attributes (spec §3.1) and the
 * ones Tributary derives from authentication and uses to key and trace events.
 */
export const PROTECTED_ATTRIBUTES: readonly string[] = [...OWN_ATTRIBUTE_NAMES, 'tracestate']

export const ROUTE_ACTIONS = [
  'drop',
  'reject',
  'set-extension',
  'remove-extension',
  'set-type',
  'set-subject',
  'copy',
] as const

/** A channel, or an MQTT-style filter of the same levels with `+` for one level and a last `#`. */
export function isChannelFilter(value: string): boolean {
  if (value.length > CHANNEL_MAX_LENGTH) return false
  const levels = value.split('/')
  if (levels.length > 8) return false
  const last = levels.length - 1
  const plain = levels
    .map((level, i) => (level === '+' || (level === '#' && i === last) ? 'x' : level))
    .join('/')
  return isChannel(plain)
}

function checkPattern(value: unknown, pattern: RegExp, field: string, rule: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) throw invalid(field, `must be ${rule}`)
  return value
}

function checkExtensionName(value: unknown, field: string): string {
  const name = checkPattern(
    value,
    EXTENSION_NAME_PATTERN,
    field,
    '1-20 of a-z 0-9 (CloudEvents attribute name)',
  )
  if (PROTECTED_ATTRIBUTES.includes(name)) {
    throw invalid(field, `${name} is a context attribute Tributary sets; a rule may not change it`)
  }
  return name
}

function checkMatch(value: unknown, field: string): RouteMatch {
  const input = onlyKeys(value, ['channel', 'type', 'labels'], field)
  const match: { channel?: string; type?: string; labels?: Record<string, string> } = {}
  const { channel, type, labels } = input
  if (channel !== undefined) {
    if (typeof channel !== 'string' || !isChannelFilter(channel)) {
      throw invalid(
        `${field}.channel`,
        'must be a channel (1-8 levels of A-Z a-z 0-9 . _ ~ - separated by /) or a filter with + for one level and a last # for the rest',
      )
    }
    match.channel = channel
  }
  if (type !== undefined)
    match.type = checkPattern(type, TYPE_PATTERN, `${field}.type`, '1-256 printable characters')
  if (labels !== undefined) {
    if (isRecord(labels) && Object.keys(labels).length > ROUTE_LIMITS.matchLabels) {
      throw invalid(`${field}.labels`, `at most ${ROUTE_LIMITS.matchLabels} labels`)
    }
    match.labels = checkLabels(labels, `${field}.labels`)
  }
  return match
}

function checkAction(value: unknown, field: string): RouteAction {
  if (!isRecord(value)) throw invalid(field, 'must be an object with an action')
  const action = value['action']
  const keys = (...names: string[]) => onlyKeys(value, ['action', ...names], field)
  switch (action) {
    case 'drop':
      keys()
      return { action }
    case 'reject':
      return {
        action,
        reason: checkPattern(
          keys('reason')['reason'],
          REASON_PATTERN,
          `${field}.reason`,
          '1-64 of a-z 0-9 -',
        ),
      }
    case 'set-extension': {
      const input = keys('name', 'value')
      const name = checkExtensionName(input['name'], `${field}.name`)
      const text = input['value']
      if (typeof text !== 'string' || text.length > ROUTE_LIMITS.extensionValue || CONTROL.test(text)) {
        throw invalid(
          `${field}.value`,
          `must be a string of at most ${ROUTE_LIMITS.extensionValue} characters, no control characters`,
        )
      }
      return { action, name, value: text }
    }
    case 'remove-extension':
      return { action, name: checkExtensionName(keys('name')['name'], `${field}.name`) }
    case 'set-type':
      return {
        action,
        type: checkPattern(keys('type')['type'], TYPE_PATTERN, `${field}.type`, '1-256 printable characters'),
      }
    case 'set-subject': {
      const subject = keys('subject')['subject']
      if (typeof subject !== 'string' || !isChannel(subject)) {
        throw invalid(
          `${field}.subject`,
          'must be a channel: 1-8 levels of A-Z a-z 0-9 . _ ~ - separated by /',
        )
      }
      return { action, subject }
    }
    case 'copy':
      return {
        action,
        topic: checkPattern(
          keys('topic')['topic'],
          COPY_TOPIC_PATTERN,
          `${field}.topic`,
          '1-32 of a-z 0-9 -',
        ),
      }
    default:
      throw invalid(`${field}.action`, `must be one of ${ROUTE_ACTIONS.join(', ')}`)
  }
}

function checkRule(value: unknown, field: string): RouteRule {
  const input = onlyKeys(value, ['name', 'match', 'actions'], field)
  const name = checkPattern(input['name'], RULE_NAME_PATTERN, `${field}.name`, '1-64 of a-z 0-9 -')
  if (input['match'] === undefined) throw invalid(`${field}.match`, 'is required ({} matches every event)')
  const match = checkMatch(input['match'], `${field}.match`)
  const actions = input['actions']
  if (!Array.isArray(actions) || actions.length < 1 || actions.length > ROUTE_LIMITS.actionsPerRule) {
    throw invalid(`${field}.actions`, `must be an array of 1-${ROUTE_LIMITS.actionsPerRule} actions`)
  }
  return { name, match, actions: actions.map((a: unknown, i) => checkAction(a, `${field}.actions[${i}]`)) }
}

/** The rules of a route table, checked and copied (unknown fields refused, nothing shared with the input). */
export function checkRouteRules(value: unknown, field = 'rules'): RouteRule[] {
  if (!Array.isArray(value) || value.length > ROUTE_LIMITS.rules) {
    throw invalid(field, `must be an array of at most ${ROUTE_LIMITS.rules} rules`)
  }
  const names = new Set<string>()
  return value.map((item: unknown, i) => {
    const rule = checkRule(item, `${field}[${i}]`)
    if (names.has(rule.name)) throw invalid(`${field}[${i}].name`, `${rule.name} names an earlier rule too`)
    names.add(rule.name)
    return rule
  })
}
