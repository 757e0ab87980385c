// The developer's long-lived local broker (npm run kafka:start): started detached, recorded in
// .cache/kafka/state.json so that later commands and test runs find and reuse it.
import { readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CACHE_DIR } from './exec.ts'
import { startLocalKafka, type BrokerRecord } from './broker.ts'
import { isBrokerProcess, isPortTaken, stopBrokerProcess, takenPortMessage } from './system.ts'
import { probeKafka } from './probe.ts'

/** Where `kafka:start` records its broker; KAFKA_STATE_FILE moves it (tests that must not see it). */
export const STATE_FILE = process.env.KAFKA_STATE_FILE || join(CACHE_DIR, 'state.json')
export const DEFAULT_PORT = 19092

export type KafkaState = BrokerRecord

async function readState(): Promise<KafkaState | undefined> {
  try {
    return JSON.parse(await readFile(STATE_FILE, 'utf8')) as KafkaState
  } catch {
    return undefined
  }
}

export interface Status {
  state: KafkaState | undefined
  /** the recorded JVM is alive */
  running: boolean
  /** undefined when it answers metadata, else why not */
  problem: string | undefined
}

/** `port`: also say what holds that port when no broker of this checkout runs (the CLI's status). */
export async function daemonStatus(port?: number): Promise<Status> {
  const state = await readState()
  if (state === undefined) {
    const foreign =
      port !== undefined && port !== 0 && (await isPortTaken(port)) ? `; ${await takenPortMessage(port)}` : ''
    return { state, running: false, problem: `no broker started from this checkout${foreign}` }
  }
  if (!(await isBrokerProcess(state.pid, state.dataDir))) {
    return { state, running: false, problem: `pid ${state.pid} is not running any more` }
  }
  return { state, running: true, problem: await probeKafka(state.brokers, 3_000) }
}

/** The bootstrap address of the healthy broker from `npm run kafka:start`, if there is one. */
export async function runningLocalKafka(): Promise<string | undefined> {
  const { state, problem } = await daemonStatus()
  return problem === undefined ? state?.brokers : undefined
}

/** Stops the recorded broker and removes its folder and the state file; false if none ran. */
export async function stopDaemon(): Promise<boolean> {
  const { state, running } = await daemonStatus()
  if (state === undefined) return false
  if (running) await stopBrokerProcess(state.pid)
  await rm(state.dataDir, { recursive: true, force: true })
  await rm(STATE_FILE, { force: true })
  return running
}

/** Starts the detached broker, or returns the one already running and healthy. */
export async function startDaemon(port: number): Promise<{ state: KafkaState; reused: boolean }> {
  const status = await daemonStatus()
  if (status.state !== undefined && status.problem === undefined) return { state: status.state, reused: true }
  // A recorded broker that is gone or does not answer is replaced, not kept.
  await stopDaemon()
  const kafka = await startLocalKafka({ port, detached: true })
  const state: KafkaState = JSON.parse(
    await readFile(join(kafka.dataDir, 'broker.json'), 'utf8'),
  ) as KafkaState
  await writeFile(STATE_FILE, JSON.stringify(state, null, 2))
  return { state, reused: false }
}
