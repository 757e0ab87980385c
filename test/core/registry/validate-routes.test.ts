// Route table input: bounded rules with unique names, every match field and every action checked,
// and each failure REGISTRY_INVALID naming the JSON path of the bad field.
import { describe, expect, it } from 'vitest'
import { isTributaryError } from '../../../core/errors.ts'
import {
  PROTECTED_ATTRIBUTES,
  checkRouteRules,
  isChannelFilter,
} from '../../../core/registry/validate-routes.ts'

/** Runs `fn`, expects REGISTRY_INVALID, and returns the field it names (the message starts with it). */
function invalidField(fn: () => unknown): unknown {
  try {
    fn()
  } catch (err) {
    if (!isTributaryError(err, 'REGISTRY_INVALID')) throw err
    expect(err.status).toBe(400)
    const field = err.details?.['field']
    expect(err.message.startsWith(`${String(field)}: `), err.message).toBe(true)
    expect(err.details?.['reason']).toEqual(expect.any(String))
    return field
  }
  throw new Error('expected REGISTRY_INVALID')
}

const rule = (over: Record<string, unknown> = {}) => ({
  name: 'r',
  match: {},
  actions: [{ action: 'drop' }],
  ...over,
})
const withAction = (action: Record<string, unknown>) => [rule({ actions: [action] })]
const actionField = (action: Record<string, unknown>) =>
  invalidField(() => checkRouteRules(withAction(action)))

