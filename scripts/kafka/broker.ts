// One single-node KRaft Kafka broker (broker and controller in one JVM) on loopback, run from
// the Maven-resolved jars: format a log dir, start kafka.Kafka, wait for metadata, stop.
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, openSync } from 'node:fs'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { opaqueId } from '../../core/events/ids.ts'
import { CACHE_DIR, KafkaSetupError, fileTail, indent, run, tail } from './exec.ts'
import { waitForKafka } from './probe.ts'
import { resolveKafka } from './resolve.ts'
import { HOST, ensurePortFree, freePort, isBrokerProcess, stopBrokerProcess } from './system.ts'

export const BROKERS_DIR = join(CACHE_DIR, 'brokers')
const LOG4J2 = fileURLToPath(new URL('log4j2.properties', import.meta.url))
const SETPRIV = '/usr/bin/setpriv'

/**
 * Settings every single-node test cluster needs, whatever runs it (this script or a container):
 * one replica for every internal topic, no rebalance delay, short sessions allowed, and no
 * topic auto-creation (the pipeline creates its topics through the admin API).
 */
export const SINGLE_NODE_SETTINGS: Readonly<Record<string, string>> = {
  'num.partitions': '1',
  'default.replication.factor': '1',
  'min.insync.replicas': '1',
  'offsets.topic.replication.factor': '1',
  'offsets.topic.num.partitions': '1',
  'transaction.state.log.replication.factor': '1',
  'transaction.state.log.min.isr': '1',
  'transaction.state.log.num.partitions': '1',
  'share.coordinator.state.topic.replication.factor': '1',
  'share.coordinator.state.topic.min.isr': '1',
  'share.coordinator.state.topic.num.partitions': '1',
  'group.initial.rebalance.delay.ms': '0',
  'group.min.session.timeout.ms': '1000',
  'group.consumer.min.session.timeout.ms': '1000',
  'auto.create.topics.enable': 'false',
}

export interface StartOptions {
  /** PLAINTEXT port on 127.0.0.1; 0 (the default) picks a free one */
  port?: number
  /**
   * The port clients are told to connect to (advertised.listeners), when it is not `port`: a proxy
   * in front of the broker that a test can cut. The returned bootstrap address uses it too.
   */
  advertisedPort?: number
  /** folder for config, log dir and logs; default: a new folder under .cache/kafka/brokers */
  dataDir?: string
  /** run in its own session so it outlives this process (the CLI); default false */
  detached?: boolean
  /** bound on waiting for metadata after launch; default 60 s */
  startTimeoutMs?: number
}

export interface LocalKafka {
  brokers: string
  pid: number
  dataDir: string
  /** log4j2 output of the broker */
  logFile: string
  /** SIGTERM, SIGKILL after a bound, then removes the data dir */
  stop: () => Promise<void>
  /** SIGKILL, keeping the data dir: startLocalKafka({ dataDir }) runs the same broker again */
  kill: () => Promise<void>
}

/** What a broker folder records about the JVM running in it (broker.json). */
export interface BrokerRecord {
  pid: number
  brokers: string
  dataDir: string
  logFile: string
  startedAt: string
}

function serverProperties(
  port: number,
  controllerPort: number,
  logDir: string,
  advertisedPort: number,
): string {
  const settings: Record<string, string> = {
    'process.roles': 'broker,controller',
    'node.id': '1',
    // Static voters (not controller.quorum.bootstrap.servers): the log dir is then formatted
    // with a cluster id alone, no --standalone / --initial-controllers.
    'controller.quorum.voters': `1@${HOST}:${controllerPort}`,
    listeners: `PLAINTEXT://${HOST}:${port},CONTROLLER://${HOST}:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://${HOST}:${advertisedPort}`,
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'log.dirs': logDir,
    'num.network.threads': '2',
    'num.io.threads': '4',
    ...SINGLE_NODE_SETTINGS,
  }
  return Object.entries(settings)
    .map(([key, value]) => `${key}=${value}\n`)
    .join('')
}

