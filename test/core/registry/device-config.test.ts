// Desired configuration as data: canonical JSON, the content-hash id, level merging, merge patches
// and the document bound.
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { isTributaryError } from '../../../core/errors.ts'
import {
  applyMergePatch,
  canonicalJson,
  checkAppVersion,
  checkConfigDocument,
  checkConfigReport,
  checkConfigRule,
  checkRuleName,
  configId,
  configMaxBytes,
  effectiveDocument,
  matchingRules,
  mergeLevels,
} from '../../../core/registry/device-config.ts'

const refusal = (fn: () => unknown): string => {
  try {
    fn()
  } catch (err) {
    if (isTributaryError(err, 'REGISTRY_INVALID')) return err.message
    throw err
  }
  throw new Error('expected REGISTRY_INVALID')
}

describe('configuration ids', () => {
  it('hashes canonical JSON: key order does not matter, values do', () => {
    const a = { b: [1, { y: 2, x: 'é' }], a: null, c: { z: true, a: 1.5 } }
    const b = { c: { a: 1.5, z: true }, a: null, b: [1, { x: 'é', y: 2 }] }
    expect(canonicalJson(a)).toBe('{"a":null,"b":[1,{"x":"é","y":2}],"c":{"a":1.5,"z":true}}')
    expect(configId(a)).toBe(configId(b))
    expect(configId(a)).not.toBe(configId({ ...a, a: 0 }))
    // The id is the first 128 bits of sha256 over the canonical UTF-8, base64url: anyone can recompute it.
    const expected = createHash('sha256')
      .update(canonicalJson(a))
      .digest()
      .subarray(0, 16)
      .toString('base64url')
    expect(configId(a)).toBe(expected)
    expect(configId({})).toMatch(/^[A-Za-z0-9_-]{22}$/)
  })
})

describe('merging levels', () => {
  it('merges objects deeply; arrays, scalars and null from a later level replace', () => {
    const merged = mergeLevels([
      { rate: 10, net: { host: 'a', port: 1, tls: { on: true } }, list: [1, 2], gone: 1 },
      { net: { port: 2, tls: { ca: 'x' } }, list: [3] },
      { net: { host: 'b' }, gone: null, rate: { per: 's' } },
    ])
    expect(merged).toEqual({
      rate: { per: 's' },
      net: { host: 'b', port: 2, tls: { on: true, ca: 'x' } },
      list: [3],
      gone: null,
    })
  })
})

describe('JSON merge patch (RFC 7396)', () => {
  it('follows the examples of RFC 7396 appendix A', () => {
    expect(applyMergePatch({ a: 'b' }, { a: 'c' })).toEqual({ a: 'c' })
    expect(applyMergePatch({ a: 'b' }, { b: 'c' })).toEqual({ a: 'b', b: 'c' })
    expect(applyMergePatch({ a: 'b' }, { a: null })).toEqual({})
    expect(applyMergePatch({ a: 'b', b: 'c' }, { a: null })).toEqual({ b: 'c' })
    expect(applyMergePatch({ a: ['b'] }, { a: 'c' })).toEqual({ a: 'c' })
    expect(applyMergePatch({ a: { b: 'c' } }, { a: { b: 'd', c: null } })).toEqual({ a: { b: 'd' } })
    expect(applyMergePatch({ a: [{ b: 'c' }] }, { a: [1] })).toEqual({ a: [1] })
    expect(applyMergePatch({ e: null }, { a: 1 })).toEqual({ e: null, a: 1 })
    expect(applyMergePatch({}, { a: { bb: { ccc: null } } })).toEqual({ a: { bb: {} } })
  })
})

describe('document checks', () => {
  it('takes a JSON object within the bound and refuses anything else with a reason', () => {
    expect(checkConfigDocument({ a: [1, { b: null }] }, 100)).toEqual({ a: [1, { b: null }] })
    expect(refusal(() => checkConfigDocument([1], 100))).toMatch(/config: must be a JSON object/)
    expect(refusal(() => checkConfigDocument('x', 100))).toMatch(/JSON object/)
    expect(refusal(() => checkConfigDocument({ a: 'x'.repeat(100) }, 100))).toMatch(
      /is 108 bytes as JSON, the tenant allows at most 100 \(settings.configMaxBytes\)/,
    )
    expect(refusal(() => checkConfigDocument({ a: Number.NaN }, 100))).toMatch(/finite/)
    let deep: Record<string, unknown> = {}
    for (let i = 0; i < 40; i++) deep = { d: deep }
    expect(refusal(() => checkConfigDocument(deep, 10_000))).toMatch(/nested deeper than 32/)
  })

  it('reads the bound from the tenant settings, 64 KiB by default', () => {
    expect(configMaxBytes({})).toBe(65_536)
    expect(configMaxBytes({ configMaxBytes: 1024 })).toBe(1024)
  })

  it('takes appVersions that fit a topic level', () => {
    expect(checkAppVersion('v1.2.3-rc_1')).toBe('v1.2.3-rc_1')
    for (const bad of ['', 'a/b', 'a+b', '#', '.v1', 'x'.repeat(65), 1]) {
      expect(refusal(() => checkAppVersion(bad))).toMatch(/appVersion: use 1-64/)
    }
  })
})

