// Single-node KRaft Kafka in a container (apache/kafka image) for machines with a Docker engine,
// with the same settings as the local broker. @testcontainers/kafka is not needed: it targets
// Confluent images; GenericContainer plus a start script does the job.
import { GenericContainer, Wait, getContainerRuntimeClient } from 'testcontainers'
import { SINGLE_NODE_SETTINGS } from './broker.ts'
import { waitForKafka } from './probe.ts'

export const KAFKA_IMAGE = 'apache/kafka:4.2.0'
const CLIENT_PORT = 9092
const START_SCRIPT = '/tmp/tributary-kafka-start.sh'
const START_READY = `${START_SCRIPT}.ready`
const WAITING = 'tributary: waiting for start script'

/** Undefined when a container engine answers within `timeoutMs`, else why not. */
export async function containerEngineProblem(timeoutMs = 10_000): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs)
  })
  const probe = getContainerRuntimeClient().then(
    () => undefined,
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  )
  try {
    return await Promise.race([probe, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Property name → the apache/kafka image's environment variable (dots become underscores). */
const envName = (property: string): string => `KAFKA_${property.toUpperCase().replaceAll('.', '_')}`

export async function startKafkaContainer(): Promise<{ brokers: string; stop: () => Promise<void> }> {
  const environment: Record<string, string> = {
    KAFKA_NODE_ID: '1',
    KAFKA_PROCESS_ROLES: 'broker,controller',
    KAFKA_LISTENERS: `PLAINTEXT://0.0.0.0:${CLIENT_PORT},BROKER://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094`,
    KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT',
    KAFKA_INTER_BROKER_LISTENER_NAME: 'BROKER',
    KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
    KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9094',
  }
  for (const [key, value] of Object.entries(SINGLE_NODE_SETTINGS)) environment[envName(key)] = value
  // The advertised address needs the mapped host port, known only once the container runs:
  // the container waits for a script that exports it, then execs the image's own launcher.
  const container = await new GenericContainer(KAFKA_IMAGE)
    .withEnvironment(environment)
    .withExposedPorts(CLIENT_PORT)
    .withCommand([
      'sh',
      '-c',
      `echo '${WAITING}'; while [ ! -f ${START_READY} ]; do sleep 0.1; done; . ${START_SCRIPT}`,
    ])
    .withWaitStrategy(Wait.forLogMessage(WAITING))
    .withStartupTimeout(120_000)
    .start()
  const brokers = `${container.getHost()}:${container.getMappedPort(CLIENT_PORT)}`
  const script = `export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://${brokers},BROKER://localhost:9093\nexec /etc/kafka/docker/run\n`
  // One archive, extracted in order: once the marker exists the script is complete.
  await container.copyContentToContainer([
    { content: script, target: START_SCRIPT, mode: 0o755 },
    { content: '', target: START_READY },
  ])
  try {
    await waitForKafka(brokers, { timeoutMs: 120_000 })
  } catch (err) {
    await container.stop()
    throw err
  }
  return {
    brokers,
    stop: async () => {
      await container.stop()
    },
  }
}