describe('route rules', () => {
  it('accepts every action and match field, and returns a copy of exactly what it checked', () => {
    const input = [
      {
        name: 'alerts',
        match: { channel: 'alerts/#', type: 'io.tributary.telemetry.v1', labels: { site: 'north' } },
        actions: [
          { action: 'set-extension', name: 'severity', value: 'high' },
          { action: 'remove-extension', name: 'debug' },
          { action: 'set-type', type: 'com.example.alert.v1' },
          { action: 'set-subject', subject: 'alerts/all' },
          { action: 'copy', topic: 'alerts' },
        ],
      },
      {
        name: 'no-tests',
        match: { labels: { kind: 'test' } },
        actions: [{ action: 'reject', reason: 'test-device' }],
      },
      { name: 'drop-all-debug', match: { channel: '+/debug' }, actions: [{ action: 'drop' }] },
      { name: 'everything', match: {}, actions: [{ action: 'set-extension', name: 'seen', value: '' }] },
    ]
    const checked = checkRouteRules(input)
    expect(checked).toEqual(input)
    expect(checked[0]).not.toBe(input[0])
    expect(checked[0]?.match).not.toBe(input[0]?.match)
    expect(checkRouteRules([])).toEqual([])
  })

  it('bounds the table: an array of at most 100 rules with unique names of a-z 0-9 -', () => {
    const many = Array.from({ length: 100 }, (_, i) => rule({ name: `r-${i}` }))
    expect(checkRouteRules(many)).toHaveLength(100)
    expect(invalidField(() => checkRouteRules([...many, rule({ name: 'one-more' })]))).toBe('rules')
    expect(invalidField(() => checkRouteRules({ rules: [] }))).toBe('rules')
    expect(invalidField(() => checkRouteRules([rule(), rule({ name: 'b' }), rule()]))).toBe('rules[2].name')
    for (const name of ['', 'Upper', 'under_score', 'x'.repeat(65), 7, undefined]) {
      expect(invalidField(() => checkRouteRules([rule({ name })]))).toBe('rules[0].name')
    }
    expect(checkRouteRules([rule({ name: 'a'.repeat(64) })])[0]?.name).toHaveLength(64)
    expect(invalidField(() => checkRouteRules(['drop']))).toBe('rules[0]')
    expect(invalidField(() => checkRouteRules([rule({ when: {} })]))).toBe('rules[0].when')
  })

  it('needs a match object with only channel, type and labels', () => {
    expect(invalidField(() => checkRouteRules([{ name: 'r', actions: [{ action: 'drop' }] }]))).toBe(
      'rules[0].match',
    )
    expect(invalidField(() => checkRouteRules([rule({ match: [] })]))).toBe('rules[0].match')
    expect(invalidField(() => checkRouteRules([rule({ match: { device: 'd1' } })]))).toBe(
      'rules[0].match.device',
    )
  })

  it('matches channels or MQTT-style filters: + for one level, # only last', () => {
    for (const channel of ['telemetry', 'telemetry/temp', '+', '#', 'a/+/c', 'a/#', '+/+/#', 'a.b~c_d-e']) {
      expect(checkRouteRules([rule({ match: { channel } })])[0]?.match.channel).toBe(channel)
    }
    for (const channel of ['', '/a', 'a/', 'a//b', '#/a', 'a/#/b', 'a+', 'a/b#', 'a b', 'x'.repeat(257), 3]) {
      expect(invalidField(() => checkRouteRules([rule({ match: { channel } })]))).toBe(
        'rules[0].match.channel',
      )
    }
    expect(invalidField(() => checkRouteRules([rule({ match: { channel: 'a/b/c/d/e/f/g/h/i' } })]))).toBe(
      'rules[0].match.channel',
    )
  })

  it('matches types of 1-256 printable characters and at most 16 labels', () => {
    expect(checkRouteRules([rule({ match: { type: 't'.repeat(256) } })])).toHaveLength(1)
    for (const type of ['', 't'.repeat(257), 'tab\there', 'é', null]) {
      expect(invalidField(() => checkRouteRules([rule({ match: { type } })]))).toBe('rules[0].match.type')
    }
    const labels = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']))
    expect(invalidField(() => checkRouteRules([rule({ match: { labels } })]))).toBe('rules[0].match.labels')
    expect(invalidField(() => checkRouteRules([rule({ match: { labels: { 'bad key': 'v' } } })]))).toBe(
      'rules[0].match.labels.bad key',
    )
    expect(invalidField(() => checkRouteRules([rule({ match: { labels: { k: 1 } } })]))).toBe(
      'rules[0].match.labels.k',
    )
  })

  it('needs 1-16 actions per rule, each of a known kind with exactly its fields', () => {
    expect(invalidField(() => checkRouteRules([rule({ actions: [] })]))).toBe('rules[0].actions')
    const seventeen = Array.from({ length: 17 }, () => ({ action: 'drop' }))
    expect(invalidField(() => checkRouteRules([rule({ actions: seventeen })]))).toBe('rules[0].actions')
    expect(checkRouteRules([rule({ actions: seventeen.slice(1) })])[0]?.actions).toHaveLength(16)
    expect(actionField({ action: 'explode' })).toBe('rules[0].actions[0].action')
    expect(actionField({})).toBe('rules[0].actions[0].action')
    expect(invalidField(() => checkRouteRules([rule({ actions: ['drop'] })]))).toBe('rules[0].actions[0]')
    expect(actionField({ action: 'drop', reason: 'x' })).toBe('rules[0].actions[0].reason')
    expect(actionField({ action: 'copy', topic: 'a', type: 'b' })).toBe('rules[0].actions[0].type')
  })

  it('checks reasons, types, subjects and copy topics', () => {
    expect(actionField({ action: 'reject' })).toBe('rules[0].actions[0].reason')
    expect(actionField({ action: 'reject', reason: 'Not-Lower' })).toBe('rules[0].actions[0].reason')
    expect(actionField({ action: 'reject', reason: 'r'.repeat(65) })).toBe('rules[0].actions[0].reason')
    expect(actionField({ action: 'set-type', type: '' })).toBe('rules[0].actions[0].type')
    expect(actionField({ action: 'set-type', type: 'x'.repeat(257) })).toBe('rules[0].actions[0].type')
    expect(actionField({ action: 'set-subject', subject: 'a/+' })).toBe('rules[0].actions[0].subject')
    expect(actionField({ action: 'set-subject', subject: '' })).toBe('rules[0].actions[0].subject')
    expect(actionField({ action: 'copy', topic: 'Alerts' })).toBe('rules[0].actions[0].topic')
    expect(actionField({ action: 'copy', topic: 'a.b' })).toBe('rules[0].actions[0].topic')
    expect(actionField({ action: 'copy', topic: 't'.repeat(33) })).toBe('rules[0].actions[0].topic')
    expect(checkRouteRules(withAction({ action: 'copy', topic: 't'.repeat(32) }))).toHaveLength(1)
  })

  it('sets and removes only extension attributes: CloudEvents names, never a protected attribute', () => {
    for (const name of PROTECTED_ATTRIBUTES) {
      expect(actionField({ action: 'set-extension', name, value: 'x' })).toBe('rules[0].actions[0].name')
      expect(actionField({ action: 'remove-extension', name })).toBe('rules[0].actions[0].name')
    }
    for (const name of ['', 'Upper', 'with-dash', 'x'.repeat(21), 1]) {
      expect(actionField({ action: 'set-extension', name, value: 'x' })).toBe('rules[0].actions[0].name')
    }
    expect(actionField({ action: 'set-extension', name: 'ok', value: 'v'.repeat(257) })).toBe(
      'rules[0].actions[0].value',
    )
    expect(actionField({ action: 'set-extension', name: 'ok', value: 'line\nbreak' })).toBe(
      'rules[0].actions[0].value',
    )
    expect(actionField({ action: 'set-extension', name: 'ok' })).toBe('rules[0].actions[0].value')
    expect(
      checkRouteRules(withAction({ action: 'set-extension', name: 'x'.repeat(20), value: 'v'.repeat(256) })),
    ).toHaveLength(1)
  })

  it('names the path of a deep failure in its message', () => {
    const rules = [
      rule({ name: 'a' }),
      rule({ name: 'b' }),
      rule({ name: 'c', actions: [{ action: 'drop' }, { action: 'set-extension', name: 'id', value: '1' }] }),
    ]
    try {
      checkRouteRules(rules)
      throw new Error('expected a failure')
    } catch (err) {
      expect(String((err as Error).message)).toMatch(
        /^rules\[2\]\.actions\[1\]\.name: id is a context attribute/,
      )
    }
  })
})

describe('channel filters', () => {
  it('are channels with + and a last # as levels', () => {
    expect(isChannelFilter('a/+/#')).toBe(true)
    expect(isChannelFilter('a/+b')).toBe(false)
    expect(isChannelFilter('#/#')).toBe(false)
  })
})