describe('label-selector rules', () => {
  const rule = (name: string, selector: Record<string, string>, priority: number, document = {}) => ({
    name,
    selector,
    priority,
    document,
  })

  it('matches a device carrying every selector label, in priority then name order', () => {
    const rules = [
      rule('b', { region: 'eu' }, 1),
      rule('a', { region: 'eu' }, 1),
      rule('low', { tier: 'gold' }, -5),
      rule('both', { region: 'eu', tier: 'gold' }, 0),
      rule('us', { region: 'us' }, 0),
    ]
    const names = (labels: Record<string, string>) => matchingRules(rules, labels).map((r) => r.name)
    expect(names({ region: 'eu', tier: 'gold', site: 'x' })).toEqual(['low', 'both', 'a', 'b'])
    expect(names({ region: 'eu' })).toEqual(['a', 'b'])
    // A label with the right key and another value, or an empty value, does not match.
    expect(names({ region: 'EU', tier: '' })).toEqual([])
    expect(names({})).toEqual([])
  })

  it('merges tenant, application version, matching rules, device: later wins', () => {
    const parts = {
      tenant: { ntp: 'pool', rate: 1, led: { colour: 'red', blink: true } },
      app: { rate: 2 },
      rules: [
        rule('gold', { tier: 'gold' }, 1, { rate: 3, led: { colour: 'gold' } }),
        rule('eu', { region: 'eu' }, 0, { ntp: 'eu', rate: 4 }),
      ],
      device: { led: { blink: false } },
    }
    expect(effectiveDocument(parts, { region: 'eu', tier: 'gold' })).toEqual({
      ntp: 'eu',
      rate: 3,
      led: { colour: 'gold', blink: false },
    })
    expect(effectiveDocument(parts, { region: 'eu' })).toEqual({
      ntp: 'eu',
      rate: 4,
      led: { colour: 'red', blink: false },
    })
    expect(effectiveDocument({ ...parts, app: undefined }, {})).toEqual({
      ntp: 'pool',
      rate: 1,
      led: { colour: 'red', blink: false },
    })
  })

  it('checks a rule body: selector, priority, document and unknown fields', () => {
    expect(checkConfigRule({ selector: { region: 'eu' }, config: { a: 1 } }, 100)).toEqual({
      selector: { region: 'eu' },
      priority: 0,
      document: { a: 1 },
    })
    expect(checkConfigRule({ selector: { r: 'x' }, priority: -3, config: {} }, 100).priority).toBe(-3)
    expect(refusal(() => checkConfigRule([], 100))).toMatch(/body: must be a JSON object/)
    expect(refusal(() => checkConfigRule({ selector: {}, config: {} }, 100))).toMatch(/at least one label/)
    expect(refusal(() => checkConfigRule({ config: {} }, 100))).toMatch(/selector/)
    expect(refusal(() => checkConfigRule({ selector: { r: 1 }, config: {} }, 100))).toMatch(/selector\.r/)
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, 'v']))
    expect(refusal(() => checkConfigRule({ selector: many, config: {} }, 100))).toMatch(/at most 16/)
    expect(refusal(() => checkConfigRule({ selector: { r: 'x' }, priority: 1.5, config: {} }, 100))).toMatch(
      /priority/,
    )
    expect(refusal(() => checkConfigRule({ selector: { r: 'x' }, priority: 2e6, config: {} }, 100))).toMatch(
      /priority/,
    )
    expect(refusal(() => checkConfigRule({ selector: { r: 'x' } }, 100))).toMatch(/config: must be given/)
    expect(
      refusal(() => checkConfigRule({ selector: { r: 'x' }, config: { big: 'x'.repeat(200) } }, 100)),
    ).toMatch(/at most 100/)
    expect(refusal(() => checkConfigRule({ selector: { r: 'x' }, config: {}, extra: 1 }, 100))).toMatch(
      /extra.*unknown field/,
    )
  })

  it('names rules like application versions', () => {
    expect(checkRuleName('eu-gateways.v2')).toBe('eu-gateways.v2')
    for (const bad of ['', '-x', 'a/b', 'x'.repeat(65), 7])
      expect(refusal(() => checkRuleName(bad))).toMatch(/rule/)
  })
})

describe('device reports', () => {
  const id = 'q3Jm2cH1yF8x0eZ4b7QK9w'
  it('takes {configId, statusCode?, reasonPhrase?}, statusCode 200 by default', () => {
    expect(checkConfigReport({ configId: id })).toEqual({ configId: id, statusCode: 200, reasonPhrase: null })
    expect(checkConfigReport({ configId: id, statusCode: 409, reasonPhrase: 'busy' })).toEqual({
      configId: id,
      statusCode: 409,
      reasonPhrase: 'busy',
    })
  })

  it('refuses anything else, naming the field', () => {
    expect(refusal(() => checkConfigReport([]))).toMatch(/^body: /)
    expect(refusal(() => checkConfigReport({ configId: 'short' }))).toMatch(/^configId: /)
    expect(refusal(() => checkConfigReport({ configId: id, extra: 1 }))).toMatch(/^extra: unknown field/)
    for (const statusCode of [201, 399, 600, '200', 200.5]) {
      expect(refusal(() => checkConfigReport({ configId: id, statusCode }))).toMatch(/^statusCode: /)
    }
    expect(refusal(() => checkConfigReport({ configId: id, reasonPhrase: 'x'.repeat(257) }))).toMatch(
      /^reasonPhrase: /,
    )
  })
})