/** Removes broker folders left by processes that died without stopping their broker. */
async function sweepStale(keep: string | undefined): Promise<void> {
  for (const name of await readdir(BROKERS_DIR).catch(() => [])) {
    const dir = join(BROKERS_DIR, name)
    if (keep !== undefined && resolve(dir) === resolve(keep)) continue
    try {
      const record = JSON.parse(await readFile(join(dir, 'broker.json'), 'utf8')) as BrokerRecord
      if (!(await isBrokerProcess(record.pid, dir))) await rm(dir, { recursive: true, force: true })
    } catch {
      // no broker.json: still starting elsewhere, unless it is old
      const age = Date.now() - (await stat(dir).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs
      if (age > 3_600_000) await rm(dir, { recursive: true, force: true })
    }
  }
}

/**
 * A KRaft cluster id: 16 random bytes in URL-safe base64 without padding (Kafka's Uuid). One in 64
 * of those starts with '-', which the storage tool's argument parser reads as an option ("argument
 * --cluster-id: expected one argument"); like Kafka's own Uuid.randomUuid(), opaqueId draws again.
 */
export const kraftClusterId = (random?: (size: number) => Buffer): string => opaqueId(16, random)

async function format(java: string, classpath: string, dir: string): Promise<void> {
  const clusterId = kraftClusterId()
  const args = [
    '-Xmx256m',
    '-XX:TieredStopAtLevel=1',
    `-Dkafka.logs.dir=${join(dir, 'logs')}`,
    `-Dlog4j2.configurationFile=${LOG4J2}`,
    '-cp',
    classpath,
    'kafka.tools.StorageTool',
    'format',
    '--cluster-id',
    clusterId,
    '--config',
    join(dir, 'server.properties'),
  ]
  const { code, output } = await run(java, args, `java vanished while formatting ${dir}`)
  if (code !== 0) {
    throw new KafkaSetupError(
      `kafka.tools.StorageTool format failed (exit ${code}):\n${indent(tail(output))}`,
    )
  }
}

async function startupFailure(dir: string, headline: string): Promise<string> {
  const consoleLog = join(dir, 'console.log')
  const serverLog = join(dir, 'logs', 'server.log')
  const consoleTail = await fileTail(consoleLog, 20)
  const logTail = await fileTail(serverLog, 25)
  // The first ERROR line names the cause; the stack trace under it can push it out of the tail.
  const lines = (await fileTail(serverLog, 5_000)).split('\n')
  const firstError = lines.find((line) => / (ERROR|FATAL) /.test(line))
  const rootCause = lines.findLast((line) => line.startsWith('Caused by: '))
  return [
    headline,
    firstError && `  first error: ${firstError}`,
    rootCause && `  root cause: ${rootCause.slice('Caused by: '.length)}`,
    consoleTail && `  stdout/stderr (${consoleLog}):\n${indent(consoleTail)}`,
    logTail && `  end of ${serverLog}:\n${indent(logTail)}`,
  ]
    .filter(Boolean)
    .join('\n')
}

/** Resolves the jars if needed, formats a fresh KRaft log dir and runs the broker until ready. */
export async function startLocalKafka(options: StartOptions = {}): Promise<LocalKafka> {
  // The port first: a taken one fails in a second, not after the jars are resolved.
  if (options.port) await ensurePortFree(options.port)
  const { java, libDir } = await resolveKafka()
  await mkdir(BROKERS_DIR, { recursive: true })
  await sweepStale(options.dataDir)
  const ownDir = options.dataDir === undefined
  // A broker folder that was formatted before (a killed broker) starts again as it was: the same
  // ports, cluster id and log, so its clients reconnect and find their records.
  const restart =
    options.dataDir !== undefined && existsSync(join(options.dataDir, 'data', 'meta.properties'))
  const saved = restart ? await readPorts(join(options.dataDir!, 'server.properties')) : undefined
  const port = saved?.port ?? (options.port || (await freePort()))
  if (options.port || saved !== undefined) await ensurePortFree(port)
  const controllerPort = saved?.controllerPort ?? (await freePort())

  const dir = options.dataDir ?? (await mkdtemp(join(BROKERS_DIR, `${port}-`)))
  await mkdir(join(dir, 'logs'), { recursive: true })
  const classpath = `${libDir}/*`
  const advertisedPort = saved?.advertisedPort ?? options.advertisedPort ?? port
  if (!restart) {
    await writeFile(
      join(dir, 'server.properties'),
      serverProperties(port, controllerPort, join(dir, 'data'), advertisedPort),
    )
    try {
      await format(java, classpath, dir)
    } catch (err) {
      if (ownDir) await rm(dir, { recursive: true, force: true })
      throw err
    }
  }

  const jvm = [
    '-Xms256m',
    '-Xmx512m',
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    `-Dkafka.logs.dir=${join(dir, 'logs')}`,
    `-Dlog4j2.configurationFile=${LOG4J2}`,
    '-cp',
    classpath,
    'kafka.Kafka',
    join(dir, 'server.properties'),
  ]
  const detached = options.detached ?? false
  // A broker owned by this process must not outlive it, even when it is killed by a signal
  // (no 'exit' event then): setpriv makes the kernel send the JVM SIGTERM when we die.
  const [command, args] =
    !detached && existsSync(SETPRIV) ? [SETPRIV, ['--pdeathsig', 'TERM', java, ...jvm]] : [java, jvm]
  const out = openSync(join(dir, 'console.log'), 'a')
  const child: ChildProcess = spawn(command, args, { cwd: dir, detached, stdio: ['ignore', out, out] })
  closeSync(out)
  let exited: string | undefined
  child.once('error', (err) => {
    exited = `Kafka could not be launched (${command}): ${err.message}`
  })
  const pid = child.pid
  if (pid === undefined) throw new KafkaSetupError(`Kafka could not be launched (${command} ${java})`)
  child.once('exit', (code, signal) => {
    exited = `Kafka (pid ${pid}) died during startup (exit code ${code}, signal ${signal}).`
  })
  if (detached) child.unref()
  // A broker we own dies with us, even when nobody called stop().
  const killOnExit = (): void => void child.kill('SIGKILL')
  if (!detached) process.once('exit', killOnExit)

  const brokers = `${HOST}:${advertisedPort}`
  const logFile = join(dir, 'logs', 'server.log')
  const record: BrokerRecord = { pid, brokers, dataDir: dir, logFile, startedAt: new Date().toISOString() }
  await writeFile(join(dir, 'broker.json'), JSON.stringify(record, null, 2))

  const terminate = async (): Promise<void> => {
    process.off('exit', killOnExit)
    if (child.exitCode === null && child.signalCode === null) await stopBrokerProcess(pid)
  }
  const stop = async (): Promise<void> => {
    await terminate()
    if (ownDir) await rm(dir, { recursive: true, force: true })
  }
  const kill = async (): Promise<void> => {
    process.off('exit', killOnExit)
    if (child.exitCode !== null || child.signalCode !== null) return
    const gone = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await gone
  }
  try {
    await waitForKafka(brokers, {
      timeoutMs: options.startTimeoutMs ?? 60_000,
      abort: async () => (exited === undefined ? undefined : await startupFailure(dir, exited)),
    })
  } catch (err) {
    // The folder stays for a look at the full logs; the next start sweeps it.
    await terminate().catch(() => undefined)
    if (exited !== undefined && err instanceof KafkaSetupError) throw err
    const headline = err instanceof Error ? err.message : String(err)
    throw new KafkaSetupError(await startupFailure(dir, headline), { cause: err })
  }
  return { brokers, pid, dataDir: dir, logFile, stop, kill }
}

/** The ports a formatted broker folder was set up with, from its server.properties. */
async function readPorts(
  path: string,
): Promise<{ port: number; controllerPort: number; advertisedPort: number } | undefined> {
  const text = await readFile(path, 'utf8').catch(() => '')
  const ports = /^listeners=PLAINTEXT:\/\/[^:]+:(\d+),CONTROLLER:\/\/[^:]+:(\d+)$/m.exec(text)
  const advertised = /^advertised\.listeners=PLAINTEXT:\/\/[^:]+:(\d+)$/m.exec(text)
  if (ports === null || advertised === null) return undefined
  return { port: Number(ports[1]), controllerPort: Number(ports[2]), advertisedPort: Number(advertised[1]) }
}
