// The dead-letter index with doubles at its ports (the bus subscription and the store): how a
// record becomes a DeadLetter, which records are skipped and counted, and when tenants are trimmed.
import { describe, expect, it } from 'vitest'
import type { BusMessage, SubscribeOptions, Subscription } from '../../core/bus/bus.ts'
import { buildEvent } from '../../core/events/build.ts'
import { encodeBinary } from '../../core/events/kafka-codec.ts'
import { silentLogger } from '../../core/log.ts'
import type { Registry } from '../../core/metrics.ts'
import { createMetricsRegistry } from '../../core/metrics.ts'
import type { DeadLetter } from '../../core/registry/model.ts'
import { DEAD_LETTER_DATA_MAX_BYTES } from '../../core/registry/sql/dead-letters.ts'
import { SUBSCRIPTION_HEADER, deadLetter } from '../../processors/deadletter.ts'
import { TRIM_INTERVAL_MS, createDeadLetterIndex, toDeadLetter } from '../../processors/deadletter-index.ts'

const failedAt = new Date('2026-02-03T04:05:06.000Z')
const recordTime = Date.parse('2026-02-03T04:05:07.000Z')

/** A record as the dead-letter topic holds it: made by deadLetter() from an ingress record. */
function onTopic(
  ingress: Pick<BusMessage, 'key' | 'value' | 'headers'>,
  position: { partition?: number; offset?: number; timestamp?: number } = {},
  refusal: { step?: string; reason?: string; detail?: string } = {},
): BusMessage {
  const source: BusMessage = { topic: 'tb.ingress', partition: 0, offset: 0, timestamp: 0, ...ingress }
  const out = deadLetter(
    'tb.deadletter',
    source,
    refusal.step ?? 'authorize',
    refusal.reason ?? 'device-disabled',
    failedAt,
    refusal.detail,
  )
  return {
    topic: out.topic,
    partition: position.partition ?? 1,
    offset: position.offset ?? 42,
    timestamp: position.timestamp ?? recordTime,
    key: out.key,
    value: out.value,
    headers: out.headers ?? new Map(),
  }
}

function event(tenant: string, device: string) {
  const built = buildEvent({
    kind: 'telemetry',
    tenant,
    device,
    protocol: 'mqtt',
    subject: 'room/temp',
    data: Buffer.from('{"t":"hot"}'),
    datacontenttype: 'application/json',
  })
  const { key, value, headers } = encodeBinary(built)
  return { id: built.attributes.id, record: { key: key?.toString(), value, headers } }
}

describe('toDeadLetter', () => {
  it('reads a refused CloudEvent: ids, step, reason, detail, times, data', () => {
    const { id, record } = event('acme', 'd:1')
    const letter = toDeadLetter(
      onTopic(record, {}, { step: 'validate', reason: 'schema-invalid', detail: '[{"path":"/t"}]' }),
    )
    expect(letter).toEqual({
      tenant: 'acme',
      id,
      partition: 1,
      offset: 42,
      device: 'd:1',
      type: 'io.tributary.telemetry.v1',
      subject: 'room/temp',
      step: 'validate',
      reason: 'schema-invalid',
      detail: '[{"path":"/t"}]',
      firstFailure: failedAt.toISOString(),
      deadLetteredAt: new Date(recordTime).toISOString(),
      contentType: 'application/json',
      data: Buffer.from('{"t":"hot"}').toString('base64'),
      subscription: null,
    } satisfies DeadLetter)
  })

  it('reads a record that was no CloudEvent from its percent-encoded key, with its position as id', () => {
    const letter = toDeadLetter(
      onTopic(
        { key: 'acme/d%3A1', value: Buffer.from('garbage'), headers: new Map() },
        { partition: 3, offset: 7 },
        { step: 'decode', reason: 'event-invalid' },
      ),
    )
    expect(letter).toMatchObject({
      tenant: 'acme',
      id: '3-7',
      device: 'd:1',
      type: null,
      subject: null,
      contentType: null,
      detail: null,
      step: 'decode',
      data: Buffer.from('garbage').toString('base64'),
    })
    const tenantOnly = toDeadLetter(onTopic({ key: 'acme', value: undefined, headers: new Map() }))
    expect(tenantOnly).toMatchObject({ tenant: 'acme', device: null, data: null })
  })

  it('reads the subscription of a webhook letter from its header, null on other letters', () => {
    const { record } = event('acme', 'd1')
    const headers = new Map(record.headers)
    headers.set(SUBSCRIPTION_HEADER, Buffer.from('sub-7'))
    const webhook = toDeadLetter(onTopic({ ...record, headers }, {}, { step: 'webhook', reason: 'rejected' }))
    expect(webhook).toMatchObject({
      tenant: 'acme',
      step: 'webhook',
      reason: 'rejected',
      subscription: 'sub-7',
    })
    headers.set(SUBSCRIPTION_HEADER, Buffer.from(''))
    expect(toDeadLetter(onTopic({ ...record, headers }))?.subscription).toBeNull()
    expect(toDeadLetter(onTopic(record))?.subscription).toBeNull()
  })

  it('prefers ce_tenant to the key', () => {
    const { record } = event('acme', 'd1')
    expect(toDeadLetter(onTopic({ ...record, key: 'other/d1' }))?.tenant).toBe('acme')
  })

  it('skips records without a valid tenant', () => {
    const bad = [
      { key: undefined, value: Buffer.from('x'), headers: new Map() },
      { key: '/d1', value: undefined, headers: new Map() },
      { key: 'Not_A_Tenant/d1', value: undefined, headers: new Map() },
      { key: '%E0%A4%A/d1', value: undefined, headers: new Map() },
      { key: 'acme/d1', value: undefined, headers: new Map([['ce_tenant', Buffer.from('ACME')]]) },
    ]
    for (const record of bad) expect(toDeadLetter(onTopic(record)), String(record.key)).toBeUndefined()
  })

  it('falls back where a header is missing or unusable', () => {
    const headers = new Map([
      ['ce_id', Buffer.from('x'.repeat(300))],
      ['tributary_first_failure', Buffer.from('yesterday')],
    ])
    const now = () => new Date('2030-01-01T00:00:00.000Z')
    const message: BusMessage = {
      topic: 'tb.deadletter',
      partition: 0,
      offset: 9,
      timestamp: -1,
      key: 'acme/d1',
      value: Buffer.alloc(DEAD_LETTER_DATA_MAX_BYTES + 1),
      headers,
    }
    expect(toDeadLetter(message, now)).toMatchObject({
      id: '0-9',
      step: 'unknown',
      reason: 'unknown',
      firstFailure: '2030-01-01T00:00:00.000Z',
      deadLetteredAt: '2030-01-01T00:00:00.000Z',
      data: null,
    })
    const fits = { ...message, value: Buffer.alloc(DEAD_LETTER_DATA_MAX_BYTES) }
    expect(toDeadLetter(fits, now)?.data).toHaveLength(Math.ceil(DEAD_LETTER_DATA_MAX_BYTES / 3) * 4)
  })
})

