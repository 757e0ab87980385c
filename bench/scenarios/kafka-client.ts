// The two Kafka clients, raw: @platformatic/kafka (what core/bus/kafka*.ts uses) against kafkajs,
// producing the same records (key, 256-byte value, CloudEvent headers, partition) to the same
// broker with acks=all and idempotence. Every run is a fresh Node process, so one client's heap,
// JIT state and sockets never weigh on the other's, and RSS is the client's own.
import { fileURLToPath } from 'node:url'
import type { EventBus } from '../../core/bus/bus.ts'
import type { Scenario, ScenarioContext, ScenarioResult } from '../harness.ts'
import {
  BenchError,
  MiB,
  collectGarbage,
  compareMetrics,
  formatNumber,
  isWorker,
  memory,
  opsPerSecond,
  reportRuns,
  requireKafka,
  runConcurrently,
  runInWorker,
  sampleMemory,
  scenarioParams,
  serveWorker,
  sideBySide,
  timed,
} from '../harness.ts'
import type { BenchRecord } from '../records.ts'
import { PARTITIONS, POOL_SIZE, VALUE_BYTES, buildRecords, headerBytes, uniqueName } from '../records.ts'

type ClientName = 'platformatic' | 'kafkajs'

interface Params {
  readonly records: number
  /** Untimed records sent first in every run (connections, producer id, JIT). */
  readonly warmupRecords: number
  readonly recordsPerSend: number
  /** send() calls in flight at once. */
  readonly concurrency: number
  readonly rounds: number
}

const FULL: Params = {
  records: 100_000,
  warmupRecords: 5_000,
  recordsPerSend: 100,
  concurrency: 4,
  rounds: 5,
}
const QUICK: Params = { ...FULL, records: 20_000, warmupRecords: 2_000, rounds: 3 }

const WORKER_TIMEOUT_MS = 180_000

interface WorkerInput {
  readonly client: ClientName
  readonly brokers: string[]
  readonly topic: string
  readonly params: Params
}

export interface ClientSample {
  readonly client: ClientName
  readonly topic: string
  readonly records: number
  readonly ms: number
  readonly recordsPerSec: number
  /** Peak RSS of the worker (load, connect, warmup and timed sends) minus RSS before the client was loaded. */
  readonly rssDeltaBytes: number
  readonly heapDeltaBytes: number
  readonly rssPeakBytes: number
  /** Heap in use after the run and a full GC, client still open, minus before loading the client. */
  readonly heapRetainedBytes: number
}

interface Sender {
  send(start: number, count: number): Promise<unknown>
  close(): Promise<void>
}

// ---------------------------------------------------------------------------------------------
// Worker side: one client, one topic, one run

async function openPlatformatic(input: WorkerInput, pool: readonly BenchRecord[]): Promise<Sender> {
  const { Producer } = await import('@platformatic/kafka')
  const producer = new Producer<Buffer, Buffer, Buffer, Buffer>({
    clientId: 'bench-platformatic',
    bootstrapBrokers: input.brokers,
    idempotent: true,
    acks: -1,
    autocreateTopics: false,
  })
  // Header names as bytes, as core/bus/kafka-producer.ts sends them.
  const headers = pool.map((r) => new Map([...r.headers].map(([name, value]) => [Buffer.from(name), value])))
  return {
    send: (start, count) =>
      producer.send({
        messages: Array.from({ length: count }, (_, j) => {
          const i = (start + j) % pool.length
          const r = pool[i]!
          return {
            topic: input.topic,
            partition: r.partition,
            key: r.keyBytes,
            value: r.value,
            headers: headers[i]!,
          }
        }),
      }),
    close: () => producer.close(),
  }
}

async function openKafkajs(input: WorkerInput, pool: readonly BenchRecord[]): Promise<Sender> {
  const { Kafka, Partitioners, logLevel } = await import('kafkajs')
  const kafka = new Kafka({ clientId: 'bench-kafkajs', brokers: input.brokers, logLevel: logLevel.ERROR })
  const producer = kafka.producer({
    idempotent: true,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  })
  await producer.connect()
  const headers = pool.map((r) => Object.fromEntries(r.headers))
  return {
    send: (start, count) =>
      producer.send({
        topic: input.topic,
        acks: -1,
        messages: Array.from({ length: count }, (_, j) => {
          const i = (start + j) % pool.length
          const r = pool[i]!
          return { partition: r.partition, key: r.keyBytes, value: r.value, headers: headers[i]! }
        }),
      }),
    close: () => producer.disconnect(),
  }
}

async function produce(sender: Sender, records: number, params: Params): Promise<void> {
  const sends = Math.ceil(records / params.recordsPerSend)
  await runConcurrently(sends, params.concurrency, (i) =>
    sender.send(
      i * params.recordsPerSend,
      Math.min(params.recordsPerSend, records - i * params.recordsPerSend),
    ),
  )
}

