// `npm run bench` keeps working: the bus and Kafka-client scenarios (which also write a results
// file), the processors and the webhooks scenarios run end to end on tiny record counts against
// the test broker and print their side-by-side tables. The figures are not asserted (benchmarks
// measure, tests do not time).
import { readFileSync, readdirSync } from 'node:fs'
import { expect, it } from 'vitest'
import { RESULTS, runBench } from './bench-run.ts'

it('prints the bus and Kafka-client scenarios side by side and writes JSON results', async () => {
  const before = new Set(readdirSync(RESULTS))
  const { stdout } = await runBench([
    '--quick',
    '--scenario',
    'bus-embedded-vs-kafka,kafka-client',
    '--records',
    '2000',
    '--rounds',
    '1',
  ])
  expect(stdout).toMatch(/^bus-embedded-vs-kafka: /m)
  expect(stdout).toMatch(/^metric\s+embedded\s+kafka\s+ratio e\/k/m)
  expect(stdout).toMatch(/^publish rec\/s .*\d+\.\d+x/m)
  expect(stdout).toMatch(/^kafka-client: /m)
  expect(stdout).toMatch(/^metric\s+platformatic\s+kafkajs\s+ratio p\/k/m)
  // The other bench smoke files may write results at the same time: this run's file is the new
  // one that holds its scenarios, and there is exactly one such.
  const written = readdirSync(RESULTS)
    .filter((f) => f.endsWith('.json') && !before.has(f))
    .map((f) => readFileSync(`${RESULTS}${f}`, 'utf8'))
    .filter((text) => text.includes('bus-embedded-vs-kafka'))
  expect(written).toHaveLength(1)
  expect(JSON.stringify(JSON.parse(written[0]!) as unknown)).toContain('kafka-client')
})

it('prints the processors scenario: processor and passthrough side by side on both buses', async () => {
  const { stdout } = await runBench([
    '--quick',
    '--scenario',
    'processors',
    '--records',
    '1000',
    '--rounds',
    '1',
  ])
  expect(stdout).toMatch(/^processors: /m)
  expect(stdout).toMatch(/^metric\s+processor\s+passthrough\s+ratio p\/b/m)
  for (const bus of ['embedded', 'kafka']) {
    expect(stdout).toMatch(new RegExp(`^${bus}: rec/s after join .*\\d+\\.\\d+x`, 'm'))
    expect(stdout).toMatch(new RegExp(`^${bus}: lag max at `, 'm'))
    expect(stdout).toMatch(new RegExp(`^  ${bus}: lag back to 0 within `, 'm'))
  }
}, 120_000)

it('prints the webhooks scenario: runner vs undici and webhook vs consume latency on both buses', async () => {
  const { stdout } = await runBench([
    '--quick',
    '--scenario',
    'webhooks',
    '--records',
    '500',
    '--rounds',
    '1',
  ])
  expect(stdout).toMatch(/^webhooks: /m)
  expect(stdout).toMatch(/^metric\s+webhooks\s+baseline\s+ratio w\/b/m)
  for (const bus of ['embedded', 'kafka']) {
    expect(stdout).toMatch(new RegExp(`^${bus}: events/s delivered .*\\d+\\.\\d+x`, 'm'))
    expect(stdout).toMatch(new RegExp(`^${bus}: latency p50 at 200 ev/s \\(ms\\) .*\\d+\\.\\d+x`, 'm'))
    expect(stdout).toMatch(new RegExp(`^${bus}: latency p99 at 200 ev/s \\(ms\\) .*\\d+\\.\\d+x`, 'm'))
  }
}, 120_000)
