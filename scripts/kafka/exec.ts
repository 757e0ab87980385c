// Shared plumbing for the local Kafka helpers: where the cache lives, one error type with a
// readable message, and child processes whose output tail ends up in that message.
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const CACHE_DIR = join(ROOT, '.cache', 'kafka')
export const KAFKA_VERSION = '4.2.0'

/** A setup problem a developer can act on; `message` says what failed and what to do. */
export class KafkaSetupError extends Error {
  override name = 'KafkaSetupError'
}

export const tail = (text: string, lines = 40): string => text.trimEnd().split('\n').slice(-lines).join('\n')

export const indent = (text: string): string =>
  text
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n')

/** Last lines of a file, or '' when it does not exist (yet). */
export async function fileTail(path: string, lines = 40): Promise<string> {
  try {
    return tail(await readFile(path, 'utf8'), lines)
  } catch {
    return ''
  }
}

export interface RunResult {
  code: number | null
  output: string
}

/**
 * Runs a command to completion and returns its exit code with stdout and stderr interleaved
 * (the last 256 KiB). `missing` is the message to throw when the command does not exist.
 */
export function run(command: string, args: string[], missing: string, cwd = ROOT): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    const collect = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-256 * 1024)
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    child.on('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'ENOENT' ? new KafkaSetupError(missing, { cause: err }) : err)
    })
    child.on('close', (code) => resolve({ code, output }))
  })
}

/** The java binary: $JAVA_HOME/bin/java when JAVA_HOME is set, else java from PATH. */
export const javaBin = (): string =>
  process.env.JAVA_HOME ? join(process.env.JAVA_HOME, 'bin', 'java') : 'java'
