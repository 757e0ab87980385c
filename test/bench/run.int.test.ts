// `npm run bench` keeps working: the first two scenarios, and the processors and both webhooks
// scenarios (webhooks-process with its WebSocket rows), the commands round trip, the configuration
// push, start time and file uploads, run end to end on tiny record counts against
// the test broker, print their side-by-side tables and write a results file. The figures are not
// asserted (benchmarks measure, tests do not time).
import { execFile } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { expect, inject, it } from 'vitest'

const run = promisify(execFile)
const RUN = fileURLToPath(new URL('../../bench/run.ts', import.meta.url))
const RESULTS = fileURLToPath(new URL('../../bench/results/', import.meta.url))

it('prints the bus and Kafka-client scenarios side by side and writes JSON results', async () => {
  const before = new Set(readdirSync(RESULTS))
  const { stdout } = await run(
    process.execPath,
    [
      RUN,
      '--quick',
      '--scenario',
      'bus-embedded-vs-kafka,kafka-client',
      '--records',
      '2000',
      '--rounds',
      '1',
    ],
    {
      env: { ...process.env, KAFKA_BROKERS: inject('kafkaBrokers') },
      timeout: 240_000,
      maxBuffer: 16 * 1024 * 1024,
    },
  )
  expect(stdout).toMatch(/^bus-embedded-vs-kafka: /m)
  expect(stdout).toMatch(/^metric\s+embedded\s+kafka\s+ratio e\/k/m)
  expect(stdout).toMatch(/^publish rec\/s .*\d+\.\d+x/m)
  expect(stdout).toMatch(/^kafka-client: /m)
  expect(stdout).toMatch(/^metric\s+platformatic\s+kafkajs\s+ratio p\/k/m)
  const written = readdirSync(RESULTS).filter((f) => f.endsWith('.json') && !before.has(f))
  expect(written).toHaveLength(1)
  const results = JSON.parse(readFileSync(`${RESULTS}${written[0]}`, 'utf8')) as unknown
  expect(JSON.stringify(results)).toContain('bus-embedded-vs-kafka')
  expect(JSON.stringify(results)).toContain('kafka-client')
})

it('prints the processors scenario: processor and passthrough side by side on both buses', async () => {
  const { stdout } = await run(
    process.execPath,
    [RUN, '--quick', '--scenario', 'processors', '--records', '1000', '--rounds', '1'],
    {
      env: { ...process.env, KAFKA_BROKERS: inject('kafkaBrokers') },
      timeout: 240_000,
      maxBuffer: 16 * 1024 * 1024,
    },
  )
  expect(stdout).toMatch(/^processors: /m)
  expect(stdout).toMatch(/^metric\s+processor\s+passthrough\s+ratio p\/b/m)
  for (const bus of ['embedded', 'kafka']) {
    expect(stdout).toMatch(new RegExp(`^${bus}: rec/s after join .*\\d+\\.\\d+x`, 'm'))
    expect(stdout).toMatch(new RegExp(`^${bus}: lag max at `, 'm'))
    expect(stdout).toMatch(new RegExp(`^  ${bus}: lag back to 0 within `, 'm'))
  }
}, 120_000)

it('prints the webhooks scenario: runner vs undici and webhook vs consume latency on both buses', async () => {
  const { stdout } = await run(
    process.execPath,
    [RUN, '--quick', '--scenario', 'webhooks', '--records', '500', '--rounds', '1'],
    {
      env: { ...process.env, KAFKA_BROKERS: inject('kafkaBrokers') },
      timeout: 240_000,
      maxBuffer: 16 * 1024 * 1024,
    },
  )
  expect(stdout).toMatch(/^webhooks: /m)
  expect(stdout).toMatch(/^metric\s+webhooks\s+baseline\s+ratio w\/b/m)
  for (const bus of ['embedded', 'kafka']) {
    expect(stdout).toMatch(new RegExp(`^${bus}: events/s delivered .*\\d+\\.\\d+x`, 'm'))
    expect(stdout).toMatch(new RegExp(`^${bus}: latency p50 at 200 ev/s \\(ms\\) .*\\d+\\.\\d+x`, 'm'))
    expect(stdout).toMatch(new RegExp(`^${bus}: latency p99 at 200 ev/s \\(ms\\) .*\\d+\\.\\d+x`, 'm'))
  }
}, 120_000)

