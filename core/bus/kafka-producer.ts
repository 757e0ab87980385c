// Publishing on the Kafka bus: validates a whole publish call against cached topic metadata, picks
// partitions like the Java client, and hands the records to the accumulator (kafka-batching.ts).
//
// Ordering: one idempotent producer per bus (acks=all) and one produce request in flight at a time.
// The client's idempotent mode already allows one request per connection, but it numbers sequences
// when a request is built: a second request built while the first waits for a retry would reach the
// broker first, fail with OUT_OF_ORDER_SEQUENCE and make the client reset its producer id, after
// which the retried batch lands behind it. Waiting for each request keeps per-partition order; the
// records queued meanwhile go together in the next request, which keeps the requests large.
import type { MessageToProduce, ProducerOptions } from '@platformatic/kafka'
import { Producer } from '@platformatic/kafka'
import { TributaryError } from '../errors.ts'
import { sleep } from './backoff.ts'
import type { OutgoingRecord, PublishAck } from './bus.ts'
import type { BaseOffsets, PreparedRecord } from './kafka-batching.ts'
import {
  RECORD_BATCH_OVERHEAD,
  createAccumulator,
  partitionKey,
  recordSizeUpperBound,
} from './kafka-batching.ts'
import { produceError } from './kafka-errors.ts'
import type { TopicCache, TopicInfo } from './kafka-topics.ts'
import { partitionFor } from './partitioner.ts'

// Header names stay strings up to the client, whose header-key serializer encodes them.
type KafkaProducer = Producer<Buffer, Buffer, string, Buffer>

/** Distinct header names whose bytes are kept (CloudEvent attributes, a bounded set in practice). */
const MAX_CACHED_HEADER_NAMES = 1024

/**
 * Header names as bytes, cached: the same few names come with every record. The client must get
 * bytes, not strings: it measures a string header with .length, not in bytes.
 */
function headerNameEncoder(): (name?: string) => Buffer | undefined {
  const cache = new Map<string, Buffer>()
  return (name) => {
    if (name === undefined) return undefined
    let bytes = cache.get(name)
    if (bytes === undefined) {
      bytes = Buffer.from(name)
      // Past the bound (names chosen by event producers), encode without keeping.
      if (cache.size < MAX_CACHED_HEADER_NAMES) cache.set(name, bytes)
    }
    return bytes
  }
}

export interface Publisher {
  publish(records: readonly OutgoingRecord[]): Promise<PublishAck[]>
  /** Refuses new publishes, sends what is queued (until `deadline`, performance.now()) and closes the producer. */
  close(deadline: number): Promise<void>
}

export interface PublisherOptions {
  readonly client: Omit<
    ProducerOptions<Buffer, Buffer, string, Buffer>,
    'idempotent' | 'acks' | 'serializers'
  >
  readonly topics: TopicCache
  readonly lingerMs: number
  readonly batchMaxBytes: number
}

export function createPublisher(options: PublisherOptions): Publisher {
  const producer: KafkaProducer = new Producer({
    ...options.client,
    idempotent: true,
    acks: -1,
    autocreateTopics: false,
    serializers: { headerKey: headerNameEncoder() },
  })
  const { topics } = options
  const accumulator = createAccumulator({
    lingerMs: options.lingerMs,
    batchMaxBytes: options.batchMaxBytes,
    send: (records) => send(producer, topics, records),
  })
  let closing = false

  async function prepare(records: readonly OutgoingRecord[]): Promise<PreparedRecord[]> {
    const infos = new Map<string, TopicInfo>()
    for (const record of records) {
      if (!infos.has(record.topic)) infos.set(record.topic, await topics.get(record.topic))
    }
    const now = Date.now()
    return records.map((r) => {
      const info = infos.get(r.topic)!
      const key = r.key === undefined ? undefined : Buffer.from(r.key)
      const size = recordSizeUpperBound(key, r.value, r.headers)
      // The broker's max.message.bytes bounds a whole record batch, so a lone record carries the
      // batch header too.
      if (size + RECORD_BATCH_OVERHEAD > info.maxMessageBytes) {
        const bytes = size + RECORD_BATCH_OVERHEAD
        throw new TributaryError(
          'BUS_RECORD_TOO_LARGE',
          `record of ${bytes} bytes exceeds the ${info.maxMessageBytes}-byte limit of topic ${r.topic}`,
          { details: { size: bytes, limit: info.maxMessageBytes, topic: r.topic } },
        )
      }
      const partition = r.partition ?? partitionFor(r.key, info.partitions)
      if (!Number.isInteger(partition) || partition < 0 || partition >= info.partitions) {
        throw new TributaryError('BUS_UNKNOWN_TOPIC', `topic ${r.topic} has no partition ${partition}`)
      }
      return {
        topic: r.topic,
        partition,
        key,
        value: r.value,
        headers: r.headers,
        timestamp: r.timestamp === undefined ? now : Math.trunc(r.timestamp),
        size,
        limit: info.maxMessageBytes,
      }
    })
  }

  return {
    async publish(records) {
      if (closing) throw new TributaryError('BUS_CLOSED', 'the event bus is closing')
      // Validate the whole call before anything of it is queued (STYLE.md 10).
      const prepared = await prepare(records)
      return accumulator.enqueue(prepared)
    },
    async close(deadline) {
      closing = true
      const timeout = new AbortController()
      const flushed = await Promise.race([
        accumulator.close().then(() => true),
        sleep(Math.max(0, deadline - performance.now()), timeout.signal).then(() => false),
      ])
      timeout.abort()
      // Closing the client fails whatever is still waiting for the broker.
      await producer.close(true)
      if (!flushed)
        throw new TributaryError(
          'BUS_UNAVAILABLE',
          'closed the producer before Kafka acknowledged every record',
        )
    },
  }
}

async function send(
  producer: KafkaProducer,
  topics: TopicCache,
  records: readonly PreparedRecord[],
): Promise<BaseOffsets> {
  const messages: Array<MessageToProduce<Buffer, Buffer, string, Buffer>> = records.map((r) => ({
    topic: r.topic,
    partition: r.partition,
    // The client's types call key and value required, but it writes a missing one as null.
    key: r.key as Buffer,
    value: r.value as Buffer,
    // The client only reads the map (its serializer encodes the names); anything but a Map is copied
    // into one, since the client would take any other object for a record of headers.
    headers: r.headers instanceof Map ? (r.headers as Map<string, Buffer>) : new Map(r.headers),
    timestamp: BigInt(r.timestamp),
  }))
  try {
    const result = await producer.send({ messages })
    const base = new Map<string, number>()
    for (const { topic, partition, offset } of result.offsets ?? []) {
      base.set(partitionKey(topic, partition), Number(offset))
    }
    return base
  } catch (err) {
    const names = [...new Set(records.map((r) => r.topic))]
    const error = produceError(err, names)
    if (error.code !== 'BUS_UNAVAILABLE') for (const name of names) topics.forget(name)
    throw error
  }
}
