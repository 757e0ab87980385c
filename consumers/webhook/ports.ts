// The webhook delivery engine's ports: what it needs from the registry, the clock, the network and
// dead-letter storage. The composition root wires real implementations; tests use doubles here.
import type { BusMessage } from '../../core/bus/bus.ts'
import type { CloudEvent } from '../../core/events/cloudevent.ts'
import type {
  RedriveClaim,
  RedriveOutcome,
  WebhookStatsDelta,
  WebhookSubscription,
} from '../../core/registry/model.ts'
import type { RecentError } from './retry.ts'

/** Time and waiting, so retry schedules can be tested exactly. */
export interface Clock {
  now(): number
  /** Resolves after `ms`, or early when `signal` aborts (never rejects). */
  sleep(ms: number, signal: AbortSignal): Promise<void>
}

/** One HTTP request to an endpoint: always a POST. */
export interface WebhookRequest {
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: Buffer
}

/**
 * What one attempt came to: `delivered` (2xx), `retry` (408, 429, 5xx, network, timeout; with the
 * endpoint's Retry-After in ms when it sent one), `gone` (410: disable the subscription) or
 * `rejected` (any other status: retrying the same bytes cannot help).
 */
export type SendOutcome =
  | { readonly kind: 'delivered'; readonly status: number }
  | {
      readonly kind: 'retry'
      readonly status?: number | undefined
      readonly retryAfterMs?: number | undefined
      readonly error: string
    }
  | { readonly kind: 'gone'; readonly status: 410 }
  | { readonly kind: 'rejected'; readonly status: number; readonly error: string }

export interface SendOptions {
  readonly timeoutMs: number
  /** Aborts the request (shutdown); the outcome is then `retry`. */
  readonly signal: AbortSignal
}

/** Sends one request and classifies the answer; never throws. */
export interface WebhookSender {
  send(request: WebhookRequest, options: SendOptions): Promise<SendOutcome>
}

export type DeadLetterReason = 'retries-exhausted' | 'rejected'

/** Where an event goes after its last attempt; the registry decides how it is stored. */
export interface DeadLetterPort {
  deadLetter(
    subscription: WebhookSubscription,
    event: CloudEvent,
    reason: DeadLetterReason,
    attempts: number,
    lastError: string,
  ): Promise<void>
}

/**
 * Where each failed attempt is reported, so the API can show it whichever process delivers.
 * Called on the delivery path: it must neither throw nor wait (buffer and write in the background).
 */
export interface ErrorLog {
  record(subscription: WebhookSubscription, error: RecentError): void
}

/** Re-drive requests as the registry database keeps them (see redrive.ts). */
export interface RedrivePort {
  /** Claims up to `limit` letters the API asked to re-drive, oldest first, for `leaseMs`. */
  claim(subscription: WebhookSubscription, limit: number, leaseMs: number): Promise<RedriveClaim[]>
  finish(claim: RedriveClaim, outcome: RedriveOutcome): Promise<void>
  /** Subscriptions with requested letters that no engine holds (a sweep picks up lost changes). */
  pending(): Promise<Array<{ readonly tenant: string; readonly subscription: string }>>
}

/** Where on the dead-letter topic a letter is. */
export interface RecordPosition {
  readonly partition: number
  readonly offset: number
}

export const positionKey = (p: RecordPosition): string => `${p.partition}:${p.offset}`

/** Records of the dead-letter topic read back by position (positionKey). */
export interface DeadLetterRecords {
  /**
   * `found` holds the records read; `gone` the positions no longer on the topic (retention).
   * Positions in neither could not be read in time.
   */
  read(positions: readonly RecordPosition[]): Promise<{ found: Map<string, BusMessage>; gone: Set<string> }>
}

/** Where delivery counters go (the registry database); stats.ts batches them. */
export interface StatsSink {
  add(deltas: readonly WebhookStatsDelta[]): Promise<void>
}

/** The registry as the engine sees it. */
export interface SubscriptionSource {
  /** Every subscription of every tenant, in any state. */
  listAll(): Promise<WebhookSubscription[]>
  get(tenant: string, id: string): Promise<WebhookSubscription | undefined>
  setState(tenant: string, id: string, state: WebhookSubscription['state']): Promise<void>
  /** The device's labels, or undefined when it does not exist (any label filter then fails). */
  deviceLabels(tenant: string, device: string): Promise<Readonly<Record<string, string>> | undefined>
  /** The subscription's `whsec_…` signing secret, decrypted. */
  secretOf(subscription: WebhookSubscription): string
}

/** The registry changes the engine reacts to (a subset of RegistryChange). */
export interface SubscriptionChange {
  readonly op: 'created' | 'updated' | 'deleted'
  readonly resource: string
  readonly tenant: string
  readonly id?: string | undefined
}

/** The real clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal.aborted) return resolve()
      const done = (): void => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal.addEventListener('abort', done, { once: true })
    }),
}
