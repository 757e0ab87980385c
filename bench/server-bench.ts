// What a server scenario (a tributary process against a reference server) holds while it runs, and
// cleans up after: Kafka, a temporary directory, topic prefixes of its own, its server processes.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createKafkaBus } from '../core/bus/kafka.ts'
import { topicNames } from '../core/events/topics.ts'
import type { ScenarioContext } from './harness.ts'
import { requireKafka } from './harness.ts'
import type { ServerProcess } from './server-process.ts'

export interface BenchKafka {
  /** Records on the ingress topic of `prefix`, all partitions. */
  ingressRecords(prefix: string): Promise<number>
  /** Deletes the topics a bench server created (`<prefix>.ingress`, `.registry`, ...). */
  deleteTopics(prefix: string): Promise<void>
  close(): Promise<void>
}

/** A Kafka client of the bench's own, to check what reached the broker and to clean up after. */
async function openBenchKafka(brokers: readonly string[]): Promise<BenchKafka> {
  const bus = await createKafkaBus({ brokers: [...brokers], clientId: 'tributary-bench-servers' })
  return {
    async ingressRecords(prefix) {
      const offsets = await bus.admin.offsets(topicNames(prefix).ingress)
      return offsets.reduce((sum, p) => sum + p.next - p.earliest, 0)
    },
    async deleteTopics(prefix) {
      const names = (await bus.admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`))
      if (names.length > 0) await bus.admin.deleteTopics(names)
    },
    close: () => bus.close(),
  }
}

export interface ServerBench {
  readonly brokers: string[]
  readonly kafka: BenchKafka
  /** A temporary directory of this run, deleted afterwards. */
  readonly dir: string
  /** The tributary side's topic prefix, of this run alone (`bench-<scenario>-…`). */
  readonly topicPrefix: string
  /** The prefix of a baseline that writes to Kafka too. */
  readonly baselinePrefix: string
  /** Where a tributary process of this run goes: its brokers, a data dir in `dir`, `topicPrefix`. */
  readonly tributaryOptions: {
    readonly brokers: string[]
    readonly dataDir: string
    readonly topicPrefix: string
  }
  /** Stops `server` when the scenario ends, before the topics are deleted. */
  own<T extends ServerProcess>(server: T): T
}

/**
 * Runs `body` with Kafka (failing when there is none), a temporary directory and topic prefixes
 * for scenario `name`; afterwards stops the servers it owns, deletes the topics of both prefixes
 * and the directory.
 */
export async function withServerBench<T>(
  context: ScenarioContext,
  name: string,
  body: (bench: ServerBench) => Promise<T>,
): Promise<T> {
  const brokers = requireKafka(context)
  // So that the runs' ingress records never mix.
  const topicPrefix = `bench-${name}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
  const baselinePrefix = `${topicPrefix}-base`
  const dir = await mkdtemp(join(tmpdir(), `tributary-bench-${name}-`))
  const servers: ServerProcess[] = []
  let kafka: BenchKafka | undefined
  try {
    kafka = await openBenchKafka(brokers)
    const dataDir = join(dir, 'data')
    return await body({
      brokers,
      kafka,
      dir,
      topicPrefix,
      baselinePrefix,
      tributaryOptions: { brokers, dataDir, topicPrefix },
      own(server) {
        servers.push(server)
        return server
      },
    })
  } finally {
    await Promise.allSettled(servers.map((s) => s.stop()))
    for (const prefix of [topicPrefix, baselinePrefix]) {
      await kafka
        ?.deleteTopics(prefix)
        .catch((err: unknown) => context.progress(`topic cleanup failed: ${String(err)}`))
    }
    await kafka?.close()
    await rm(dir, { recursive: true, force: true })
  }
}
