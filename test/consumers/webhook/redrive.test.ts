// Re-drive of a subscription's dead letters with doubles at every port: claimed letters are read
// back and sent again with the subscription's signing and retry policy; delivered, dead-lettered
// again, expired and unread letters end as they should; paused runners take none; a stop or a
// 410 gives the rest back.
import { describe, expect, it } from 'vitest'
import type { DeliveryDeps } from '../../../consumers/webhook/delivery.ts'
import { createSubscriptionRunner } from '../../../consumers/webhook/delivery.ts'
import { noMetrics } from '../../../consumers/webhook/metrics.ts'
import type { SendOutcome } from '../../../consumers/webhook/ports.ts'
import { REDRIVE_BATCH, redriveLeaseMs } from '../../../consumers/webhook/redrive.ts'
import { secretKey, sign } from '../../../consumers/webhook/signing.ts'
import { topicNames } from '../../../core/events/topics.ts'
import { silentLogger } from '../../../core/log.ts'
import type { WebhookSubscription } from '../../../core/registry/model.ts'
import { deferred, waitUntil } from '../../helpers/wait.ts'
import {
  SECRET,
  fakeBus,
  fakeClock,
  fakeDeadLetters,
  fakeRecords,
  fakeRedrive,
  fakeSender,
  fakeSource,
  letterOf,
  subscription,
  telemetry,
} from './fakes.ts'

const fail = (status = 503): SendOutcome => ({ kind: 'retry', status, error: `HTTP ${status}` })

async function setup(sub: WebhookSubscription = subscription(), extra: Partial<DeliveryDeps> = {}) {
  const bus = fakeBus()
  const sender = fakeSender()
  const clock = fakeClock()
  const letters = fakeDeadLetters()
  const source = fakeSource([sub])
  const redrive = fakeRedrive()
  const records = fakeRecords()
  const runner = createSubscriptionRunner(sub, {
    bus,
    topics: topicNames('tributary'),
    source,
    sender,
    deadLetters: letters,
    clock,
    metrics: noMetrics,
    log: silentLogger,
    random: () => 0.5,
    redrive: { port: redrive, records, log: silentLogger },
    ...extra,
  })
  /** Dead letters of fresh events at offsets 10, 11, ...: requested and on the topic. */
  const request = (count: number) =>
    Array.from({ length: count }, (_, i) => {
      const event = telemetry(`d${i}`)
      const { claim, record } = letterOf(event, 10 + i, sub)
      redrive.requested.push(claim)
      records.records.set(`0:${10 + i}`, record)
      return event
    })
  const finishedAll = (n: number) =>
    waitUntil(() => redrive.finished.length >= n, {
      message: () => `${n} re-drives finished, got ${JSON.stringify(redrive.finished)}`,
    })
  return { bus, sender, clock, letters, source, redrive, records, runner, request, finishedAll }
}

