// The route step: a tenant's rules in order, every matching rule's actions applied to the event as
// modified so far, without touching the input event or the attributes Tributary owns.
import { describe, expect, it } from 'vitest'
import type { CloudEvent } from '../../../core/events/cloudevent.ts'
import type { RouteAction, RouteMatch, RouteRule, RouteTable } from '../../../core/registry/model.ts'
import type { StepResult } from '../../../processors/step.ts'
import { createRoute, routeReasons } from '../../../processors/steps/route.ts'
import { deviceRow } from '../fixtures.ts'
import { ctx, event, versioned } from './events.ts'

const rule = (name: string, match: RouteMatch, ...actions: RouteAction[]): RouteRule => ({
  name,
  match,
  actions,
})

/** A step over fixed tables and devices; `deviceLookups` counts findDevice calls. */
function harness(rules: RouteRule[] | undefined, tenant = 'acme') {
  const tables: RouteTable[] = rules === undefined ? [] : [{ tenant, rules, ...versioned }]
  const devices = [
    deviceRow('acme', 'd1', { labels: { site: 'north', kind: 'sensor' } }),
    deviceRow('acme', 'd2', { labels: { site: 'south' } }),
    deviceRow('beta', 'd1', { labels: { site: 'north', kind: 'sensor' } }),
  ]
  const deviceLookups: string[] = []
  const step = createRoute({
    routeTable: async (t) => tables.find((x) => x.tenant === t),
    findDevice: async (t, d) => {
      deviceLookups.push(`${t}/${d}`)
      return devices.find((x) => x.tenant === t && x.id === d)
    },
  })
  return { step, deviceLookups }
}

/** The event a continue result carries (or the input, when it carries none). */
function after(result: StepResult, input: CloudEvent): CloudEvent {
  if (result.kind !== 'continue') throw new Error(`expected continue, got ${result.kind}`)
  return result.event ?? input
}

const input = event({ subject: 'sensors/n1/temp', extensions: { region: 'eu' } })
const frozen = { attributes: { ...input.attributes }, data: Buffer.from(input.data ?? '') }

