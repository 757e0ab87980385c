// The runner: steps in order, each on the event as the previous ones left it, the first terminal
// result wins, continue-through means accept; copies accumulate; reject details stay bounded.
import { describe, expect, it } from 'vitest'
import type { CloudEvent } from '../../core/events/cloudevent.ts'
import type { NamedStep, StepResult } from '../../processors/step.ts'
import {
  accept,
  DETAIL_MAX_BYTES,
  drop,
  next,
  proceed,
  reject,
  runSteps,
  truncateDetail,
} from '../../processors/step.ts'
import { ctx, telemetry } from './fixtures.ts'

function recording(name: string, result: StepResult, seen: string[]): NamedStep {
  return {
    name,
    run: () => {
      seen.push(name)
      return result
    },
  }
}

/** A step that records the event it was given and answers `result`. */
function observing(name: string, result: StepResult, seen: CloudEvent[]): NamedStep {
  return {
    name,
    run: (event) => {
      seen.push(event)
      return result
    },
  }
}

const retyped = (event: CloudEvent, type: string): CloudEvent => ({
  attributes: { ...event.attributes, type },
  data: event.data,
})

describe('runSteps', () => {
  const event = telemetry('acme', 'd1')

  it('accepts an event every step lets continue, running them all in order', async () => {
    const seen: string[] = []
    const verdict = await runSteps([recording('a', next, seen), recording('b', next, seen)], event, ctx)
    expect(verdict).toEqual({ kind: 'accept', step: undefined, event, copies: [] })
    expect(verdict.kind === 'accept' && verdict.event).toBe(event)
    expect(seen).toEqual(['a', 'b'])
  })

  it.each([
    ['accept', accept, { kind: 'accept', step: 'b', event, copies: [] }],
    ['drop', drop, { kind: 'drop', step: 'b' }],
    ['reject', reject('nope'), { kind: 'reject', step: 'b', reason: 'nope' }],
  ] as const)('stops at the first terminal result (%s)', async (_name, result, expected) => {
    const seen: string[] = []
    const steps = [recording('a', next, seen), recording('b', result, seen), recording('c', next, seen)]
    expect(await runSteps(steps, event, ctx)).toStrictEqual(expected)
    expect(seen).toEqual(['a', 'b'])
  })

  it('awaits asynchronous steps and lets their failures through (the batch is retried)', async () => {
    const failing: NamedStep = { name: 'x', run: () => Promise.reject(new Error('registry down')) }
    await expect(runSteps([failing], event, ctx)).rejects.toThrow('registry down')
    const later: NamedStep = { name: 'y', run: async () => reject('late') }
    expect(await runSteps([later], event, ctx)).toEqual({ kind: 'reject', step: 'y', reason: 'late' })
  })

  it('threads a replaced event through later steps and accepts the last one', async () => {
    const changed = retyped(event, 'x.changed')
    const seen: CloudEvent[] = []
    const steps = [
      observing('a', proceed(changed), seen),
      observing('b', next, seen),
      observing('c', next, seen),
    ]
    const verdict = await runSteps(steps, event, ctx)
    expect(seen[0]).toBe(event)
    expect(seen[1]).toBe(changed)
    expect(seen[2]).toBe(changed)
    expect(verdict).toEqual({ kind: 'accept', step: undefined, event: changed, copies: [] })
    expect(event.attributes.type).toBe('io.tributary.telemetry.v1')
  })

  it('gives an accepting step’s verdict the current event and the copies so far', async () => {
    const changed = retyped(event, 'x.changed')
    const verdict = await runSteps(
      [
        { name: 'a', run: () => proceed(changed, ['archive']) },
        { name: 'b', run: () => accept },
      ],
      event,
      ctx,
    )
    expect(verdict).toEqual({ kind: 'accept', step: 'b', event: changed, copies: ['archive'] })
  })

  it('collects copies of every step, deduplicated in first-named order', async () => {
    const verdict = await runSteps(
      [
        { name: 'a', run: () => ({ kind: 'continue', copyTo: ['x', 'y', 'x'] }) },
        { name: 'b', run: () => next },
        { name: 'c', run: () => ({ kind: 'continue', event, copyTo: ['y', 'z', 'x'] }) },
      ],
      event,
      ctx,
    )
    expect(verdict).toEqual({ kind: 'accept', step: undefined, event, copies: ['x', 'y', 'z'] })
  })

  it('forgets copies when a later step drops or rejects the event', async () => {
    const copying: NamedStep = { name: 'a', run: () => proceed(event, ['x']) }
    expect(await runSteps([copying, { name: 'b', run: () => drop }], event, ctx)).toStrictEqual({
      kind: 'drop',
      step: 'b',
    })
    expect(await runSteps([copying, { name: 'b', run: () => reject('r') }], event, ctx)).toStrictEqual({
      kind: 'reject',
      step: 'b',
      reason: 'r',
    })
  })

  it('passes a reject detail on, cut to the limit even when a step built the result itself', async () => {
    expect(await runSteps([{ name: 'v', run: () => reject('bad', '[1]') }], event, ctx)).toStrictEqual({
      kind: 'reject',
      step: 'v',
      reason: 'bad',
      detail: '[1]',
    })
    const huge: NamedStep = {
      name: 'v',
      run: () => ({ kind: 'reject', reason: 'bad', detail: 'x'.repeat(9000) }),
    }
    const verdict = await runSteps([huge], event, ctx)
    expect(verdict.kind === 'reject' && Buffer.byteLength(verdict.detail ?? '')).toBe(DETAIL_MAX_BYTES)
  })
})

