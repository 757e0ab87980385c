// Chooses and builds the event bus from configuration, and makes sure the pipeline topics exist.
import type { GuardedBus } from '../core/bus/availability.ts'
import { guardBus } from '../core/bus/availability.ts'
import { createEmbeddedBus } from '../core/bus/embedded/index.ts'
import { instrumentBus } from '../core/bus/instrumented.ts'
import type { Config } from '../core/config/index.ts'
import { topicNames } from '../core/events/topics.ts'
import type { Logger } from '../core/log.ts'
import type { Registry } from '../core/metrics.ts'

/**
 * The bus with its metrics, and refusing publishes at once while it is known to be away
 * (core/bus/availability.ts) so that every adapter answers "come back later" without waiting.
 */
export async function createBus(config: Config, log: Logger, registry: Registry): Promise<GuardedBus> {
  const topicDefaults = { retentionMs: config.busRetentionMs, retentionBytes: config.busRetentionBytes }
  const bus =
    config.kafkaBrokers === undefined
      ? await createEmbeddedBus({
          dataDir: config.dataDir,
          segmentBytes: config.busSegmentBytes,
          maxMessageBytes: config.busMaxMessageBytes,
          drainTimeoutMs: config.shutdownTimeoutMs,
          ...topicDefaults,
          log: log.child({ component: 'bus' }),
        })
      : // Loaded only when configured: a laptop on the embedded log never loads the Kafka client.
        await (
          await import('../core/bus/kafka.ts')
        ).createKafkaBus({
          brokers: config.kafkaBrokers,
          clientId: config.kafkaClientId,
          compression: config.kafkaCompression,
          lingerMs: config.kafkaLingerMs,
          batchMaxBytes: config.kafkaBatchMaxBytes,
          sessionTimeoutMs: config.kafkaSessionTimeoutMs,
          heartbeatIntervalMs: Math.min(3_000, Math.floor(config.kafkaSessionTimeoutMs / 10)),
          maxMessageBytes: config.busMaxMessageBytes,
          drainTimeoutMs: config.shutdownTimeoutMs,
          defaultTopicConfig: topicDefaults,
          log: log.child({ component: 'bus' }),
        })
  const topics = topicNames(config.topicPrefix)
  await bus.admin.createTopics(
    [topics.ingress, topics.commands, topics.registry, topics.deadletter].map((name) => ({
      name,
      partitions: config.topicPartitions,
    })),
  )
  return guardBus(instrumentBus(bus, registry), { log: log.child({ component: 'bus' }), registry })
}
