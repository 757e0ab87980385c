// The MQTT scenarios' two servers as child processes: Debian's Mosquitto on a generated config, and
// a `tributary start` process (bench/tributary-process.ts) with MQTT the only device adapter.
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BenchError } from './harness.ts'
import type { ServerProcess } from './server-process.ts'
import { freePort, spawnReady } from './server-process.ts'
import type { TributaryOptions, TributaryProcess } from './tributary-process.ts'
import { startTributary } from './tributary-process.ts'

export const MOSQUITTO = '/usr/sbin/mosquitto'

/** Debian's Mosquitto on a free loopback port: anonymous, no persistence, no log line per connection. */
export async function startMosquitto(): Promise<ServerProcess> {
  if (!existsSync(MOSQUITTO)) throw new BenchError(`${MOSQUITTO} not found (apt-get install mosquitto)`)
  const dir = await mkdtemp(join(tmpdir(), 'tributary-bench-mosquitto-'))
  const port = await freePort()
  const config = join(dir, 'mosquitto.conf')
  await writeFile(
    config,
    [
      `listener ${port} 127.0.0.1`,
      'allow_anonymous true',
      'persistence false',
      // The adapter sets TCP_NODELAY on its sockets; Mosquitto's default (Nagle on) holds PUBACKs
      // back behind the client's delayed ACKs (~40 ms), which would be measured instead of the broker.
      'set_tcp_nodelay true',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      'log_type notice',
      'log_type information',
      // A notice per connection would be 10,000 lines in the idle scenario; Tributary logs none either.
      'connection_messages false',
      '',
    ].join('\n'),
  )
  const { proc } = await spawnReady(
    'mosquitto',
    [MOSQUITTO, '-c', config],
    { PATH: process.env.PATH ?? '' },
    { match: (l) => / running$/.test(l), what: 'its "running" line' },
  ).catch(async (err: unknown) => {
    await rm(dir, { recursive: true, force: true })
    throw err
  })
  return {
    label: 'mosquitto',
    pid: proc.child.pid!,
    port,
    tail: proc.tail,
    async stop() {
      await proc.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** Tributary with MQTT the device listener under test; the HTTP and CoAP adapters off. */
export function startMqttTributary(options: Omit<TributaryOptions, 'listener'>): Promise<TributaryProcess> {
  return startTributary({
    ...options,
    listener: 'mqtt',
    // The other device adapters are not measured here: off, so their listeners cost nothing.
    env: { TRIBUTARY_HTTP_ENABLED: 'false', TRIBUTARY_COAP_ENABLED: 'false', ...options.env },
  })
}