describe('step results', () => {
  it('leaves optional fields out rather than undefined', () => {
    expect(reject('r')).toStrictEqual({ kind: 'reject', reason: 'r' })
    const e = telemetry('acme', 'd1')
    expect(proceed(e)).toStrictEqual({ kind: 'continue', event: e })
    expect(proceed(e, ['a'])).toStrictEqual({ kind: 'continue', event: e, copyTo: ['a'] })
  })

  it('cuts a long reject detail', () => {
    const result = reject('r', 'y'.repeat(5000))
    expect(result.kind === 'reject' && result.detail?.endsWith('…')).toBe(true)
  })
})

describe('truncateDetail', () => {
  it('keeps a detail within the limit as it is', () => {
    expect(truncateDetail('short')).toBe('short')
    const exact = 'a'.repeat(DETAIL_MAX_BYTES)
    expect(truncateDetail(exact)).toBe(exact)
    const multibyte = '€'.repeat(DETAIL_MAX_BYTES / 4)
    expect(truncateDetail(multibyte)).toBe(multibyte)
  })

  it('cuts a longer one to the limit, marking the cut', () => {
    const cut = truncateDetail('a'.repeat(DETAIL_MAX_BYTES + 1))
    expect(Buffer.byteLength(cut)).toBe(DETAIL_MAX_BYTES)
    expect(cut.endsWith('…')).toBe(true)
    expect(cut.startsWith('aaaa')).toBe(true)
  })

  it.each([
    ['2-byte', 'é'],
    ['3-byte', '€'],
    ['4-byte', '🌊'],
  ])('never splits a %s character', (_name, char) => {
    for (const lead of ['', 'a', 'ab', 'abc']) {
      const cut = truncateDetail(lead + char.repeat(DETAIL_MAX_BYTES))
      expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(DETAIL_MAX_BYTES)
      expect(cut).not.toContain('\uFFFD')
      // Round-trips through UTF-8 unchanged: no lone surrogate, no partial sequence.
      expect(Buffer.from(cut).toString()).toBe(cut)
      expect(cut.slice(lead.length, -1)).toBe(char.repeat((cut.length - lead.length - 1) / char.length))
    }
  })
})