it('prints the webhooks-process scenario: device MQTT → webhook and → WebSocket through tributary vs Kafka', async () => {
  const { stdout } = await run(
    process.execPath,
    [RUN, '--quick', '--scenario', 'webhooks-process', '--rounds', '1'],
    {
      env: { ...process.env, KAFKA_BROKERS: inject('kafkaBrokers') },
      timeout: 240_000,
      maxBuffer: 16 * 1024 * 1024,
    },
  )
  expect(stdout).toMatch(/^webhooks-process: /m)
  expect(stdout).toMatch(/^metric\s+mqtt → app\s+kafka\s+ratio a\/k/m)
  for (const path of ['webhook', 'websocket']) {
    expect(stdout).toMatch(new RegExp(`^${path}: latency p50 at 200 ev/s \\(ms\\) .*\\d+\\.\\d+x`, 'm'))
    expect(stdout).toMatch(new RegExp(`^${path}: latency p99 at 200 ev/s \\(ms\\) .*\\d+\\.\\d+x`, 'm'))
  }
}, 120_000)

it('prints the commands scenario: the API → device → API round trip through tributary vs Kafka', async () => {
  const { stdout } = await run(
    process.execPath,
    [RUN, '--quick', '--scenario', 'commands', '--rounds', '1', '--records', '10'],
    {
      env: { ...process.env, KAFKA_BROKERS: inject('kafkaBrokers') },
      timeout: 240_000,
      maxBuffer: 16 * 1024 * 1024,
    },
  )
  expect(stdout).toMatch(/^commands: /m)
  expect(stdout).toMatch(/^metric\s+command round trip\s+kafka\s+ratio c\/k/m)
  expect(stdout).toMatch(/^round trip p50 at 10 cmd\/s \(ms\) .*\d+\.\d+x/m)
  expect(stdout).toMatch(/^round trip p99 at 10 cmd\/s \(ms\) .*\d+\.\d+x/m)
}, 120_000)

it('prints the start-time scenario: fresh with and without a registry template, and an existing data dir', async () => {
  const { stdout } = await run(process.execPath, [RUN, '--quick', '--scenario', 'start-time'], {
    env: { ...process.env, KAFKA_BROKERS: inject('kafkaBrokers') },
    timeout: 240_000,
    maxBuffer: 16 * 1024 * 1024,
  })
  expect(stdout).toMatch(/^start-time: /m)
  for (const row of ['fresh, template', 'fresh, no template', 'existing data dir'])
    expect(stdout).toMatch(new RegExp(`^${row}\\s+[\\d,.]+\\s+[\\d,.]+\\s+[\\d,.]+\\s+[\\d,.]+$`, 'm'))
}, 240_000)

it('prints the files scenario: uploads through tributary vs straight to S3Proxy, and RSS under concurrent uploads', async () => {
  const { stdout } = await run(process.execPath, [RUN, '--quick', '--scenario', 'files'], {
    env: { ...process.env, KAFKA_BROKERS: inject('kafkaBrokers') },
    timeout: 240_000,
    maxBuffer: 16 * 1024 * 1024,
  })
  expect(stdout).toMatch(/^files: /m)
  expect(stdout).toMatch(/^metric\s+tributary\s+direct S3 PUT \/ idle\s+ratio/m)
  expect(stdout).toMatch(/^MiB\/s \(8 MiB\) .*\d+\.\d+x/m)
  expect(stdout).toMatch(/^peak RSS MiB, 4 × 4 MiB .*\d+\.\d+x/m)
  expect(stdout).toMatch(/peak RSS at 4 MiB ÷ at 0\.4 MiB per device: \d+\.\d+x/m)
}, 240_000)

it('prints the config-push scenario: PUT → every MQTT device beside the command round trip', async () => {
  const { stdout } = await run(process.execPath, [RUN, '--quick', '--scenario', 'config-push'], {
    env: { ...process.env, KAFKA_BROKERS: inject('kafkaBrokers') },
    timeout: 240_000,
    maxBuffer: 16 * 1024 * 1024,
  })
  expect(stdout).toMatch(/^config-push: PUT of a tenant configuration → 20 MQTT devices /m)
  expect(stdout).toMatch(/^metric\s+config push\s+command round trip\s+ratio p\/c/m)
  for (const row of ['p50', 'p99', 'max'])
    expect(stdout).toMatch(new RegExp(`^${row} \\(ms\\)\\s+[\\d,.]+\\s+[\\d,.]+\\s+\\d+\\.\\d+x`, 'm'))
}, 240_000)
