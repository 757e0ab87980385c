// `npm run bench` keeps working: the webhooks-process scenario (with its WebSocket rows), the
// commands round trip and the configuration push run end to end on tiny record counts against the
// test broker and print their side-by-side tables. The figures are not asserted (benchmarks
// measure, tests do not time).
import { expect, it } from 'vitest'
import { runBench } from './bench-run.ts'

it('prints the webhooks-process scenario: device MQTT → webhook and → WebSocket through tributary vs Kafka', async () => {
  const { stdout } = await runBench(['--quick', '--scenario', 'webhooks-process', '--rounds', '1'])
  expect(stdout).toMatch(/^webhooks-process: /m)
  expect(stdout).toMatch(/^metric\s+mqtt → app\s+kafka\s+ratio a\/k/m)
  for (const path of ['webhook', 'websocket']) {
    expect(stdout).toMatch(new RegExp(`^${path}: latency p50 at 200 ev/s \\(ms\\) .*\\d+\\.\\d+x`, 'm'))
    expect(stdout).toMatch(new RegExp(`^${path}: latency p99 at 200 ev/s \\(ms\\) .*\\d+\\.\\d+x`, 'm'))
  }
}, 120_000)

it('prints the commands scenario: the API → device → API round trip through tributary vs Kafka', async () => {
  const { stdout } = await runBench(['--quick', '--scenario', 'commands', '--rounds', '1', '--records', '10'])
  expect(stdout).toMatch(/^commands: /m)
  expect(stdout).toMatch(/^metric\s+command round trip\s+kafka\s+ratio c\/k/m)
  expect(stdout).toMatch(/^round trip p50 at 10 cmd\/s \(ms\) .*\d+\.\d+x/m)
  expect(stdout).toMatch(/^round trip p99 at 10 cmd\/s \(ms\) .*\d+\.\d+x/m)
}, 120_000)

it('prints the config-push scenario: PUT → every MQTT device beside the command round trip', async () => {
  const { stdout } = await runBench(['--quick', '--scenario', 'config-push'])
  expect(stdout).toMatch(/^config-push: PUT of a tenant configuration → 20 MQTT devices /m)
  expect(stdout).toMatch(/^metric\s+config push\s+command round trip\s+ratio p\/c/m)
  for (const row of ['p50', 'p99', 'max'])
    expect(stdout).toMatch(new RegExp(`^${row} \\(ms\\)\\s+[\\d,.]+\\s+[\\d,.]+\\s+\\d+\\.\\d+x`, 'm'))
}, 240_000)