describe('webhook dead-letter re-drive', () => {
  it('sends each claimed letter again, signed like any delivery, and marks it delivered', async () => {
    const { runner, sender, redrive, records, request, finishedAll, clock } = await setup()
    const events = request(3)
    await runner.start()
    await finishedAll(3)
    expect(redrive.finished).toEqual([10, 11, 12].map((offset) => ({ offset, outcome: 'delivered' })))
    expect(sender.requests.map((r) => r.headers['webhook-id'])).toEqual(events.map((e) => e.attributes.id))
    const [first] = sender.requests
    expect(first!.headers).toMatchObject({
      'ce-id': events[0]!.attributes.id,
      'ce-source': events[0]!.attributes.source,
      ...sign(secretKey(SECRET), events[0]!.attributes.id, clock.now(), first!.body),
    })
    // The letter headers of the dead-letter topic are not sent on.
    expect(Object.keys(first!.headers).filter((h) => h.startsWith('tributary'))).toEqual([])
    // One claim and one read of the three; a second claim finds nothing more.
    expect(records.reads).toHaveLength(1)
    expect(redrive.claims.map((c) => c.length)).toEqual([3])
  })

  it('retries by the subscription’s policy and dead-letters again when every attempt fails', async () => {
    const sub = subscription({ retry: { maxAttempts: 3, initialBackoffMs: 1000, maxBackoffMs: 5000 } })
    const { runner, sender, letters, redrive, clock, request, finishedAll } = await setup(sub)
    sender.script.push(fail(), fail(), fail(), fail(429))
    const [event, next] = request(2)
    await runner.start()
    await finishedAll(2)
    expect(redrive.finished).toEqual([
      { offset: 10, outcome: 'dead-lettered' },
      { offset: 11, outcome: 'delivered' },
    ])
    expect(letters.letters).toEqual([
      { id: event!.attributes.id, reason: 'retries-exhausted', attempts: 3, lastError: 'HTTP 503' },
    ])
    // Full jitter at 0.5 of 1 s, then of 2 s; the 429 of the next letter waits 0.5 s.
    expect(clock.sleeps).toEqual([500, 1000, 500])
    expect(sender.requests.map((r) => r.headers['webhook-id'])).toEqual([
      ...Array<string>(3).fill(event!.attributes.id),
      next!.attributes.id,
      next!.attributes.id,
    ])
  })

  it('drops the request of a letter the topic no longer holds and gives back one not read in time', async () => {
    const { runner, sender, redrive, records, request, finishedAll } = await setup()
    request(3)
    records.gone.add('0:10')
    records.records.delete('0:11')
    await runner.start()
    await finishedAll(3)
    expect(redrive.finished).toEqual([
      { offset: 10, outcome: 'expired' },
      { offset: 11, outcome: 'released' },
      { offset: 12, outcome: 'delivered' },
    ])
    expect(sender.requests).toHaveLength(1)
    // The round ends with what is left: the released letter waits for the next kick or sweep.
    expect(redrive.claims).toHaveLength(1)
    expect(redrive.requested.map((c) => c.offset)).toEqual([11])
  })

  it('claims in batches until none are left, with a lease covering every attempt of the batch', async () => {
    const sub = subscription()
    const { runner, redrive, request, finishedAll } = await setup(sub)
    request(REDRIVE_BATCH + 2)
    await runner.start()
    await finishedAll(REDRIVE_BATCH + 2)
    expect(redrive.claims.map((c) => c.length)).toEqual([REDRIVE_BATCH, 2])
    // 4 attempts × (1 s timeout + 5 s longest wait) per letter, plus a minute.
    expect(redriveLeaseMs(sub, REDRIVE_BATCH)).toBe(REDRIVE_BATCH * 4 * 6000 + 60_000)
  })

  it('takes no letter while paused, and takes them once resumed', async () => {
    const { runner, redrive, request, finishedAll } = await setup(subscription({ state: 'paused' }))
    request(1)
    await runner.start()
    runner.redrive()
    expect(redrive.claims).toEqual([])
    runner.resume()
    await finishedAll(1)
    expect(redrive.finished).toEqual([{ offset: 10, outcome: 'delivered' }])
  })

  it('gives the letter in flight and the rest of its batch back when stopped', async () => {
    const { runner, sender, redrive, request, finishedAll } = await setup()
    const answered = deferred<SendOutcome>()
    const started = deferred()
    sender.script.push(() => {
      started.resolve()
      return answered.promise
    })
    request(3)
    await runner.start()
    await started.promise
    const stopped = runner.stop(1000)
    answered.resolve(fail())
    await stopped
    await finishedAll(3)
    expect(redrive.finished).toEqual([10, 11, 12].map((offset) => ({ offset, outcome: 'released' })))
  })

  it('disables the subscription on 410 and gives the letters back for when it is resumed', async () => {
    const { runner, sender, source, redrive, request, finishedAll } = await setup()
    sender.script.push({ kind: 'gone', status: 410 })
    request(2)
    await runner.start()
    await finishedAll(2)
    expect(source.states).toEqual([{ tenant: 'acme', id: runner.subscription.id, state: 'disabled' }])
    expect(redrive.finished).toEqual([
      { offset: 10, outcome: 'released' },
      { offset: 11, outcome: 'released' },
    ])
  })

  it('gives the claimed letters back at once when the topic cannot be read', async () => {
    const { runner, sender, redrive, records, request, finishedAll } = await setup()
    request(2)
    records.read = async () => {
      throw new Error('bus unavailable')
    }
    await runner.start()
    await finishedAll(2)
    expect(redrive.finished).toEqual([
      { offset: 10, outcome: 'released' },
      { offset: 11, outcome: 'released' },
    ])
    expect(sender.requests).toEqual([])
  })

  it('does nothing without the re-drive port', async () => {
    const { runner, redrive, request } = await setup(subscription(), { redrive: undefined })
    request(1)
    await runner.start()
    runner.redrive()
    expect(redrive.claims).toEqual([])
  })
})
