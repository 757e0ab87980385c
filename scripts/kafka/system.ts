// Ports and processes on this machine: free and taken loopback ports, whether a pid is still
// our broker, and stopping one gracefully with a bound.
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import { KafkaSetupError } from './exec.ts'

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

export async function ensurePortFree(port: number): Promise<void> {
  const server = createServer()
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, HOST, resolve)
    })
  } catch (err) {
    const taken = (err as NodeJS.ErrnoException).code === 'EADDRINUSE'
    throw new KafkaSetupError(
      taken
        ? `${HOST}:${port} is already in use (another broker? "node scripts/kafka.ts status"). ` +
            'Pick another port: KAFKA_PORT=<port>, or KAFKA_PORT=0 for any free one.'
        : `cannot listen on ${HOST}:${port}: ${String(err)}`,
      { cause: err },
    )
  } finally {
    await new Promise((resolve) => server.close(resolve))
  }
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

const alive = (pid: number): boolean => {
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
