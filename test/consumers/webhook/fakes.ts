// Doubles at the webhook engine's ports: a bus that hands batches to the handler on demand, a
// scripted sender, a clock that records waits and returns at once, recording registry ports, and
// an in-memory re-drive table with the dead-letter records it reads back.
import { randomBytes } from 'node:crypto'
import type { BusMessage, SubscribeOptions, Subscription } from '../../../core/bus/bus.ts'
import { buildEvent } from '../../../core/events/build.ts'
import type { CloudEvent } from '../../../core/events/cloudevent.ts'
import { encodeBinary } from '../../../core/events/kafka-codec.ts'
import type { RedriveClaim, RedriveOutcome, WebhookSubscription } from '../../../core/registry/model.ts'
import type {
  Clock,
  DeadLetterPort,
  DeadLetterRecords,
  RecordPosition,
  RedrivePort,
  SendOutcome,
  SubscriptionSource,
  WebhookRequest,
  WebhookSender,
} from '../../../consumers/webhook/ports.ts'
import { positionKey } from '../../../consumers/webhook/ports.ts'

export const SECRET = `whsec_${randomBytes(32).toString('base64')}`

export function subscription(overrides: Partial<WebhookSubscription> = {}): WebhookSubscription {
  return {
    tenant: 'acme',
    id: '0190a000-0000-7000-8000-000000000001',
    url: 'https://hooks.example.com/in',
    filter: {},
    mode: 'binary',
    batchSize: null,
    secretEncrypted: 'v1.x.y.z',
    headers: {},
    timeoutMs: 1000,
    retry: { maxAttempts: 4, initialBackoffMs: 1000, maxBackoffMs: 5000 },
    state: 'active',
    replayFrom: null,
    replayGeneration: 0,
    version: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    ...overrides,
  }
}

let offset = 0
export function telemetry(device: string, channel = 'temp', data: unknown = { v: 1 }): CloudEvent {
  return buildEvent({
    kind: 'telemetry',
    tenant: 'acme',
    device,
    protocol: 'mqtt',
    subject: channel,
    data: Buffer.from(JSON.stringify(data)),
    datacontenttype: 'application/json',
  })
}

export function message(event: CloudEvent, partition = 0): BusMessage {
  const { key, value, headers } = encodeBinary(event)
  return {
    topic: 'tributary.events.acme',
    partition,
    offset: offset++,
    timestamp: Date.now(),
    key: key?.toString(),
    value,
    headers,
  }
}

/** A bus whose one subscription runs batches when the test says so, like the real one. */
export interface FakeBus {
  subscribe(options: SubscribeOptions): Promise<Subscription>
  readonly options: SubscribeOptions[]
  /** Runs a batch through the handler; resolves true when it would be committed. */
  run(batch: readonly BusMessage[], index?: number): Promise<boolean>
  paused: boolean
  closed: number
}

export function fakeBus(): FakeBus {
  const running = new Set<Promise<unknown>>()
  const bus: FakeBus = {
    options: [],
    paused: false,
    closed: 0,
    async subscribe(options) {
      bus.options.push(options)
      return {
        pause: () => void (bus.paused = true),
        resume: () => void (bus.paused = false),
        get paused() {
          return bus.paused
        },
        seek: async () => undefined,
        assignments: () => [],
        async close() {
          bus.closed++
          await Promise.allSettled([...running])
        },
      }
    },
    run(batch, index = bus.options.length - 1) {
      const options = bus.options[index]
      if (options === undefined) throw new Error('nothing subscribed')
      const done = options.handler(batch).then(
        () => true,
        (err: unknown) => {
          options.onError?.(err, batch)
          return false
        },
      )
      running.add(done)
      void done.finally(() => running.delete(done))
      return done
    },
  }
  return bus
}

export interface FakeSender extends WebhookSender {
  readonly requests: WebhookRequest[]
  /** Outcomes to return in order; `delivered` once they run out. */
  readonly script: Array<SendOutcome | ((signal: AbortSignal) => Promise<SendOutcome>)>
}

export function fakeSender(): FakeSender {
  const sender: FakeSender = {
    requests: [],
    script: [],
    async send(request, options) {
      sender.requests.push(request)
      const next = sender.script.shift()
      if (next === undefined) return { kind: 'delivered', status: 200 }
      return typeof next === 'function' ? next(options.signal) : next
    },
  }
  return sender
}

export interface FakeClock extends Clock {
  readonly sleeps: number[]
  time: number
}

