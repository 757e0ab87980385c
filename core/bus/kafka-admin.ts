// BusAdmin on Kafka: topics created by the pipeline (never auto-created) with their retention and
// size settings, and the offsets and group commits operators and metrics read.
import type { Admin } from '@platformatic/kafka'
import { ListOffsetTimestamps } from '@platformatic/kafka'
import { TributaryError, isTributaryError } from '../errors.ts'
import { sleep } from './backoff.ts'
import type { BusAdmin, TopicConfig, TopicDescription, TopicSpec } from './bus.ts'
import { assertTopicName } from './embedded/topics.ts'
import { hasKafkaError, unavailable } from './kafka-errors.ts'
import type { TopicCache } from './kafka-topics.ts'
import { partitionCount, topicConfig } from './kafka-topics.ts'

/** How long createTopics waits for every new partition to have a leader. */
const LEADER_WAIT_MS = 15_000

export interface KafkaAdminOptions {
  /** max.message.bytes of topics created without one. */
  readonly maxMessageBytes: number
  /** Settings of topics created without them. */
  readonly defaultTopicConfig: Pick<TopicConfig, 'retentionMs' | 'retentionBytes'>
}

export function createBusAdmin(admin: Admin, topics: TopicCache, options: KafkaAdminOptions): BusAdmin {
  let replicas: number | undefined

  // One broker (development) takes replication factor 1; a cluster gets min(3, brokers).
  async function replicationFactor(): Promise<number> {
    if (replicas === undefined) {
      const brokers = (await admin.metadata({ topics: [], forceUpdate: true })).brokers.size
      replicas = brokers <= 1 ? 1 : Math.min(3, brokers)
    }
    return replicas
  }

  async function createTopic(spec: TopicSpec, replicationFactor: number): Promise<void> {
    const settings = {
      'retention.ms': spec.config?.retentionMs ?? options.defaultTopicConfig.retentionMs,
      'retention.bytes': spec.config?.retentionBytes ?? options.defaultTopicConfig.retentionBytes,
      'max.message.bytes': spec.config?.maxMessageBytes ?? options.maxMessageBytes,
    }
    const configs = Object.entries(settings)
      .filter(([, value]) => value !== undefined)
      .map(([name, value]) => ({ name, value: String(value) }))
    try {
      await admin.createTopics({
        topics: [spec.name],
        partitions: spec.partitions,
        replicas: replicationFactor,
        configs,
      })
    } catch (err) {
      if (hasKafkaError(err, 'TOPIC_ALREADY_EXISTS')) return
      if (hasKafkaError(err, 'INVALID_TOPIC_EXCEPTION') || hasKafkaError(err, 'INVALID_CONFIG')) {
        throw new TributaryError('BUS_INVALID_TOPIC', `Kafka refused topic ${spec.name}`, { cause: err })
      }
      throw unavailable(`cannot create topic ${spec.name}`, err)
    } finally {
      topics.forget(spec.name)
    }
  }

  // A publish right after createTopics must find the topic: wait until every partition has a leader.
  async function waitForLeaders(name: string): Promise<void> {
    const deadline = performance.now() + LEADER_WAIT_MS
    for (;;) {
      try {
        const metadata = await admin.metadata({ topics: [name], forceUpdate: true, retries: 0 })
        const topic = metadata.topics.get(name)
        if (topic !== undefined && topic.partitions.every((p) => p !== undefined && p.leader >= 0)) return
      } catch (err) {
        if (performance.now() > deadline) throw unavailable(`topic ${name} has no leader yet`, err)
      }
      if (performance.now() > deadline) {
        throw new TributaryError('BUS_UNAVAILABLE', `topic ${name} has no leader yet`)
      }
      await sleep(50)
    }
  }

  async function listOffsets(
    name: string,
    partitions: number,
    timestamp: bigint,
  ): Promise<Map<number, number>> {
    const [listed] = await admin.listOffsets({
      topics: [
        {
          name,
          partitions: Array.from({ length: partitions }, (_, p) => ({ partitionIndex: p, timestamp })),
        },
      ],
    })
    return new Map((listed?.partitions ?? []).map((p) => [p.partitionIndex, Number(p.offset)]))
  }

  return {
    async createTopics(specs) {
      for (const spec of specs) {
        assertTopicName(spec.name)
        if (!Number.isInteger(spec.partitions) || spec.partitions < 1 || spec.partitions > 10_000) {
          throw new TributaryError(
            'BUS_INVALID_TOPIC',
            `topic ${spec.name}: partitions must be an integer from 1 to 10000`,
          )
        }
      }
      if (specs.length === 0) return
      let factor: number
      try {
        factor = await replicationFactor()
      } catch (err) {
        throw unavailable('cannot read the cluster metadata', err)
      }
      // One request per topic: the client applies one config list to every topic of a request.
      await Promise.all(specs.map((spec) => createTopic(spec, factor)))
      await Promise.all(specs.map((spec) => waitForLeaders(spec.name)))
    },

    async deleteTopics(names) {
      await Promise.all(
        names.map(async (name) => {
          try {
            await admin.deleteTopics({ topics: [name] })
          } catch (err) {
            if (!hasKafkaError(err, 'UNKNOWN_TOPIC_OR_PARTITION'))
              throw unavailable(`cannot delete topic ${name}`, err)
          } finally {
            topics.forget(name)
          }
        }),
      )
    },

    async listTopics() {
      try {
        return (await admin.listTopics()).filter((name) => !name.startsWith('__')).sort()
      } catch (err) {
        throw unavailable('cannot list topics', err)
      }
    },

    async describeTopic(name): Promise<TopicDescription | undefined> {
      let partitions: number
      try {
        partitions = await partitionCount(admin, name)
      } catch (err) {
        if (isTributaryError(err, 'BUS_UNKNOWN_TOPIC')) return undefined
        throw err
      }
      let config: Map<string, string>
      try {
        config = await topicConfig(admin, name, ['retention.ms', 'retention.bytes', 'max.message.bytes'])
      } catch (err) {
        throw unavailable(`cannot read the settings of topic ${name}`, err)
      }
      return {
        name,
        partitions,
        config: {
          retentionMs: Number(config.get('retention.ms') ?? -1),
          retentionBytes: Number(config.get('retention.bytes') ?? -1),
          maxMessageBytes: Number(config.get('max.message.bytes') ?? options.maxMessageBytes),
        },
      }
    },

    async offsets(name) {
      const partitions = await partitionCount(admin, name)
      try {
        const [earliest, next] = await Promise.all([
          listOffsets(name, partitions, ListOffsetTimestamps.EARLIEST),
          listOffsets(name, partitions, ListOffsetTimestamps.LATEST),
        ])
        return Array.from({ length: partitions }, (_, partition) => ({
          partition,
          earliest: earliest.get(partition) ?? 0,
          next: next.get(partition) ?? 0,
        }))
      } catch (err) {
        throw unavailable(`cannot read the offsets of topic ${name}`, err)
      }
    },

    async committed(group, topic) {
      let groups
      try {
        groups = await admin.listConsumerGroupOffsets({ groups: [group] })
      } catch (err) {
        throw unavailable(`cannot read the offsets of group ${group}`, err)
      }
      const committed = new Map<number, number>()
      for (const g of groups) {
        if (g.groupId !== group) continue
        for (const t of g.topics) {
          if (t.name !== topic) continue
          for (const p of t.partitions)
            if (p.committedOffset >= 0n) committed.set(p.partitionIndex, Number(p.committedOffset))
        }
      }
      return committed
    },
  }
}
