// The bus's circuit breaker against a double of the EventBus port: what opens it, that publishes
// are refused at once (the bus is not asked) while it is open, that a background probe closes it,
// and that it stops probing once closed.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { guardBus } from '../../../core/bus/availability.ts'
import type { GuardedBus } from '../../../core/bus/availability.ts'
import type { BusHealth, EventBus, OutgoingRecord } from '../../../core/bus/bus.ts'
import { TributaryError, isTributaryError } from '../../../core/errors.ts'
import { silentLogger } from '../../../core/log.ts'
import { createMetricsRegistry } from '../../../core/metrics.ts'

interface Double {
  bus: EventBus
  publishes: number
  probes: number
  /** What the next publish does: resolve, or throw this. */
  fail: Error | undefined
  health: BusHealth
}

function busDouble(): Double {
  const state: Double = {
    publishes: 0,
    probes: 0,
    fail: undefined,
    health: { ok: false, reason: 'Kafka at k1:9092 is unreachable: ECONNREFUSED' },
    bus: undefined as unknown as EventBus,
  }
  state.bus = {
    kind: 'kafka',
    admin: undefined as unknown as EventBus['admin'],
    subscribe: () => Promise.reject(new Error('not used')),
    close: async () => undefined,
    async publish(records) {
      state.publishes += 1
      if (state.fail !== undefined) throw state.fail
      return records.map((r, i) => ({ topic: r.topic, partition: 0, offset: i }))
    },
    async health() {
      state.probes += 1
      return state.health
    },
  }
  return state
}

const record: OutgoingRecord = { topic: 't', key: 'k', value: Buffer.from('v') }
const down = () =>
  new TributaryError('BUS_UNAVAILABLE', 'Kafka did not acknowledge records for t: ECONNREFUSED')

const guarded: GuardedBus[] = []
afterEach(async () => {
  await Promise.all(guarded.splice(0).map((g) => g.close()))
})

function guard(double: Double, probeIntervalMs = 10) {
  const registry = createMetricsRegistry()
  const bus = guardBus(double.bus, { log: silentLogger, registry, probeIntervalMs, maxProbeIntervalMs: 40 })
  guarded.push(bus)
  const metric = async (name: string): Promise<number> =>
    (await registry.getSingleMetric(name)?.get())?.values.reduce((sum, v) => sum + v.value, 0) ?? 0
  return { bus, metric }
}

async function failure(call: Promise<unknown>): Promise<TributaryError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!isTributaryError(err)) throw new Error(`expected a TributaryError, got ${String(err)}`)
  return err
}

describe('guardBus', () => {
  it('passes publishes through while the bus takes them, and failures that say nothing of the next one', async () => {
    const double = busDouble()
    const { bus } = guard(double)
    expect(await bus.publish([record])).toEqual([{ topic: 't', partition: 0, offset: 0 }])
    double.fail = new TributaryError('BUS_RECORD_TOO_LARGE', 'too big')
    expect((await failure(bus.publish([record]))).code).toBe('BUS_RECORD_TOO_LARGE')
    double.fail = new TributaryError('BUS_UNKNOWN_TOPIC', 'no topic t')
    expect((await failure(bus.publish([record]))).code).toBe('BUS_UNKNOWN_TOPIC')
    expect(bus.availability.refusal()).toBeUndefined()
    expect(double.publishes).toBe(3)
  })

  it('refuses at once, without asking the bus, after a publish failed because the bus is away', async () => {
    const double = busDouble()
    const { bus, metric } = guard(double, 60_000)
    double.fail = down()
    const first = await failure(bus.publish([record]))
    expect(first).toMatchObject({ code: 'BUS_UNAVAILABLE', canRetry: true, cause: double.fail })
    expect(first.details?.['retryAfterMs']).toBeGreaterThanOrEqual(1_000)

    for (let i = 0; i < 5; i++) {
      const refused = await failure(bus.publish([record]))
      expect(refused.code).toBe('BUS_UNAVAILABLE')
      expect(refused.message).toMatch(/^the event bus is unavailable since \S+Z: /)
      expect(refused.details?.['retryAfterMs']).toBeGreaterThanOrEqual(1_000)
    }
    expect(double.publishes).toBe(1)
    expect(bus.availability.refusal()?.code).toBe('BUS_UNAVAILABLE')
    expect(await metric('tributary_bus_available')).toBe(0)
    expect(await metric('tributary_bus_publishes_refused_total')).toBe(5)
  })

  it('probes in the background, more slowly each time, and takes publishes again once the bus answers', async () => {
    vi.useFakeTimers()
    try {
      const double = busDouble()
      const { bus, metric } = guard(double)
      double.fail = down()
      await failure(bus.publish([record]))
      // 10, 20, 40, 40 ms apart (doubling up to the longest interval).
      for (const [advance, probes] of [
        [9, 0],
        [1, 1],
        [19, 1],
        [1, 2],
        [40, 3],
        [40, 4],
      ] as const) {
        await vi.advanceTimersByTimeAsync(advance)
        expect(double.probes).toBe(probes)
      }
      expect(bus.availability.refusal()).toBeDefined()
      double.fail = undefined
      double.health = { ok: true }
      await vi.advanceTimersByTimeAsync(40)
      expect(bus.availability.refusal()).toBeUndefined()
      expect(double.publishes).toBe(1)
      expect(await bus.publish([record])).toHaveLength(1)
      expect(await metric('tributary_bus_available')).toBe(1)
      expect(await metric('tributary_bus_probes_total')).toBe(5)
      // The bus is back: no more probes.
      await vi.advanceTimersByTimeAsync(1_000)
      expect(double.probes).toBe(5)
    } finally {
      vi.useRealTimers()
    }
  })

  it('reports the outage in health(), and a health check that finds the bus back ends it', async () => {
    const double = busDouble()
    const { bus } = guard(double, 60_000)
    double.fail = down()
    await failure(bus.publish([record]))
    expect(await bus.health()).toEqual({
      ok: false,
      reason: expect.stringMatching(
        /^publishes refused since \S+Z: Kafka at k1:9092 is unreachable: ECONNREFUSED$/,
      ),
    })
    double.health = { ok: true }
    expect(await bus.health()).toEqual({ ok: true })
    expect(bus.availability.refusal()).toBeUndefined()
  })

  it('stops probing once the bus is closed', async () => {
    vi.useFakeTimers()
    try {
      const double = busDouble()
      const { bus } = guard(double)
      double.fail = down()
      await failure(bus.publish([record]))
      await bus.close()
      await vi.advanceTimersByTimeAsync(1_000)
      expect(double.probes).toBe(0)
    } finally {
      vi.useRealTimers()
    }
  })
})
