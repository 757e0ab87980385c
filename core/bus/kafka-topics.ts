// What the Kafka bus knows of each topic (partition count, max.message.bytes), cached so a publish
// call is validated without a round trip; a miss asks the broker once, without the client's retries.
import type { Admin } from '@platformatic/kafka'
import { ConfigResourceTypes } from '@platformatic/kafka'
import { TributaryError } from '../errors.ts'
import type { Logger } from '../log.ts'
import { isUnknownTopic, unavailable } from './kafka-errors.ts'

export interface TopicInfo {
  readonly partitions: number
  readonly maxMessageBytes: number
}

export interface TopicCache {
  /** Rejects with BUS_UNKNOWN_TOPIC or BUS_UNAVAILABLE. */
  get(name: string): Promise<TopicInfo>
  /** Drops what is known of a topic (created, deleted or refused by the broker). */
  forget(name: string): void
}

/** Entries older than this are served once more while a refresh runs in the background. */
const FRESH_MS = 30_000

export const unknownTopic = (name: string): TributaryError =>
  new TributaryError('BUS_UNKNOWN_TOPIC', `topic ${JSON.stringify(name)} does not exist`)

/** The partition count of a topic from fresh metadata; BUS_UNKNOWN_TOPIC when it does not exist. */
export async function partitionCount(admin: Admin, name: string): Promise<number> {
  let metadata
  try {
    metadata = await admin.metadata({ topics: [name], forceUpdate: true, retries: 0 })
  } catch (err) {
    if (isUnknownTopic(err)) throw unknownTopic(name)
    throw unavailable(`cannot read the metadata of topic ${name}`, err)
  }
  const topic = metadata.topics.get(name)
  if (topic === undefined) throw unknownTopic(name)
  return topic.partitionsCount
}

/** The named settings of a topic as the broker reports them (defaults included). */
export async function topicConfig(admin: Admin, name: string, keys: string[]): Promise<Map<string, string>> {
  const [description] = await admin.describeConfigs({
    resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: name, configurationKeys: keys }],
  })
  const values = new Map<string, string>()
  for (const { name: key, value } of description?.configs ?? []) {
    if (typeof value === 'string') values.set(key, value)
  }
  return values
}

export function createTopicCache(
  admin: Admin,
  options: { readonly fallbackMaxMessageBytes: number; readonly log: Logger },
): TopicCache {
  const entries = new Map<string, { info: TopicInfo; fetchedAt: number }>()
  const loading = new Map<string, Promise<TopicInfo>>()

  async function maxMessageBytes(name: string): Promise<number> {
    try {
      const value = Number((await topicConfig(admin, name, ['max.message.bytes'])).get('max.message.bytes'))
      if (Number.isInteger(value) && value > 0) return value
    } catch (err) {
      options.log.warn({ err, topic: name }, 'kafka bus: cannot read max.message.bytes; using the default')
    }
    return options.fallbackMaxMessageBytes
  }

  function load(name: string): Promise<TopicInfo> {
    let pending = loading.get(name)
    if (pending === undefined) {
      pending = (async () => {
        try {
          const partitions = await partitionCount(admin, name)
          const info = { partitions, maxMessageBytes: await maxMessageBytes(name) }
          entries.set(name, { info, fetchedAt: performance.now() })
          return info
        } catch (err) {
          if (err instanceof TributaryError && err.code === 'BUS_UNKNOWN_TOPIC') entries.delete(name)
          throw err
        } finally {
          loading.delete(name)
        }
      })()
      loading.set(name, pending)
    }
    return pending
  }

  return {
    async get(name) {
      const entry = entries.get(name)
      if (entry === undefined) return load(name)
      if (performance.now() - entry.fetchedAt > FRESH_MS) {
        load(name).catch((err: unknown) =>
          options.log.debug({ err, topic: name }, 'kafka bus: topic metadata refresh failed'),
        )
      }
      return entry.info
    },
    forget(name) {
      entries.delete(name)
    },
  }
}
