// The bound on requests waiting for commands: in all, per tenant and per device, each slot given
// back once (HTTP and CoAP share this module).
import { describe, expect, it } from 'vitest'
import { POLL_LIMITS, createPollSlots } from '../../adapters/poll-slots.ts'

describe('poll slots', () => {
  it('refuses past the device, the tenant and the listener bound, naming which', () => {
    const slots = createPollSlots({ total: 5, perTenant: 3, perDevice: 2 })
    const a1 = slots.take('t1', 'a')
    slots.take('t1', 'a')
    expect(slots.take('t1', 'a')).toEqual({ ok: false, scope: 'device' })
    slots.take('t1', 'b')
    expect(slots.take('t1', 'c')).toEqual({ ok: false, scope: 'tenant' })
    slots.take('t2', 'a')
    slots.take('t2', 'b')
    expect(slots.active).toBe(5)
    expect(slots.take('t3', 'a')).toEqual({ ok: false, scope: 'all' })
    expect(a1.ok).toBe(true)
    if (a1.ok) {
      a1.release()
      a1.release()
    }
    expect(slots.active).toBe(4)
    expect(slots.take('t1', 'a').ok).toBe(true)
  })

  it('has sane defaults', () => {
    expect(POLL_LIMITS.perDevice).toBeLessThan(POLL_LIMITS.perTenant)
    expect(POLL_LIMITS.perTenant).toBeLessThan(POLL_LIMITS.total)
  })
})
