// One measured run of an ingest scenario: the load against a server process, with the CPU time of
// the server (and of the Kafka broker) and of the machine read around it, and every acknowledged
// message checked to be on the broker afterwards.
import { BenchError } from './harness.ts'
import type { ServerProcess } from './server-process.ts'
import { startCpuMeter } from './server-process.ts'

export interface IngestRunOptions<L> {
  /** Messages (requests) the load sends; every one must be acknowledged. */
  readonly ops: number
  /** Sends them and resolves once all are acknowledged; rejects (without the label) on failure. */
  readonly load: () => Promise<L>
  /** Records on the topic the server writes to; each run must add at least `ops`. */
  readonly records?: (() => Promise<number>) | undefined
  /** The Kafka broker's pid, when known, to count its CPU time too. */
  readonly kafkaPid?: number | undefined
}

export interface IngestRun<L> {
  readonly load: L
  /** CPU time of the server process per message, µs. */
  readonly serverCpuUsPerOp: number
  /** CPU time of the Kafka broker per message, µs (NaN when its pid is not known). */
  readonly kafkaCpuUsPerOp: number
  /** Busy share of every CPU of the machine during the run (Kafka included), %. */
  readonly machineBusyPercent: number
  /** Records the topic gained (undefined without `records`). */
  readonly recordsGained: number | undefined
}

export async function measureIngestRun<L>(
  server: ServerProcess,
  options: IngestRunOptions<L>,
): Promise<IngestRun<L>> {
  const recordsBefore = await options.records?.()
  const cpu = await startCpuMeter({ server: server.pid, kafka: options.kafkaPid })
  const load = await options.load().catch((err: unknown) => {
    throw new BenchError(`${server.label}: ${(err as Error).message}\n${server.tail()}`)
  })
  const used = await cpu.stop()
  const recordsAfter = await options.records?.()
  const gained =
    recordsBefore === undefined || recordsAfter === undefined ? undefined : recordsAfter - recordsBefore
  // Every acknowledgement promised a durable record: count them on the broker.
  if (gained !== undefined && gained < options.ops) {
    throw new BenchError(
      `${server.label}: ${options.ops} messages acknowledged but the topic gained ${gained} records`,
    )
  }
  return {
    load,
    serverCpuUsPerOp: (used.ms.server * 1000) / options.ops,
    kafkaCpuUsPerOp: (used.ms.kafka * 1000) / options.ops,
    machineBusyPercent: used.machineBusyPercent,
    recordsGained: gained,
  }
}
