// The waiting helpers of the bus: a wake-up cuts a sleep short, fires many times, and does so
// without building an AbortError (with its stack trace) per fire, which the hot consume path paid.
import { describe, expect, it } from 'vitest'
import { createWakeup, sleep } from '../../../core/bus/backoff.ts'

describe('createWakeup', () => {
  it('wakes whoever sleeps on the current signal, every time it fires', async () => {
    const wakeup = createWakeup()
    for (let round = 0; round < 3; round++) {
      const signal = wakeup.signal
      const slept = sleep(60_000, signal)
      wakeup.fire()
      await slept
      expect(signal.aborted).toBe(true)
      // The next waiter gets a fresh signal: a past fire does not cut its sleep.
      expect(wakeup.signal.aborted).toBe(false)
    }
  })

  it('aborts with a plain reason, not an AbortError', () => {
    const wakeup = createWakeup()
    const signal = wakeup.signal
    wakeup.fire()
    expect(signal.reason).not.toBeInstanceOf(Error)
    expect(typeof signal.reason).toBe('string')
  })
})
