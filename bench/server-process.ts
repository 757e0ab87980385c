// Child processes of the bench's server scenarios: spawned with their open-file limit raised and
// their output lines kept, and their CPU time and resident memory (and the machine's) from /proc.
import type { ChildProcess } from 'node:child_process'
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { createInterface } from 'node:readline'
import { BenchError, withTimeout } from './harness.ts'
import type { RemoteMemory } from './inspector.ts'

const START_TIMEOUT_MS = 90_000
const STOP_TIMEOUT_MS = 20_000
// /proc/<pid>/stat counts CPU time in clock ticks of 1/100 s on Linux (getconf CLK_TCK).
const TICK_MS = 10

/** A server under measurement, running as a child process of the bench. */
export interface ServerProcess {
  readonly label: string
  readonly pid: number
  /** The port of the listener under test. */
  readonly port: number
  /** The last lines the process wrote, for error messages. */
  tail(): string
  /** A Node server started with its inspector: memory after a full garbage collection. */
  readonly memoryAfterGc?: (() => Promise<RemoteMemory>) | undefined
  stop(): Promise<void>
}

export interface ProcessStats {
  /** VmRSS of /proc/<pid>/status, bytes. */
  readonly rssBytes: number
  /** user + system CPU time so far, ms. */
  readonly cpuMs: number
}

export async function processStats(pid: number): Promise<ProcessStats> {
  const [status, stat] = await Promise.all([
    readFile(`/proc/${pid}/status`, 'utf8'),
    readFile(`/proc/${pid}/stat`, 'utf8'),
  ])
  const rss = /^VmRSS:\s+(\d+) kB$/m.exec(status)
  // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  if (rss === null || fields.length < 13) throw new BenchError(`cannot read /proc/${pid}`)
  return {
    rssBytes: Number(rss[1]) * 1024,
    cpuMs: (Number(fields[11]) + Number(fields[12])) * TICK_MS,
  }
}

/** The soft open-file limit of this process (the load generator's sockets count against it). */
export async function openFileLimit(): Promise<number> {
  const limits = await readFile('/proc/self/limits', 'utf8')
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(limits)
  return match?.[1] === undefined || match[1] === 'unlimited' ? Infinity : Number(match[1])
}

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  if (address === null || typeof address === 'string') throw new BenchError('no free port')
  return address.port
}

export interface Spawned {
  readonly child: ChildProcess
  readonly lines: string[]
  readonly exited: Promise<void>
  /** The last lines it wrote, for error messages. */
  readonly tail: () => string
  /** Resolves with the first line (stdout or stderr) that matches. */
  waitForLine(match: (line: string) => boolean, what: string): Promise<string>
  readonly stop: () => Promise<void>
}

/**
 * Spawns `command` with its soft open-file limit raised to the hard one (raising the hard limit
 * needs CAP_SYS_RESOURCE, which a container's root may lack), collecting its output lines.
 */
export function spawnWithLimit(label: string, command: string[], env: Record<string, string>): Spawned {
  const child = spawn('bash', ['-c', 'ulimit -Sn "$(ulimit -Hn)" && exec "$@"', 'bash', ...command], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  const watchers = new Set<(line: string) => void>()
  const onLine = (line: string): void => {
    lines.push(line)
    if (lines.length > 200) lines.splice(0, 100)
    for (const watch of [...watchers]) watch(line)
  }
  createInterface({ input: child.stdout }).on('line', onLine)
  createInterface({ input: child.stderr }).on('line', onLine)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return {
    child,
    lines,
    exited,
    tail: () => lines.slice(-15).join('\n'),
    waitForLine(match, what) {
      const found = lines.find(match)
      if (found !== undefined) return Promise.resolve(found)
      const waiting = new Promise<string>((resolve, reject) => {
        const watch = (line: string): void => {
          if (!match(line)) return
          watchers.delete(watch)
          resolve(line)
        }
        watchers.add(watch)
        void exited.then(() => {
          if (!watchers.delete(watch)) return
          reject(new BenchError(`${label} exited before ${what}:\n${lines.slice(-15).join('\n')}`))
        })
      })
      return withTimeout(
        waiting,
        START_TIMEOUT_MS,
        () => `${label}: no ${what} within ${START_TIMEOUT_MS} ms`,
      )
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS)
      await exited
      clearTimeout(timer)
    },
  }
}

/** spawnWithLimit(), then waits for its line saying it is ready; stops it again when that fails. */
export async function spawnReady(
  label: string,
  command: string[],
  env: Record<string, string>,
  ready: { readonly match: (line: string) => boolean; readonly what: string },
): Promise<{ proc: Spawned; line: string }> {
  const proc = spawnWithLimit(label, command, env)
  try {
    return { proc, line: await proc.waitForLine(ready.match, ready.what) }
  } catch (err) {
    await proc.stop()
    throw err
  }
}

/** Busy and total CPU time of the whole machine so far (/proc/stat), ms. */
export async function machineCpu(): Promise<{ busyMs: number; totalMs: number }> {
  const first = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0] ?? ''
  // cpu  user nice system idle iowait irq softirq steal ...
  const ticks = first.trim().split(/\s+/).slice(1, 9).map(Number)
  const total = ticks.reduce((sum, t) => sum + t, 0)
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0)
  return { busyMs: (total - idle) * TICK_MS, totalMs: total * TICK_MS }
}

export interface CpuUse<K extends string> {
  /** CPU time each watched process used, ms (NaN for a process whose pid is not known). */
  readonly ms: Record<K, number>
  /** Busy share of every CPU of the machine, %. */
  readonly machineBusyPercent: number
}

/**
 * Reads the CPU time of `pids` and of the machine now; `stop()` reads them again and returns what
 * was used in between.
 */
export async function startCpuMeter<K extends string>(
  pids: Record<K, number | undefined>,
): Promise<{ stop(): Promise<CpuUse<K>> }> {
  const names = Object.keys(pids) as K[]
  const read = (): Promise<[number[], { busyMs: number; totalMs: number }]> =>
    Promise.all([
      Promise.all(
        names.map(async (name) => {
          const pid = pids[name]
          return pid === undefined ? Number.NaN : (await processStats(pid)).cpuMs
        }),
      ),
      machineCpu(),
    ])
  const [before, machineBefore] = await read()
  return {
    async stop() {
      const [after, machineAfter] = await read()
      return {
        ms: Object.fromEntries(names.map((name, i) => [name, after[i]! - before[i]!])) as Record<K, number>,
        machineBusyPercent:
          (100 * (machineAfter.busyMs - machineBefore.busyMs)) /
          (machineAfter.totalMs - machineBefore.totalMs),
      }
    },
  }
}
