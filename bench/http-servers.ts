// The two HTTP servers of the http-ingest bench as child processes: a `tributary start` process
// with only its device HTTP listener (producing to Kafka), and the bare node:http baseline
// (bench/http-baseline.ts) producing the same records with the same Kafka bus code.
import { fileURLToPath } from 'node:url'
import type { ServerProcess } from './server-process.ts'
import { spawnReady } from './server-process.ts'
import type { TributaryOptions, TributaryProcess } from './tributary-process.ts'
import { startTributary } from './tributary-process.ts'

const BASELINE = fileURLToPath(new URL('http-baseline.ts', import.meta.url))

/** Tributary with the device HTTP listener the only one; `env` adds to (or overrides) its settings. */
export function startHttpTributary(options: Omit<TributaryOptions, 'listener'>): Promise<TributaryProcess> {
  return startTributary({
    ...options,
    listener: 'http',
    env: {
      TRIBUTARY_TOPIC_PARTITIONS: '6',
      // Only the listener under test runs.
      TRIBUTARY_MQTT_ENABLED: 'false',
      TRIBUTARY_MQTTS_ENABLED: 'false',
      TRIBUTARY_MQTT_WS_ENABLED: 'false',
      TRIBUTARY_COAP_ENABLED: 'false',
      // The default per-device rate (100 msg/s) would be the limit measured, not the adapter.
      TRIBUTARY_MQTT_PUBLISH_RATE: '1000000',
      ...options.env,
    },
  })
}

/** The bare node:http baseline, writing to `<prefix>.ingress`; `devicesFile` maps tokens to devices. */
export async function startHttpBaseline(
  brokers: readonly string[],
  prefix: string,
  devicesFile: string,
): Promise<ServerProcess> {
  const { proc, line } = await spawnReady(
    'node:http',
    [process.execPath, BASELINE],
    {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      BENCH_BROKERS: brokers.join(','),
      BENCH_TOPIC: `${prefix}.ingress`,
      BENCH_DEVICES: devicesFile,
    },
    { match: (l) => l.startsWith('listening '), what: 'its listening line' },
  )
  return {
    label: 'node:http',
    pid: proc.child.pid!,
    port: Number(line.slice('listening '.length)),
    tail: proc.tail,
    stop: proc.stop,
  }
}
