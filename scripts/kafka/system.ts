// Ports and processes on this machine: free and taken loopback ports, whether a pid is still
// our broker, and stopping one gracefully with a bound.
import { readFile, readdir, readlink } from 'node:fs/promises'
import { createServer } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import { KafkaSetupError } from './exec.ts'
import { probeKafka } from './probe.ts'

export const HOST = '127.0.0.1'

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, HOST, resolve)
  })
  const address = server.address()
  await new Promise((resolve) => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port from listen(0)')
  return address.port
}

/** The LISTEN sockets' inodes on `port` from /proc/net/tcp{,6} (Linux; empty elsewhere). */
async function listeningInodes(port: number): Promise<Set<string>> {
  const inodes = new Set<string>()
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0')
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '')
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/)
      // local_address is HEXIP:HEXPORT, st 0A is LISTEN, the inode is the tenth field.
      if (fields[1]?.endsWith(`:${hexPort}`) && fields[3] === '0A' && fields[9] !== undefined)
        inodes.add(fields[9])
    }
  }
  return inodes
}

/** Which process listens on `port`, as `pid N (command line)`, when this user may see it. */
export async function portHolder(port: number): Promise<string | undefined> {
  const inodes = await listeningInodes(port)
  if (inodes.size === 0) return undefined
  const sockets = new Set([...inodes].map((inode) => `socket:[${inode}]`))
  for (const pid of await readdir('/proc').catch(() => [])) {
    if (!/^\d+$/.test(pid)) continue
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [])
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')
      if (!sockets.has(target)) continue
      const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''))
        .split('\0')
        .filter(Boolean)
      // A JVM's command line is mostly options and the classpath: its main class and arguments say more.
      const main = args.findIndex((a) => /^[a-z]+(\.[A-Za-z]+)+$/.test(a) && !a.startsWith('-'))
      const shown = main > 0 ? [args[0] ?? '', '...', ...args.slice(main)] : args
      return `pid ${pid} (${shown.join(' ').replace(/\s+/g, ' ').slice(0, 200)})`
    }
  }
  return 'a process this user cannot see'
}

/**
 * Fails fast when `port` is taken, saying what holds it and whether it is a Kafka broker (which
 * can be used as it is) before anything slow (resolving jars, formatting a log dir) happens.
 */
export async function ensurePortFree(port: number): Promise<void> {
  const server = createServer()
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, HOST, resolve)
    })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE')
      throw new KafkaSetupError(`cannot listen on ${HOST}:${port}: ${String(err)}`, { cause: err })
    throw new KafkaSetupError(await takenPortMessage(port), { cause: err })
  } finally {
    await new Promise((resolve) => server.close(resolve))
  }
}

/** True when something listens on `port` on loopback. */
export async function isPortTaken(port: number): Promise<boolean> {
  const server = createServer()
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, HOST, resolve)
    })
    return false
  } catch {
    return true
  } finally {
    await new Promise((resolve) => server.close(resolve))
  }
}

/** What holds a taken port, and what to do about it. */
export async function takenPortMessage(port: number): Promise<string> {
  const holder = (await portHolder(port)) ?? 'another process'
  const brokers = `${HOST}:${port}`
  if ((await probeKafka(brokers, 2_000)) === undefined) {
    return (
      `${brokers} is taken by ${holder}, and a Kafka broker answers there (not one this checkout started). ` +
      `Use it: KAFKA_BROKERS=${brokers} for the tests, TRIBUTARY_KAFKA_BROKERS=${brokers} for Tributary; ` +
      'or start another with KAFKA_PORT=<port> (0 for any free one).'
    )
  }
  return `${brokers} is taken by ${holder}. Stop it, or pick another port: KAFKA_PORT=<port>, or KAFKA_PORT=0 for any free one.`
}

/** Is `pid` alive and (where /proc tells) a kafka.Kafka JVM started on `dataDir`? */
export async function isBrokerProcess(pid: number, dataDir: string): Promise<boolean> {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  try {
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0')
    return cmdline.includes('kafka.Kafka') && cmdline.some((arg) => arg.startsWith(dataDir))
  } catch {
    return process.platform !== 'linux'
  }
}

/** Whether a process with this pid exists (one of another user counts). */
export const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** SIGTERM (controlled shutdown), then SIGKILL once `graceMs` passed; resolves when it is gone. */
export async function stopBrokerProcess(pid: number, graceMs = 20_000): Promise<void> {
  const gone = async (ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms
    while (alive(pid)) {
      if (Date.now() > deadline) return false
      await delay(100)
    }
    return true
  }
  try {
    process.kill(pid, 'SIGTERM')
  } catch {
    return
  }
  if (await gone(graceMs)) return
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    return
  }
  if (!(await gone(10_000))) throw new KafkaSetupError(`Kafka (pid ${pid}) survived SIGKILL`)
}
