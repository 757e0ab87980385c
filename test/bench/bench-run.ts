// Runs `npm run bench` (bench/run.ts) as a child process against the test broker, for the
// smoke tests that check every scenario still runs and prints its table (test/bench/*.int.test.ts).
// The scenarios are split over several files so that they run beside each other.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { inject } from 'vitest'

const RUN = fileURLToPath(new URL('../../bench/run.ts', import.meta.url))
export const RESULTS = fileURLToPath(new URL('../../bench/results/', import.meta.url))

/** `node bench/run.ts ...args`; resolves with its stdout, rejects on a non-zero exit. */
export async function runBench(args: string[]): Promise<{ stdout: string }> {
  return promisify(execFile)(process.execPath, [RUN, ...args], {
    env: { ...process.env, KAFKA_BROKERS: inject('kafkaBrokers') },
    timeout: 240_000,
    maxBuffer: 16 * 1024 * 1024,
  })
}