describe('route', () => {
  it('lets events of a tenant without rules continue untouched, looking no device up', async () => {
    for (const rules of [undefined, []]) {
      const { step, deviceLookups } = harness(rules)
      expect(await step(input, ctx)).toStrictEqual({ kind: 'continue' })
      expect(deviceLookups).toEqual([])
    }
  })

  it('uses only the event’s own tenant’s rules', async () => {
    const { step } = harness([rule('all', {}, { action: 'drop' })], 'beta')
    expect(await step(input, ctx)).toStrictEqual({ kind: 'continue' })
    expect(await step(event({ tenant: 'beta' }), ctx)).toEqual({ kind: 'drop' })
    expect(await step(event({ attributes: { tenant: undefined } }), ctx)).toStrictEqual({ kind: 'continue' })
  })

  it('lets an event no rule matches continue untouched', async () => {
    const { step } = harness([rule('other', { channel: 'other/#' }, { action: 'drop' })])
    expect(await step(input, ctx)).toStrictEqual({ kind: 'continue' })
  })

  describe('matching', () => {
    it.each([
      ['an empty match', {}, true],
      ['the exact channel', { channel: 'sensors/n1/temp' }, true],
      ['another channel', { channel: 'sensors/n1' }, false],
      ['a + filter', { channel: 'sensors/+/temp' }, true],
      ['a # filter', { channel: 'sensors/#' }, true],
      ['a filter for other channels', { channel: 'sensors/+/hum' }, false],
      ['the type', { type: 'io.tributary.telemetry.v1' }, true],
      ['another type', { type: 'io.tributary.command.v1' }, false],
      ['one label', { labels: { site: 'north' } }, true],
      ['every label', { labels: { site: 'north', kind: 'sensor' } }, true],
      ['a label with another value', { labels: { site: 'south' } }, false],
      ['a label the device lacks', { labels: { floor: '1' } }, false],
      ['some labels but not all', { labels: { site: 'north', floor: '1' } }, false],
      ['an inherited property as a label', { labels: { constructor: 'x' } }, false],
      [
        'channel, type and labels',
        { channel: 'sensors/#', type: 'io.tributary.telemetry.v1', labels: { kind: 'sensor' } },
        true,
      ],
      [
        'channel and type, wrong labels',
        { channel: 'sensors/#', type: 'io.tributary.telemetry.v1', labels: { kind: 'gw' } },
        false,
      ],
    ] as const)('%s → %s', async (_name, match, matches) => {
      const { step } = harness([rule('r', match, { action: 'drop' })])
      expect((await step(input, ctx)).kind).toBe(matches ? 'drop' : 'continue')
    })

    it('never matches a channel filter on an event without a subject', async () => {
      const { step } = harness([rule('r', { channel: '#' }, { action: 'drop' })])
      expect(await step(event({ subject: undefined }), ctx)).toStrictEqual({ kind: 'continue' })
    })

    it('looks the device up only for label rules, and once per event', async () => {
      const { step, deviceLookups } = harness([
        rule('no-labels', { channel: 'sensors/#' }, { action: 'set-extension', name: 'a', value: '1' }),
        rule('site', { labels: { site: 'north' } }, { action: 'set-extension', name: 'b', value: '1' }),
        rule('kind', { labels: { kind: 'sensor' } }, { action: 'set-extension', name: 'c', value: '1' }),
      ])
      const out = after(await step(input, ctx), input)
      expect([out.attributes['a'], out.attributes['b'], out.attributes['c']]).toEqual(['1', '1', '1'])
      expect(deviceLookups).toEqual(['acme/d1'])
      const quiet = harness([rule('no-labels', { channel: 'sensors/#' }, { action: 'drop' })])
      await quiet.step(input, ctx)
      expect(quiet.deviceLookups).toEqual([])
    })

    it('does not look the device up when a cheaper field already failed', async () => {
      const { step, deviceLookups } = harness([
        rule('r', { channel: 'other', labels: { site: 'north' } }, { action: 'drop' }),
      ])
      expect(await step(input, ctx)).toStrictEqual({ kind: 'continue' })
      expect(deviceLookups).toEqual([])
    })

    it('matches no labels for an unknown device', async () => {
      const { step, deviceLookups } = harness([rule('r', { labels: { site: 'north' } }, { action: 'drop' })])
      expect(await step(event({ device: 'ghost' }), ctx)).toStrictEqual({ kind: 'continue' })
      expect(deviceLookups).toEqual(['acme/ghost'])
    })

    it('matches on the device’s labels within the event’s tenant only', async () => {
      const { step } = harness([rule('r', { labels: { site: 'south' } }, { action: 'drop' })])
      expect(await step(event({ device: 'd2' }), ctx)).toEqual({ kind: 'drop' })
      expect(await step(event({ device: 'd1' }), ctx)).toStrictEqual({ kind: 'continue' })
    })
  })

  describe('actions', () => {
    it('sets, replaces and removes extension attributes on a new event', async () => {
      const { step } = harness([
        rule(
          'r',
          {},
          { action: 'set-extension', name: 'zone', value: 'z1' },
          { action: 'set-extension', name: 'region', value: 'us' },
          { action: 'remove-extension', name: 'zone' },
          { action: 'set-extension', name: 'line', value: '7' },
        ),
      ])
      const out = after(await step(input, ctx), input)
      expect(out).not.toBe(input)
      expect(out.attributes).toEqual({ ...input.attributes, region: 'us', line: '7' })
      expect('zone' in out.attributes).toBe(false)
      expect(out.data).toBe(input.data)
      expect(input).toEqual(frozen)
    })

    it('removing an extension the event lacks changes nothing', async () => {
      const { step } = harness([rule('r', {}, { action: 'remove-extension', name: 'absent' })])
      expect(await step(input, ctx)).toStrictEqual({ kind: 'continue' })
    })

    it('changes type and subject, leaving everything else as it was', async () => {
      const { step } = harness([
        rule(
          'r',
          {},
          { action: 'set-type', type: 'com.acme.reading.v2' },
          { action: 'set-subject', subject: 'readings/temp' },
        ),
      ])
      const out = after(await step(input, ctx), input)
      expect(out.attributes).toEqual({
        ...input.attributes,
        type: 'com.acme.reading.v2',
        subject: 'readings/temp',
      })
      expect(input).toEqual(frozen)
    })

    it('later rules match the event as earlier rules changed it', async () => {
      const { step } = harness([
        rule(
          'retype',
          { channel: 'sensors/#' },
          { action: 'set-type', type: 'com.acme.t' },
          { action: 'set-subject', subject: 'moved' },
        ),
        rule(
          'old-type',
          { type: 'io.tributary.telemetry.v1' },
          { action: 'set-extension', name: 'old', value: '1' },
        ),
        rule('old-channel', { channel: 'sensors/#' }, { action: 'set-extension', name: 'oldch', value: '1' }),
        rule(
          'new-type',
          { type: 'com.acme.t', channel: 'moved' },
          { action: 'set-extension', name: 'seen', value: 'yes' },
        ),
      ])
      const out = after(await step(input, ctx), input)
      expect(out.attributes['seen']).toBe('yes')
      expect(out.attributes['old']).toBeUndefined()
      expect(out.attributes['oldch']).toBeUndefined()
    })

    it('drops, ignoring later actions and rules', async () => {
      const { step } = harness([
        rule(
          'first',
          {},
          { action: 'copy', topic: 'archive' },
          { action: 'drop' },
          { action: 'reject', reason: 'never' },
        ),
        rule('second', {}, { action: 'reject', reason: 'never' }),
      ])
      expect(await step(input, ctx)).toStrictEqual({ kind: 'drop' })
    })

    it('rejects with the rule’s reason, naming the rule in the detail', async () => {
      const { step } = harness([
        rule('tag', {}, { action: 'set-extension', name: 'x', value: '1' }),
        rule('no-test-devices', { labels: { kind: 'sensor' } }, { action: 'reject', reason: 'test-device' }),
        rule('later', {}, { action: 'drop' }),
      ])
      expect(await step(input, ctx)).toStrictEqual({
        kind: 'reject',
        reason: 'test-device',
        detail: '{"rule":"no-test-devices"}',
      })
    })

    it('collects copies of every matching rule, deduplicated in order, with the changed event', async () => {
      const { step } = harness([
        rule('a', {}, { action: 'copy', topic: 'archive' }, { action: 'copy', topic: 'alerts' }),
        rule('skip', { channel: 'other' }, { action: 'copy', topic: 'never' }),
        rule(
          'b',
          {},
          { action: 'copy', topic: 'alerts' },
          { action: 'set-extension', name: 'x', value: '1' },
        ),
        rule('c', {}, { action: 'copy', topic: 'archive' }, { action: 'copy', topic: 'bi' }),
      ])
      const result = await step(input, ctx)
      expect(result).toMatchObject({ kind: 'continue', copyTo: ['archive', 'alerts', 'bi'] })
      expect(after(result, input).attributes['x']).toBe('1')
    })

    it('copies an unchanged event as it is', async () => {
      const { step } = harness([rule('a', {}, { action: 'copy', topic: 'archive' })])
      expect(await step(input, ctx)).toStrictEqual({ kind: 'continue', event: input, copyTo: ['archive'] })
    })
  })

  describe('attributes rules may not change', () => {
    const owned = (
      'id source specversion type subject time datacontenttype dataschema data ' +
      'tenant device sender protocol partitionkey traceparent tracestate'
    ).split(' ')

    it.each(
      owned.flatMap((name) => [
        [`set-extension ${name}`, { action: 'set-extension', name, value: 'evil' } as const],
        [`remove-extension ${name}`, { action: 'remove-extension', name } as const],
      ]),
    )('refuses %s as route-unusable, changing nothing', async (_name, action) => {
      const { step } = harness([rule('bad', {}, action)])
      const result = await step(input, ctx)
      expect(result).toMatchObject({ kind: 'reject', reason: 'route-unusable' })
      expect(result.kind === 'reject' && JSON.parse(result.detail ?? '{}')).toMatchObject({ rule: 'bad' })
      expect(input).toEqual(frozen)
    })

    it.each([
      ['an upper-case extension name', { action: 'set-extension', name: 'Zone', value: '1' }],
      ['a long extension name', { action: 'set-extension', name: 'a'.repeat(21), value: '1' }],
      ['an empty extension name', { action: 'remove-extension', name: '' }],
      ['an empty type', { action: 'set-type', type: '' }],
      ['a subject that is not a channel', { action: 'set-subject', subject: 'a//b' }],
      ['a wildcard subject', { action: 'set-subject', subject: 'a/#' }],
    ] as const)('refuses %s as route-unusable', async (_name, action) => {
      const { step } = harness([rule('bad', {}, { action: 'set-extension', name: 'ok', value: '1' }, action)])
      expect(await step(input, ctx)).toMatchObject({ kind: 'reject', reason: 'route-unusable' })
    })
  })

  it('gives route-unusable besides the rules’ own reasons', () => {
    expect(routeReasons).toEqual(['route-unusable'])
  })

  it('lets a registry failure through, so the batch is retried', async () => {
    const failing = createRoute({
      routeTable: () => Promise.reject(new Error('registry down')),
      findDevice: async () => undefined,
    })
    await expect(failing(input, ctx)).rejects.toThrow('registry down')
  })
})
