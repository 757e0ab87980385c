// `npm run bench` keeps working: the start-time, file-upload and tracing scenarios run end to end
// on tiny record counts against the test broker and print their side-by-side tables. The figures
// are not asserted (benchmarks measure, tests do not time).
import { expect, it } from 'vitest'
import { runBench } from './bench-run.ts'

it('prints the start-time scenario: fresh with and without a registry template, and an existing data dir', async () => {
  const { stdout } = await runBench(['--quick', '--scenario', 'start-time'])
  expect(stdout).toMatch(/^start-time: /m)
  for (const row of ['fresh, template', 'fresh, no template', 'existing data dir'])
    expect(stdout).toMatch(new RegExp(`^${row}\\s+[\\d,.]+\\s+[\\d,.]+\\s+[\\d,.]+\\s+[\\d,.]+$`, 'm'))
}, 240_000)

it('prints the files scenario: uploads through tributary vs straight to S3Proxy, and RSS under concurrent uploads', async () => {
  const { stdout } = await runBench(['--quick', '--scenario', 'files'])
  expect(stdout).toMatch(/^files: /m)
  expect(stdout).toMatch(/^metric\s+tributary\s+direct S3 PUT \/ idle\s+ratio/m)
  expect(stdout).toMatch(/^MiB\/s \(8 MiB\) .*\d+\.\d+x/m)
  expect(stdout).toMatch(/^peak RSS MiB, 4 × 4 MiB .*\d+\.\d+x/m)
  expect(stdout).toMatch(/peak RSS at 4 MiB ÷ at 0\.4 MiB per device: \d+\.\d+x/m)
}, 240_000)

it('prints the tracing scenario: the pipeline with spans exported (all, 1 %) vs tracing off', async () => {
  const { stdout } = await runBench(['--quick', '--scenario', 'tracing'])
  expect(stdout).toMatch(/^tracing: 500 HTTP posts of 256 B from 4 devices /m)
  expect(stdout).toMatch(/^metric\s+traced\s+off\s+ratio t\/o/m)
  for (const what of ['all traces', '1 % of traces']) {
    expect(stdout).toMatch(new RegExp(`^${what}: events/s \\(POST → tenant topic\\) .*\\d+\\.\\d+x`, 'm'))
    expect(stdout).toMatch(new RegExp(`^${what}: server CPU µs per event .*\\d+\\.\\d+x`, 'm'))
  }
  expect(stdout).toMatch(/spans received by the sink: [1-9][\d,]*\./)
}, 240_000)