/** The component over a bus double that hands batches to its handler, and a store double. */
function harness(keep = 100) {
  let options: SubscribeOptions | undefined
  const recorded: DeadLetter[][] = []
  const trims: Array<{ tenant: string; keep: number }> = []
  let clock = Date.parse('2026-02-03T05:00:00.000Z')
  let failRecord = false
  const metrics = createMetricsRegistry()
  const index = createDeadLetterIndex(
    { topic: 'tb.deadletter', group: 'tb-deadletter-index', keep },
    {
      bus: {
        subscribe: async (o) => {
          options = o
          return { close: async () => {} } as Subscription
        },
      },
      store: {
        recordDeadLetters: async (letters) => {
          if (failRecord) throw new Error('database down')
          recorded.push([...letters])
        },
        trimDeadLetters: async (tenant, n) => void trims.push({ tenant, keep: n }),
      },
      log: silentLogger,
      metrics,
      now: () => new Date(clock),
    },
  )
  return {
    index,
    recorded,
    trims,
    metrics,
    options: () => options!,
    deliver: (batch: BusMessage[]) => options!.handler(batch),
    advance: (ms: number) => void (clock += ms),
    failRecords: (on: boolean) => void (failRecord = on),
  }
}

const skippedCount = async (metrics: Registry): Promise<number> =>
  (await metrics.getSingleMetric('tributary_deadletter_index_skipped_total')!.get()).values[0]?.value ?? 0

describe('createDeadLetterIndex', () => {
  it('subscribes to the dead-letter topic in its own group from the earliest offset', async () => {
    const h = harness()
    await h.index.start()
    expect(h.options()).toMatchObject({
      group: 'tb-deadletter-index',
      topics: ['tb.deadletter'],
      from: 'earliest',
    })
    await h.index.stop()
  })

  it('records a batch in one write, skips and counts records without a tenant', async () => {
    const h = harness()
    await h.index.start()
    const a = event('acme', 'd1').record
    const b = event('beta', 'd2').record
    await h.deliver([
      onTopic(a, { offset: 1 }),
      onTopic({ key: undefined, value: Buffer.from('?'), headers: new Map() }, { offset: 2 }),
      onTopic(b, { offset: 3 }),
    ])
    expect(h.recorded).toHaveLength(1)
    expect(h.recorded[0]!.map((l) => `${l.tenant}:${l.offset}`)).toEqual(['acme:1', 'beta:3'])
    expect(await skippedCount(h.metrics)).toBe(1)
    expect(h.index.batches).toBe(1)
  })

  it('trims each tenant seen at most once per interval', async () => {
    const h = harness(7)
    await h.index.start()
    const a = event('acme', 'd1').record
    const b = event('beta', 'd1').record
    await h.deliver([onTopic(a, { offset: 1 }), onTopic(a, { offset: 2 })])
    await h.deliver([onTopic(a, { offset: 3 }), onTopic(b, { offset: 4 })])
    h.advance(TRIM_INTERVAL_MS - 1)
    await h.deliver([onTopic(a, { offset: 5 }), onTopic(b, { offset: 6 })])
    expect(h.trims).toEqual([
      { tenant: 'acme', keep: 7 },
      { tenant: 'beta', keep: 7 },
    ])
    h.advance(1)
    await h.deliver([onTopic(a, { offset: 7 })])
    expect(h.trims.slice(2)).toEqual([{ tenant: 'acme', keep: 7 }])
    expect(h.recorded).toHaveLength(4)
  })

  it('fails the batch when the write fails, so the bus redelivers it', async () => {
    const h = harness()
    await h.index.start()
    h.failRecords(true)
    const batch = [onTopic(event('acme', 'd1').record)]
    await expect(h.deliver(batch)).rejects.toThrow('database down')
    expect(h.index.batches).toBe(0)
    h.failRecords(false)
    await h.deliver(batch)
    expect(h.recorded).toHaveLength(1)
  })

  it('records nothing when keep is 0, and trims what an earlier setting kept', async () => {
    const h = harness(0)
    await h.index.start()
    await h.deliver([onTopic(event('acme', 'd1').record)])
    expect(h.recorded).toEqual([])
    expect(h.trims).toEqual([{ tenant: 'acme', keep: 0 }])
  })
})
