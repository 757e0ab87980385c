// Per-subscription delivery counters: what the delivery path counts, flushed as deltas (each
// count once), group lags measured at most once per interval, a failing sink that never reaches
// delivery, and the lag of a group from the bus's offsets.
import { describe, expect, it } from 'vitest'
import { createSubscriptionRunner } from '../../../consumers/webhook/delivery.ts'
import { noMetrics } from '../../../consumers/webhook/metrics.ts'
import type { StatsSink } from '../../../consumers/webhook/ports.ts'
import { createStatsCollector, groupLag } from '../../../consumers/webhook/stats.ts'
import { topicNames } from '../../../core/events/topics.ts'
import { silentLogger } from '../../../core/log.ts'
import type { WebhookStatsDelta } from '../../../core/registry/model.ts'
import {
  fakeBus,
  fakeClock,
  fakeDeadLetters,
  fakeSender,
  fakeSource,
  message,
  subscription,
  telemetry,
} from './fakes.ts'

function recordingSink(): StatsSink & { writes: WebhookStatsDelta[][]; fail: boolean } {
  const sink = {
    writes: [] as WebhookStatsDelta[][],
    fail: false,
    async add(deltas: readonly WebhookStatsDelta[]) {
      if (sink.fail) throw new Error('database down')
      sink.writes.push([...deltas])
    },
  }
  return sink
}

const iso = (ms: number): string => new Date(ms).toISOString()

describe('webhook delivery stats', () => {
  it('counts what the delivery path reports and flushes it once, as deltas', async () => {
    const sink = recordingSink()
    const stats = createStatsCollector({ sink, log: silentLogger })
    const sub = subscription({ retry: { maxAttempts: 2, initialBackoffMs: 10, maxBackoffMs: 10 } })
    const clock = fakeClock()
    const sender = fakeSender()
    const bus = fakeBus()
    const runner = createSubscriptionRunner(sub, {
      bus,
      topics: topicNames('tributary'),
      source: fakeSource([sub]),
      sender,
      deadLetters: fakeDeadLetters(),
      clock,
      metrics: noMetrics,
      log: silentLogger,
      random: () => 0.5,
      stats,
    })
    await runner.start()
    const start = clock.now()
    // Delivered at once; failed then delivered; failed twice and dead-lettered.
    sender.script.push(
      { kind: 'delivered', status: 200 },
      { kind: 'retry', status: 503, error: 'HTTP 503' },
      { kind: 'delivered', status: 204 },
      { kind: 'retry', error: 'timed out after 1000 ms' },
      { kind: 'retry', status: 500, error: 'HTTP 500' },
    )
    expect(await bus.run([telemetry('a'), telemetry('b'), telemetry('c')].map((e) => message(e)))).toBe(true)
    await stats.flush()
    expect(sink.writes).toEqual([
      [
        {
          tenant: 'acme',
          subscription: sub.id,
          attempts: 5,
          delivered: 2,
          failedAttempts: 3,
          deadLettered: 1,
          // Each retry waits 5 ms of the fake clock (half of 10 ms): b succeeds at +5, c fails last at +10.
          lastSuccessAt: iso(start + 5),
          lastFailureAt: iso(start + 10),
          lag: null,
          lagAt: null,
        },
      ],
    ])
    await stats.flush()
    expect(sink.writes).toHaveLength(1)
    await runner.stop()
  })

  it('measures the lag of running subscriptions at most once per interval, also without counts', async () => {
    const sink = recordingSink()
    let now = 1_000_000
    const running = [subscription({ id: 'a' }), subscription({ id: 'b' })]
    const measured: string[] = []
    const stats = createStatsCollector({
      sink,
      log: silentLogger,
      now: () => now,
      running: () => running,
      lagOf: async (s) => {
        measured.push(s.id)
        if (s.id === 'b') throw new Error('admin unavailable')
        return 42
      },
      lagIntervalMs: 30_000,
    })
    stats.delivered(running[0]!, 1)
    await stats.flush()
    expect(sink.writes[0]).toEqual([
      expect.objectContaining({ subscription: 'a', delivered: 1, lag: 42, lagAt: iso(now) }),
    ])
    now += 29_999
    stats.delivered(running[1]!, 2)
    await stats.flush()
    expect(sink.writes[1]).toEqual([expect.objectContaining({ subscription: 'b', delivered: 2, lag: null })])
    now += 1
    await stats.flush()
    expect(sink.writes[2]).toEqual([
      expect.objectContaining({ subscription: 'a', attempts: 0, delivered: 0, lag: 42, lagAt: iso(now) }),
    ])
    expect(measured).toEqual(['a', 'b', 'a', 'b'])
  })

  it('drops a flush the sink refuses, and counts on afresh', async () => {
    const sink = recordingSink()
    const stats = createStatsCollector({ sink, log: silentLogger })
    const sub = subscription()
    stats.attempt(sub, 'delivered', 5000)
    sink.fail = true
    await stats.flush()
    sink.fail = false
    stats.attempt(sub, 'rejected', 4000)
    stats.attempt(sub, 'retry', 6000)
    await stats.flush()
    expect(sink.writes).toEqual([
      [
        expect.objectContaining({
          attempts: 2,
          failedAttempts: 2,
          lastSuccessAt: null,
          lastFailureAt: iso(6000),
        }),
      ],
    ])
  })

  it('sums what a group has not committed over the partitions of the topic', async () => {
    const admin = {
      offsets: async () => [
        { partition: 0, earliest: 0, next: 10 },
        { partition: 1, earliest: 5, next: 8 },
        { partition: 2, earliest: 20, next: 30 },
      ],
      // Partition 1 was never committed on: it counts from its earliest offset; 2 is past retention.
      committed: async () =>
        new Map([
          [0, 7],
          [2, 3],
        ]),
    }
    expect(await groupLag(admin, 'tributary.events.acme', 'g')).toBe(3 + 3 + 10)
  })
})
