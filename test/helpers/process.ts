// Starting a real `tributary` process for e2e tests: its JSON log lines are parsed and can be
// awaited, and it is stopped (SIGTERM, then SIGKILL) when the test ends.
import { execFile, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { NODE_FLAGS } from '../../main/node-flags.ts'
import { TEST_CACHE_DIR } from './cache.ts'

export const CLI = fileURLToPath(new URL('../../main/cli.ts', import.meta.url))

export interface LogLine {
  readonly level: string
  readonly msg: string
  readonly [field: string]: unknown
}

export interface TributaryProcess {
  readonly child: ChildProcess
  readonly lines: LogLine[]
  readonly stderr: string[]
  /** Resolves with the first log line (past or future) that matches. */
  waitForLog(match: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>
  /** Resolves with the exit code (or signal). */
  readonly exited: Promise<number | string>
  stop(signal?: NodeJS.Signals): Promise<number | string>
}

export function startProcess(args: string[], env: Record<string, string> = {}): TributaryProcess {
  const child = spawn(process.execPath, [...NODE_FLAGS, CLI, ...args], {
    env: {
      PATH: process.env['PATH'] ?? '',
      HOME: process.env['HOME'] ?? '/tmp',
      TRIBUTARY_DATA_DIR: mkdtempSync(join(tmpdir(), 'tributary-e2e-')),
      TRIBUTARY_MANAGEMENT_PORT: '0',
      TRIBUTARY_API_PORT: '0',
      // Mosquitto holds 1883 on the development machines: every listener takes a free port.
      TRIBUTARY_MQTT_PORT: '0',
      TRIBUTARY_MQTTS_PORT: '0',
      TRIBUTARY_MQTT_WS_PORT: '0',
      TRIBUTARY_COAP_PORT: '0',
      TRIBUTARY_HTTP_PORT: '0',
      TRIBUTARY_APP_MQTT_PORT: '0',
      TRIBUTARY_HOST: '127.0.0.1',
      TRIBUTARY_CACHE_DIR: TEST_CACHE_DIR,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: LogLine[] = []
  const stderr: string[] = []
  const watchers = new Set<() => void>()
  createInterface({ input: child.stdout }).on('line', (text) => {
    try {
      lines.push(JSON.parse(text) as LogLine)
    } catch {
      lines.push({ level: 'raw', msg: text })
    }
    for (const w of [...watchers]) w()
  })
  createInterface({ input: child.stderr }).on('line', (text) => {
    stderr.push(text)
    for (const w of [...watchers]) w()
  })
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  )
  // Its output can still arrive after the exit: a log line is given up on only once stdout closed.
  const drained = new Promise<void>((resolve) => child.once('close', () => resolve()))

  return {
    child,
    lines,
    stderr,
    exited,
    waitForLog(match, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = lines.find(match)
          if (found !== undefined) {
            cleanup()
            resolve(found)
          }
        }
        const timer = setTimeout(() => {
          cleanup()
          reject(
            new Error(
              `no matching log line within ${timeoutMs} ms; stderr: ${stderr.join('\n')}; last lines: ${JSON.stringify(lines.slice(-5))}`,
            ),
          )
        }, timeoutMs)
        const cleanup = (): void => {
          clearTimeout(timer)
          watchers.delete(check)
        }
        watchers.add(check)
        void drained.then(() => {
          check()
          if (watchers.has(check)) {
            cleanup()
            reject(new Error(`process exited before the log line; stderr: ${stderr.join('\n')}`))
          }
        })
        check()
      })
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return exited
      child.kill(signal)
      const timer = setTimeout(() => {
        // A process that does not stop in time is killed; what it was doing goes to the test log.
        console.error(
          `tributary (pid ${child.pid}) did not stop within 20 s of ${signal}; its last lines:\n` +
            [...lines.slice(-20).map((l) => JSON.stringify(l)), ...stderr.slice(-10)].join('\n'),
        )
        child.kill('SIGKILL')
      }, 20_000)
      const code = await exited
      clearTimeout(timer)
      return code
    },
  }
}

/** The management port from the "tributary started" log line. */
export async function managementUrl(proc: TributaryProcess): Promise<string> {
  const started = await proc.waitForLog((l) => l.msg === 'tributary started')
  const ports = started['ports'] as { management: number }
  return `http://127.0.0.1:${ports.management}`
}

/** Runs `tributary <args>` (the CLI) to its end with `env` added; resolves with its stdout, rejects with its stderr. */
export function runCli(args: readonly string[], env: Record<string, string>): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...env }, timeout: 30_000 },
      (err, stdout, stderr) => (err === null ? resolve(stdout) : reject(new Error(stderr, { cause: err }))),
    )
  })
}
