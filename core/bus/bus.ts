// The EventBus port: a partitioned, replayable log with consumer groups. Two implementations sit
// beside it (embedded file log, Kafka); nothing outside core/ knows which one runs.

export type Headers = ReadonlyMap<string, Buffer>

export interface OutgoingRecord {
  readonly topic: string
  /** Records with the same key land in the same partition, in publish order. */
  readonly key?: string | undefined
  readonly value?: Buffer | undefined
  readonly headers?: Headers | undefined
  /** Overrides the key's partition. */
  readonly partition?: number | undefined
  /** Milliseconds since the epoch; defaults to the time of publishing. */
  readonly timestamp?: number | undefined
}

export interface PublishAck {
  readonly topic: string
  readonly partition: number
  readonly offset: number
}

export interface BusMessage {
  readonly topic: string
  readonly partition: number
  readonly offset: number
  readonly timestamp: number
  readonly key: string | undefined
  readonly value: Buffer | undefined
  readonly headers: Headers
}

/** Where a subscription starts when its group has no committed offset, or always when `reset` is set. */
export type StartPosition =
  | 'earliest'
  | 'latest'
  | { readonly time: number }
  | {
      readonly offsets: ReadonlyArray<{
        readonly topic: string
        readonly partition: number
        readonly offset: number
      }>
    }

export interface SubscribeOptions {
  /** Consumer group: members split the partitions; each group gets every record. */
  readonly group: string
  readonly topics: readonly string[]
  /**
   * Called with consecutive records of one partition. Partitions run concurrently, one batch at a
   * time each. The batch's offsets are committed after the returned promise resolves; if it
   * rejects, the same batch is delivered again after a backoff (at-least-once).
   */
  readonly handler: (batch: readonly BusMessage[]) => Promise<void>
  /** Start position when the group has no committed offset (default 'latest'). */
  readonly from?: StartPosition | undefined
  /** Ignore committed offsets and start at `from` (replay). */
  readonly reset?: boolean | undefined
  /**
   * Commit offsets (default true). False: a throwaway reader (a live tail) that keeps its place in
   * memory only and leaves no committed offsets behind for its group.
   */
  readonly commit?: boolean | undefined
  /** Most records in one batch (default 100). */
  readonly maxBatch?: number | undefined
  /** First redelivery delay after a handler failure, doubled up to 30 s (default 200 ms). */
  readonly retryBackoffMs?: number | undefined
  /** Called when a handler fails; the batch will be redelivered. */
  readonly onError?: ((err: unknown, batch: readonly BusMessage[]) => void) | undefined
}

export interface Subscription {
  /** Stop fetching (backpressure); in-flight batches finish. */
  pause(): void
  resume(): void
  readonly paused: boolean
  /** Moves every assigned partition to a new position; takes effect after in-flight batches. */
  seek(position: Exclude<StartPosition, 'latest'> | 'latest'): Promise<void>
  /** Partitions this member currently owns, as `topic:partition`. */
  assignments(): string[]
  /** Leaves the group after in-flight batches finish and their offsets are committed. */
  close(): Promise<void>
}

export interface TopicConfig {
  /** Delete records older than this (-1 = never). */
  readonly retentionMs?: number | undefined
  /** Per partition: delete the oldest segments past this size (-1 = never). */
  readonly retentionBytes?: number | undefined
  /** Largest record the topic accepts, in bytes. */
  readonly maxMessageBytes?: number | undefined
}

/** A topic's settings with every default filled in. */
export interface TopicSettings {
  readonly retentionMs: number
  readonly retentionBytes: number
  readonly maxMessageBytes: number
}

export interface TopicSpec {
  readonly name: string
  readonly partitions: number
  readonly config?: TopicConfig | undefined
}

export interface TopicDescription {
  readonly name: string
  readonly partitions: number
  readonly config: TopicSettings
}

export interface BusAdmin {
  /** Creates the topics that do not exist yet; existing ones are left as they are. */
  createTopics(topics: readonly TopicSpec[]): Promise<void>
  deleteTopics(names: readonly string[]): Promise<void>
  listTopics(): Promise<string[]>
  describeTopic(name: string): Promise<TopicDescription | undefined>
  /** Earliest and next offsets of each partition. */
  offsets(topic: string): Promise<Array<{ partition: number; earliest: number; next: number }>>
  /** The group's committed offsets on a topic, by partition. */
  committed(group: string, topic: string): Promise<Map<number, number>>
}

export interface BusHealth {
  readonly ok: boolean
  readonly reason?: string | undefined
}

export interface EventBus {
  readonly kind: 'embedded' | 'kafka'
  /** Resolves when every record is durable (fsync'd, or acknowledged by all in-sync replicas). */
  publish(records: readonly OutgoingRecord[]): Promise<PublishAck[]>
  /** Resolves once the member has joined its group and holds its first assignment. */
  subscribe(options: SubscribeOptions): Promise<Subscription>
  readonly admin: BusAdmin
  health(): Promise<BusHealth>
  /** Refuses new publishes, waits for pending ones and in-flight batches (bounded), then closes. */
  close(): Promise<void>
}

export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
export const DEFAULT_MAX_BATCH = 100
export const DEFAULT_RETRY_BACKOFF_MS = 200
export const MAX_RETRY_BACKOFF_MS = 30_000
