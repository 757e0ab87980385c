// `npm run kafka:start` and `kafka:status` on a machine where the port is taken: the start fails at
// once (before resolving any jar) saying which process holds the port and whether a Kafka broker
// answers there; the status says the same rather than a bare "not running".
import { execFile } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Server, Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { kafkaBrokers } from '../setup/kafka-env.ts'

const SCRIPT = fileURLToPath(new URL('../../scripts/kafka.ts', import.meta.url))
const stateFile = join(mkdtempSync(join(tmpdir(), 'tributary-kafka-state-')), 'state.json')

function kafka(command: string, port: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [SCRIPT, command],
      {
        timeout: 60_000,
        // A state file of its own: a broker a developer left running with kafka:start (on any port)
        // would otherwise be reused, and the taken port never looked at.
        env: { ...process.env, KAFKA_PORT: String(port), KAFKA_STATE_FILE: stateFile },
      },
      (err, stdout, stderr) =>
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
    ),
  )
}

describe('kafka:start and kafka:status on a taken port', () => {
  let blocker: Server
  let port: number
  const sockets = new Set<Socket>()

  beforeAll(async () => {
    // Accepts connections and says nothing, as a foreign service would to a Kafka client.
    blocker = createServer((socket) => {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
    })
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    port = (blocker.address() as { port: number }).port
  })
  afterAll(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise((resolve) => blocker.close(resolve))
  })

  it('names the process that holds the port', async () => {
    const start = await kafka('start', port)
    expect(start.code).toBe(1)
    expect(start.stderr).toContain(`127.0.0.1:${port} is taken by pid ${process.pid} (`)
    expect(start.stderr).toContain('KAFKA_PORT=<port>')
    const status = await kafka('status', port)
    expect(status.code).toBe(1)
    expect(status.stderr).toContain(`is taken by pid ${process.pid}`)
  })

  it('says that a Kafka broker already answers there, and how to use it', async () => {
    const brokers = kafkaBrokers().split(',')[0]!
    const brokerPort = Number(brokers.split(':').at(-1))
    const start = await kafka('start', brokerPort)
    expect(start.code).toBe(1)
    expect(start.stderr).toContain(`127.0.0.1:${brokerPort} is taken by `)
    expect(start.stderr).toContain(`a Kafka broker answers there`)
    expect(start.stderr).toContain(`TRIBUTARY_KAFKA_BROKERS=127.0.0.1:${brokerPort}`)
  })
})