async function workerRun(input: WorkerInput): Promise<ClientSample> {
  const pool = buildRecords(POOL_SIZE)
  collectGarbage()
  const memoryUse = sampleMemory(memory())
  const sender =
    input.client === 'platformatic' ? await openPlatformatic(input, pool) : await openKafkajs(input, pool)
  try {
    await produce(sender, input.params.warmupRecords, input.params)
    const { ms } = await timed(() => produce(sender, input.params.records, input.params))
    const use = memoryUse.stop()
    // What stays reachable once garbage is collected, client still open: a leak shows here.
    collectGarbage()
    const retained = memory().heapUsed - use.before.heapUsed
    return {
      client: input.client,
      topic: input.topic,
      records: input.params.records,
      ms,
      recordsPerSec: opsPerSecond(input.params.records, ms),
      rssDeltaBytes: use.rssDelta,
      heapDeltaBytes: use.heapDelta,
      rssPeakBytes: use.peak.rss,
      heapRetainedBytes: retained,
    }
  } finally {
    await sender.close()
  }
}

if (isWorker()) serveWorker(workerRun)

// ---------------------------------------------------------------------------------------------
// Parent side: topics, interleaved worker runs, the check that every record landed

const WORKER_FILE = fileURLToPath(import.meta.url)

async function runClient(
  admin: EventBus['admin'],
  client: ClientName,
  brokers: string[],
  params: Params,
): Promise<ClientSample> {
  const topic = uniqueName(`client-${client}`)
  await admin.createTopics([{ name: topic, partitions: PARTITIONS }])
  try {
    const sample = await runInWorker<ClientSample>(
      WORKER_FILE,
      { client, brokers, topic, params } satisfies WorkerInput,
      WORKER_TIMEOUT_MS,
    )
    const stored = (await admin.offsets(topic)).reduce((sum, p) => sum + p.next - p.earliest, 0)
    const expected = params.records + params.warmupRecords
    if (stored !== expected) {
      throw new BenchError(`${client}: sent ${expected} records but topic ${topic} holds ${stored}`)
    }
    return sample
  } finally {
    await admin.deleteTopics([topic])
  }
}

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const brokers = requireKafka(context)
  const sized = scenarioParams(context, { full: FULL, quick: QUICK }, 'records')
  const params: Params = { ...sized, rounds: Math.max(3, sized.rounds) }
  // The bus's admin creates topics (waiting for their leaders), counts what landed and cleans up.
  // Imported here, not at the top: workers load this file too and must load no client before
  // their memory baseline.
  const { createKafkaBus } = await import('../../core/bus/kafka.ts')
  const bus = await createKafkaBus({ brokers, clientId: 'tributary-bench-admin' })
  try {
    const contender = (client: ClientName) => ({
      label: client,
      run: (round: number) =>
        runClient(
          bus.admin,
          client,
          brokers,
          round < 0 ? { ...params, records: Math.min(params.records, 10_000) } : params,
        ),
    })
    const result = await sideBySide({
      candidate: contender('platformatic'),
      baseline: contender('kafkajs'),
      rounds: params.rounds,
      warmupRounds: 1,
      onRun: reportRuns(
        context,
        params.rounds,
        (s) => `${formatNumber(s.recordsPerSec)} rec/s, RSS +${formatNumber(s.rssDeltaBytes / MiB)} MiB`,
      ),
    })
    const { ratios, rows } = compareMetrics(result, {
      recordsPerSec: {
        label: `records/s (${params.recordsPerSend}/send, ${params.concurrency} in flight, acks=all, idempotent)`,
        of: (s) => s.recordsPerSec,
      },
      rssDeltaMiB: {
        label: 'RSS delta MiB (peak − before loading the client)',
        of: (s) => s.rssDeltaBytes / MiB,
      },
      heapDeltaMiB: {
        label: 'heap delta MiB (peak − before loading the client)',
        of: (s) => s.heapDeltaBytes / MiB,
      },
      heapRetainedMiB: {
        label: 'heap retained MiB (after the run and a full GC)',
        of: (s) => s.heapRetainedBytes / MiB,
      },
    })
    const sample = buildRecords(1)[0]!
    return {
      table: {
        title:
          `kafka-client: ${formatNumber(params.records)} records of ${VALUE_BYTES} B ` +
          `(+${headerBytes(sample)} B of CloudEvent headers), ${PARTITIONS} partitions, ` +
          `median of ${params.rounds} interleaved rounds`,
        columns: ['metric', 'platformatic', 'kafkajs', 'ratio p/k', 'per-round ratios'],
        rows,
        notes: [
          'ratio = median(platformatic) / median(kafkajs); each run is a fresh Node process.',
          `every run first sends ${formatNumber(params.warmupRecords)} untimed records; memory covers them too.`,
        ],
      },
      data: { params, order: result.order, ratios, samples: result },
    }
  } finally {
    await bus.close()
  }
}

export const kafkaClient: Scenario = {
  name: 'kafka-client',
  description: '@platformatic/kafka vs kafkajs producing identical records (acks=all, idempotent)',
  needsKafka: true,
  run,
}
