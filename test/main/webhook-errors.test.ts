// The webhook error log on the registry store, with a double at the store port: errors become
// WebhookError rows, are written in the background one write at a time, a failed write is logged
// and dropped, and the buffer is bounded.
import { describe, expect, it } from 'vitest'
import { silentLogger } from '../../core/log.ts'
import type { WebhookError } from '../../core/registry/model.ts'
import { MAX_BUFFERED_ERRORS, storedErrorLog } from '../../main/webhook-errors.ts'
import { subscription } from '../consumers/webhook/fakes.ts'

const failed = (attempt: number, status?: number) => ({
  at: '2026-03-01T10:00:00.000Z',
  id: `msg-${attempt}`,
  attempt,
  status,
  error: status === undefined ? 'connect ECONNREFUSED' : `HTTP ${status}`,
})

/** A store whose writes wait until released. */
function slowStore() {
  const writes: WebhookError[][] = []
  const waiting: Array<() => void> = []
  let fail = false
  return {
    writes,
    release: () => waiting.splice(0).forEach((go) => go()),
    failNext: () => void (fail = true),
    recordWebhookErrors: (errors: readonly WebhookError[]) =>
      new Promise<void>((resolve, reject) => {
        writes.push([...errors])
        waiting.push(() => {
          if (fail) {
            fail = false
            reject(new Error('database down'))
          } else resolve()
        })
      }),
  }
}

describe('stored webhook error log', () => {
  it('writes each failed attempt as a WebhookError, batching those that arrive during a write', async () => {
    const store = slowStore()
    const errors = storedErrorLog(store, silentLogger)
    const sub = subscription()
    errors.record(sub, failed(1))
    errors.record(sub, failed(2, 500))
    errors.record(sub, failed(3, 503))
    expect(store.writes).toHaveLength(1)
    expect(store.writes[0]).toEqual([
      {
        tenant: 'acme',
        subscription: sub.id,
        at: '2026-03-01T10:00:00.000Z',
        webhookId: 'msg-1',
        attempt: 1,
        status: null,
        error: 'connect ECONNREFUSED',
      },
    ])
    store.release()
    await new Promise((resolve) => setImmediate(resolve))
    expect(store.writes[1]?.map((e) => [e.attempt, e.status])).toEqual([
      [2, 500],
      [3, 503],
    ])
    store.release()
    await errors.flush()
    expect(store.writes).toHaveLength(2)
  })

  it('drops a batch whose write failed and goes on with the next', async () => {
    const store = slowStore()
    const errors = storedErrorLog(store, silentLogger)
    store.failNext()
    errors.record(subscription(), failed(1))
    errors.record(subscription(), failed(2))
    store.release()
    await new Promise((resolve) => setImmediate(resolve))
    store.release()
    await errors.flush()
    expect(store.writes.map((w) => w.map((e) => e.attempt))).toEqual([[1], [2]])
  })

  it(`keeps at most the newest ${MAX_BUFFERED_ERRORS} waiting while a write hangs`, async () => {
    const store = slowStore()
    const errors = storedErrorLog(store, silentLogger)
    for (let n = 0; n <= MAX_BUFFERED_ERRORS + 10; n++) errors.record(subscription(), failed(n))
    store.release()
    await new Promise((resolve) => setImmediate(resolve))
    const waited = store.writes[1] ?? []
    expect(waited).toHaveLength(MAX_BUFFERED_ERRORS)
    expect(waited[0]?.attempt).toBe(11)
    expect(waited.at(-1)?.attempt).toBe(MAX_BUFFERED_ERRORS + 10)
    store.release()
    await errors.flush()
  })
})
