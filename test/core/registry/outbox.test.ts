// The outbox relay against doubles of its two ports (the store's outbox and the bus's publish):
// every change reaches the bus in order, a failing bus loses nothing, and stop() drains.
import { afterEach, describe, expect, it } from 'vitest'
import type { OutgoingRecord, PublishAck } from '../../../core/bus/bus.ts'
import { isTributaryError } from '../../../core/errors.ts'
import { silentLogger } from '../../../core/log.ts'
import { decodeChange } from '../../../core/registry/changes.ts'
import type { RegistryChange } from '../../../core/registry/model.ts'
import type { OutboxRelay } from '../../../core/registry/outbox.ts'
import { createOutboxRelay } from '../../../core/registry/outbox.ts'
import type { OutboxEntry } from '../../../core/registry/store.ts'
import { waitUntil } from '../../helpers/wait.ts'

function outboxDouble() {
  const entries: OutboxEntry[] = []
  let published = 0
  return {
    add(count: number) {
      for (let i = 0; i < count; i++) {
        const seq = entries.length + 1
        const change: RegistryChange = {
          op: 'created',
          resource: 'device',
          tenant: 'acme',
          device: `d${seq}`,
          version: 1,
        }
        entries.push({ seq, change })
      }
    },
    get publishedSeq() {
      return published
    },
    store: {
      async pendingChanges(limit: number) {
        return entries.filter((e) => e.seq > published).slice(0, limit)
      },
      async markPublished(seq: number) {
        published = Math.max(published, seq)
      },
    },
  }
}

function busDouble(failures = 0) {
  const records: OutgoingRecord[] = []
  let calls = 0
  let left = failures
  return {
    records,
    get calls() {
      return calls
    },
    devices: () =>
      records.map(
        (r) => decodeChange({ key: r.key, value: r.value, headers: r.headers ?? new Map() }).device,
      ),
    bus: {
      async publish(batch: readonly OutgoingRecord[]): Promise<PublishAck[]> {
        calls++
        if (left > 0) {
          left--
          throw new Error('bus down')
        }
        records.push(...batch)
        return batch.map((r, offset) => ({ topic: r.topic, partition: 0, offset }))
      },
    },
  }
}

const relays: OutboxRelay[] = []
function relay(options: Parameters<typeof createOutboxRelay>[0]): OutboxRelay {
  const created = createOutboxRelay(options)
  relays.push(created)
  return created
}
afterEach(async () => {
  await Promise.all(relays.splice(0).map((r) => r.stop()))
})

const common = { topic: 'tributary.registry', log: silentLogger }

describe('outbox relay', () => {
  it('publishes pending changes in order, in batches, and marks them published', async () => {
    const outbox = outboxDouble()
    const bus = busDouble()
    outbox.add(250)
    const r = relay({ ...common, store: outbox.store, bus: bus.bus, batchSize: 100, pollMs: 60_000 })
    await r.start()
    await r.flush()
    expect(bus.calls).toBe(3)
    expect(bus.devices()).toEqual(Array.from({ length: 250 }, (_, i) => `d${i + 1}`))
    expect(outbox.publishedSeq).toBe(250)
    expect(r.published).toBe(250)
    expect(bus.records.every((rec) => rec.topic === 'tributary.registry')).toBe(true)
  })

  it('publishes at once when nudged, without waiting for the poll', async () => {
    const outbox = outboxDouble()
    const bus = busDouble()
    const r = relay({ ...common, store: outbox.store, bus: bus.bus, pollMs: 60_000 })
    await r.start()
    await r.flush()
    outbox.add(1)
    r.nudge()
    await waitUntil(() => bus.records.length === 1, { timeoutMs: 2_000 })
    expect(outbox.publishedSeq).toBe(1)
  })

  it('picks up changes other processes wrote by polling', async () => {
    const outbox = outboxDouble()
    const bus = busDouble()
    const r = relay({ ...common, store: outbox.store, bus: bus.bus, pollMs: 10 })
    await r.start()
    outbox.add(2)
    await waitUntil(() => bus.records.length === 2, { timeoutMs: 5_000 })
  })

  it('retries a failing bus with backoff and loses nothing', async () => {
    const outbox = outboxDouble()
    const bus = busDouble(2)
    outbox.add(3)
    const r = relay({ ...common, store: outbox.store, bus: bus.bus, pollMs: 60_000 })
    await r.start()
    await r.flush()
    expect(bus.calls).toBe(3)
    expect(bus.devices()).toEqual(['d1', 'd2', 'd3'])
    expect(outbox.publishedSeq).toBe(3)
  })

  it('drains what is pending on stop, then refuses flushes', async () => {
    const outbox = outboxDouble()
    const bus = busDouble()
    const r = createOutboxRelay({ ...common, store: outbox.store, bus: bus.bus, pollMs: 60_000 })
    await expect(r.flush()).rejects.toSatisfy((err) => isTributaryError(err, 'SHUTTING_DOWN'))
    await r.start()
    await r.flush()
    outbox.add(5)
    await r.stop()
    expect(bus.devices()).toEqual(['d1', 'd2', 'd3', 'd4', 'd5'])
    await expect(r.flush()).rejects.toSatisfy((err) => isTributaryError(err, 'SHUTTING_DOWN'))
  })

  it('leaves changes in the outbox when the bus is down at stop', async () => {
    const outbox = outboxDouble()
    const bus = busDouble(Number.POSITIVE_INFINITY)
    outbox.add(2)
    const r = createOutboxRelay({ ...common, store: outbox.store, bus: bus.bus, pollMs: 60_000 })
    await r.start()
    await waitUntil(() => bus.calls >= 1, { timeoutMs: 2_000 })
    await r.stop()
    expect(outbox.publishedSeq).toBe(0)
    expect(await outbox.store.pendingChanges(10)).toHaveLength(2)
  })
})
