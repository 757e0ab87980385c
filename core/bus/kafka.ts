// The Kafka EventBus: one idempotent producer and one admin client per bus, one consumer-group
// member per subscription, all on @platformatic/kafka (the only module family that imports it).
import { Admin, compressionsAlgorithms } from '@platformatic/kafka'
import { TributaryError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { silentLogger } from '../log.ts'
import type { EventBus, Subscription, TopicConfig } from './bus.ts'
import { DEFAULT_MAX_MESSAGE_BYTES } from './bus.ts'
import { createBusAdmin } from './kafka-admin.ts'
import { clientOptions, connectionOptions } from './kafka-client.ts'
import { openSubscription } from './kafka-consumer.ts'
import { describeKafkaError, unavailable, withDeadline } from './kafka-errors.ts'
import { createPublisher } from './kafka-producer.ts'
import { createTopicCache } from './kafka-topics.ts'

/**
 * Record batch codecs. @platformatic/kafka needs no native addon for any of them: gzip and zstd come
 * from node:zlib (zstd since Node 22.15/23.8, so always on our Node 24), snappy and lz4 from its
 * WebAssembly build (@platformatic/wasm-utils). Brokers accept and consumers read all five.
 */
export type KafkaCompression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd'

export interface KafkaBusOptions {
  readonly brokers: string[]
  readonly clientId?: string | undefined
  /** Codec of produced batches (default none). */
  readonly compression?: KafkaCompression | undefined
  /** Records published while a request is in flight wait at least this long, from the oldest, before the next request (default 2 ms); an idle producer sends at once. */
  readonly lingerMs?: number | undefined
  /** Largest produce request the accumulator builds (default 1 MiB). */
  readonly batchMaxBytes?: number | undefined
  /** max.message.bytes of topics created without one, and the limit of topics whose config is unknown (default 1 MiB). */
  readonly maxMessageBytes?: number | undefined
  /** Consumer group session timeout (default 30 s). */
  readonly sessionTimeoutMs?: number | undefined
  /** Consumer group heartbeat interval (default 3 s). */
  readonly heartbeatIntervalMs?: number | undefined
  /** Bound on waiting for in-flight batches when closing (default 10 s). */
  readonly drainTimeoutMs?: number | undefined
  /** Settings of topics created without them (default: the broker's). */
  readonly defaultTopicConfig?: Pick<TopicConfig, 'retentionMs' | 'retentionBytes'> | undefined
  readonly log?: Logger | undefined
}

const HEALTH_TIMEOUT_MS = 5_000
/** Fetched bytes per partition and request, unless a topic allows larger batches. */
const PARTITION_FETCH_BYTES = 1024 * 1024

function checkOptions(options: KafkaBusOptions): void {
  const problems: string[] = []
  if (options.brokers.length === 0) problems.push('brokers: at least one host:port is needed')
  const compression = options.compression ?? 'none'
  const codec = (compressionsAlgorithms as Record<string, { available: boolean } | undefined>)[compression]
  if (codec === undefined) {
    problems.push(`compression: ${JSON.stringify(compression)} is not one of none, gzip, snappy, lz4, zstd`)
  } else if (!codec.available) {
    problems.push(`compression: ${compression} is not available on Node ${process.versions.node}`)
  }
  const positive = {
    lingerMs: 0,
    batchMaxBytes: 1,
    maxMessageBytes: 1,
    sessionTimeoutMs: 1,
    heartbeatIntervalMs: 1,
    drainTimeoutMs: 0,
  }
  for (const [name, min] of Object.entries(positive)) {
    const value = options[name as keyof typeof positive]
    if (value !== undefined && !(Number.isInteger(value) && value >= min)) {
      problems.push(`${name}: ${value} is not an integer of at least ${min}`)
    }
  }
  if (problems.length > 0) {
    throw new TributaryError('CONFIG_INVALID', `invalid Kafka bus options: ${problems.join('; ')}`)
  }
}

export async function createKafkaBus(options: KafkaBusOptions): Promise<EventBus & { kind: 'kafka' }> {
  checkOptions(options)
  const log = options.log ?? silentLogger
  const client = clientOptions(options.brokers, options.clientId ?? 'tributary')
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
  const drainTimeoutMs = options.drainTimeoutMs ?? 10_000
  const where = options.brokers.join(',')

  const admin = new Admin(client)
  try {
    // Fail at start with a readable reason rather than at the first publish.
    await withDeadline(admin.metadata({ topics: [] }), HEALTH_TIMEOUT_MS * 2, `Kafka at ${where}`)
  } catch (err) {
    await admin.close().catch(() => undefined)
    throw err instanceof TributaryError ? err : unavailable(`Kafka at ${where} does not answer`, err)
  }
  const topics = createTopicCache(admin, { fallbackMaxMessageBytes: maxMessageBytes, log })
  const publisher = createPublisher({
    client: { ...client, ...(options.compression === undefined ? {} : { compression: options.compression }) },
    topics,
    lingerMs: options.lingerMs ?? 2,
    batchMaxBytes: options.batchMaxBytes ?? 1024 * 1024,
  })
  const subscriptions = new Set<Subscription>()
  const fetchBytes = new Map<string, number>()
  let closing: Promise<void> | undefined

  return {
    kind: 'kafka',
    publish: (records) => publisher.publish(records),

    async subscribe(subscribeOptions) {
      if (closing !== undefined) throw new TributaryError('BUS_CLOSED', 'the event bus is closing')
      for (const name of subscribeOptions.topics) {
        // BUS_UNKNOWN_TOPIC before any consumer exists, from fresh metadata (subscribing is rare);
        // a fetched batch is never larger than the topic's max.message.bytes.
        topics.forget(name)
        const info = await topics.get(name)
        fetchBytes.set(name, Math.max(PARTITION_FETCH_BYTES, info.maxMessageBytes))
      }
      const subscription = await openSubscription(subscribeOptions, {
        client,
        connection: connectionOptions(),
        sessionTimeoutMs: options.sessionTimeoutMs ?? 30_000,
        heartbeatIntervalMs: options.heartbeatIntervalMs ?? 3_000,
        drainTimeoutMs,
        partitionMaxBytes: (topic) => fetchBytes.get(topic) ?? PARTITION_FETCH_BYTES,
        log,
        onClosed: (s) => subscriptions.delete(s),
      })
      if (closing !== undefined) {
        await subscription.close()
        throw new TributaryError('BUS_CLOSED', 'the event bus is closing')
      }
      subscriptions.add(subscription)
      return subscription
    },

    admin: createBusAdmin(admin, topics, {
      maxMessageBytes,
      defaultTopicConfig: options.defaultTopicConfig ?? {},
    }),

    async health() {
      if (closing !== undefined) return { ok: false, reason: 'the Kafka event bus is closing' }
      try {
        await withDeadline(
          admin.metadata({ topics: [], forceUpdate: true, retries: 0 }),
          HEALTH_TIMEOUT_MS,
          `Kafka at ${where} did not answer a metadata request`,
        )
        return { ok: true }
      } catch (err) {
        const reason = err instanceof TributaryError ? err.message : describeKafkaError(err)
        return { ok: false, reason: `Kafka at ${where} is unreachable: ${reason}` }
      }
    },

    close() {
      closing ??= (async () => {
        // Publishes are refused from here on; what is queued is still sent.
        const flushed = publisher
          .close(performance.now() + drainTimeoutMs)
          .catch((err: unknown) => log.error({ err }, 'kafka bus: closing the producer failed'))
        await Promise.allSettled([...subscriptions].map((s) => s.close()))
        await flushed
        await admin
          .close()
          .catch((err: unknown) => log.error({ err }, 'kafka bus: closing the admin client failed'))
      })()
      return closing
    },
  }
}