/** Every wait is recorded and passes at once, moving the time forward. */
export function fakeClock(start = Date.parse('2026-03-01T12:00:00Z')): FakeClock {
  const clock: FakeClock = {
    sleeps: [],
    time: start,
    now: () => clock.time,
    async sleep(ms) {
      clock.sleeps.push(ms)
      clock.time += ms
    },
  }
  return clock
}

export interface Letter {
  readonly id: string
  readonly reason: string
  readonly attempts: number
  readonly lastError: string
}

export function fakeDeadLetters(): DeadLetterPort & { letters: Letter[] } {
  const port = {
    letters: [] as Letter[],
    async deadLetter(
      _sub: WebhookSubscription,
      event: CloudEvent,
      reason: string,
      attempts: number,
      lastError: string,
    ) {
      port.letters.push({ id: event.attributes.id, reason, attempts, lastError })
    },
  }
  return port
}

export interface FakeSource extends SubscriptionSource {
  readonly subscriptions: Map<string, WebhookSubscription>
  readonly states: Array<{ tenant: string; id: string; state: string }>
  readonly labels: Map<string, Record<string, string>>
}

export function fakeSource(initial: WebhookSubscription[] = []): FakeSource {
  const source: FakeSource = {
    subscriptions: new Map(initial.map((s) => [`${s.tenant}/${s.id}`, s])),
    states: [],
    labels: new Map(),
    listAll: async () => [...source.subscriptions.values()],
    get: async (tenant, id) => source.subscriptions.get(`${tenant}/${id}`),
    async setState(tenant, id, state) {
      source.states.push({ tenant, id, state })
    },
    deviceLabels: async (tenant, device) => source.labels.get(`${tenant}/${device}`),
    secretOf: () => SECRET,
  }
  return source
}

export interface FakeRedrive extends RedrivePort {
  /** Letters requested and not yet claimed, in claim order. */
  readonly requested: RedriveClaim[]
  readonly claims: RedriveClaim[][]
  readonly finished: Array<{ offset: number; outcome: RedriveOutcome }>
}

/** Requested letters handed out in order; released ones go back to the end. */
export function fakeRedrive(): FakeRedrive {
  const port: FakeRedrive = {
    requested: [],
    claims: [],
    finished: [],
    async claim(subscription, limit) {
      const taken = port.requested.filter((c) => c.subscription === subscription.id).slice(0, limit)
      for (const c of taken) port.requested.splice(port.requested.indexOf(c), 1)
      port.claims.push(taken)
      return taken
    },
    async finish(claim, outcome) {
      port.finished.push({ offset: claim.offset, outcome })
      if (outcome === 'released') port.requested.push(claim)
    },
    pending: async () =>
      [...new Set(port.requested.map((c) => `${c.tenant}\n${c.subscription}`))].map((k) => {
        const [tenant = '', subscription = ''] = k.split('\n')
        return { tenant, subscription }
      }),
  }
  return port
}

/** The dead-letter topic as a map of records; positions listed in `gone` were deleted by retention. */
export function fakeRecords(): DeadLetterRecords & {
  readonly records: Map<string, BusMessage>
  readonly gone: Set<string>
  readonly reads: RecordPosition[][]
} {
  const fake = {
    records: new Map<string, BusMessage>(),
    gone: new Set<string>(),
    reads: [] as RecordPosition[][],
    async read(positions: readonly RecordPosition[]) {
      fake.reads.push([...positions])
      const found = new Map<string, BusMessage>()
      const gone = new Set<string>()
      for (const p of positions) {
        const key = positionKey(p)
        const record = fake.records.get(key)
        if (fake.gone.has(key)) gone.add(key)
        else if (record !== undefined) found.set(key, record)
      }
      return { found, gone }
    },
  }
  return fake
}

/** A webhook dead letter of `event` at `offset` of partition 0: its claim and its record. */
export function letterOf(
  event: CloudEvent,
  offset: number,
  sub: WebhookSubscription = subscription(),
): { claim: RedriveClaim; record: BusMessage } {
  const { key, value, headers } = encodeBinary(event)
  const withLetterHeaders = new Map(headers)
  withLetterHeaders.set('tributary_step', Buffer.from('webhook'))
  withLetterHeaders.set('tributary_subscription', Buffer.from(sub.id))
  return {
    claim: { tenant: sub.tenant, subscription: sub.id, id: event.attributes.id, partition: 0, offset },
    record: {
      topic: 'tributary.deadletter',
      partition: 0,
      offset,
      timestamp: Date.now(),
      key: key?.toString(),
      value,
      headers: withLetterHeaders,
    },
  }
}
