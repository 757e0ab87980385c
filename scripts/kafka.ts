// Local Apache Kafka for tests and development, resolved from Maven Central (no Docker):
//   node scripts/kafka.ts resolve|start|stop|status   (KAFKA_PORT: default 19092, 0 = any free)
// Tests use the exports: startLocalKafka() for a private broker, runningLocalKafka() to reuse
// the one `start` left running.
import { KAFKA_VERSION, KafkaSetupError } from './kafka/exec.ts'
import { resolveKafka } from './kafka/resolve.ts'
import { DEFAULT_PORT, STATE_FILE, daemonStatus, startDaemon, stopDaemon } from './kafka/daemon.ts'

export { startLocalKafka, SINGLE_NODE_SETTINGS, type LocalKafka, type StartOptions } from './kafka/broker.ts'
export { runningLocalKafka } from './kafka/daemon.ts'
export { probeKafka, waitForKafka } from './kafka/probe.ts'
export { resolveKafka } from './kafka/resolve.ts'
export { KafkaSetupError } from './kafka/exec.ts'

const seconds = (since: number): string => `${((performance.now() - since) / 1000).toFixed(1)} s`

function portFromEnv(): number {
  const raw = process.env.KAFKA_PORT
  if (raw === undefined || raw === '') return DEFAULT_PORT
  const port = Number(raw)
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new KafkaSetupError(`KAFKA_PORT=${raw} is not a port number (0-65535; 0 picks a free port)`)
  }
  return port
}

/** Runs one CLI command; progress goes to stderr, the answer (bootstrap address) to stdout. */
async function main(command: string): Promise<number> {
  const started = performance.now()
  switch (command) {
    case 'resolve': {
      const { libDir, resolved } = await resolveKafka()
      console.error(
        `kafka ${KAFKA_VERSION}: jars ${resolved ? 'resolved into' : 'cached in'} ${libDir} (${seconds(started)})`,
      )
      return 0
    }
    case 'start': {
      const { state, reused } = await startDaemon(portFromEnv())
      console.error(
        reused
          ? `kafka: reusing the broker already running (pid ${state.pid})`
          : `kafka ${KAFKA_VERSION}: started pid ${state.pid} in ${seconds(started)}; log ${state.logFile}`,
      )
      console.log(state.brokers)
      return 0
    }
    case 'stop': {
      const stopped = await stopDaemon()
      console.error(stopped ? `kafka: stopped (${seconds(started)})` : 'kafka: no broker was running')
      return 0
    }
    case 'status': {
      const { state, running, problem } = await daemonStatus(portFromEnv())
      if (state !== undefined && problem === undefined) {
        console.error(`kafka: running, pid ${state.pid}, data ${state.dataDir}, state ${STATE_FILE}`)
        console.log(state.brokers)
        return 0
      }
      console.error(`kafka: ${running ? 'running but not answering' : 'not running'}: ${problem}`)
      return 1
    }
    default:
      console.error('usage: node scripts/kafka.ts resolve|start|stop|status  (KAFKA_PORT=19092 by default)')
      return 2
  }
}

if (import.meta.main) {
  main(process.argv[2] ?? '').then(
    (code) => {
      process.exitCode = code
    },
    (err: unknown) => {
      console.error(err instanceof KafkaSetupError ? `kafka: ${err.message}` : err)
      process.exitCode = 1
    },
  )
}
