// The runner: steps in order, the first terminal result wins, continue-through means accept.
import { describe, expect, it } from 'vitest'
import type { NamedStep, StepResult } from '../../processors/step.ts'
import { accept, drop, next, reject, runSteps } from '../../processors/step.ts'
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

describe('runSteps', () => {
  const event = telemetry('acme', 'd1')

  it('accepts an event every step lets continue, running them all in order', async () => {
    const seen: string[] = []
    const verdict = await runSteps([recording('a', next, seen), recording('b', next, seen)], event, ctx)
    expect(verdict).toEqual({ kind: 'accept', step: undefined })
    expect(seen).toEqual(['a', 'b'])
  })

  it.each([
    ['accept', accept, { kind: 'accept', step: 'b' }],
    ['drop', drop, { kind: 'drop', step: 'b' }],
    ['reject', reject('nope'), { kind: 'reject', step: 'b', reason: 'nope' }],
  ] as const)('stops at the first terminal result (%s)', async (_name, result, expected) => {
    const seen: string[] = []
    const steps = [recording('a', next, seen), recording('b', result, seen), recording('c', next, seen)]
    expect(await runSteps(steps, event, ctx)).toEqual(expected)
    expect(seen).toEqual(['a', 'b'])
  })

  it('awaits asynchronous steps and lets their failures through (the batch is retried)', async () => {
    const failing: NamedStep = { name: 'x', run: () => Promise.reject(new Error('registry down')) }
    await expect(runSteps([failing], event, ctx)).rejects.toThrow('registry down')
    const later: NamedStep = { name: 'y', run: async () => reject('late') }
    expect(await runSteps([later], event, ctx)).toEqual({ kind: 'reject', step: 'y', reason: 'late' })
  })
})
