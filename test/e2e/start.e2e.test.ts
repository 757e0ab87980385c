// `tributary start` as an operator runs it: a real process, its management listener, its logs.
import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { managementUrl, startProcess } from '../helpers/process.ts'
import type { TributaryProcess } from '../helpers/process.ts'
import { holdDefaultPorts } from '../helpers/default-ports.ts'
import { uniqueName, waitUntil } from '../helpers/wait.ts'

const run = promisify(execFile)
const running: TributaryProcess[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop('SIGKILL')))
})

function start(args: string[], env: Record<string, string> = {}): TributaryProcess {
  const proc = startProcess(args, env)
  running.push(proc)
  return proc
}

describe('tributary start', () => {
  it('starts on the embedded bus, serves the management listener and stops cleanly on SIGTERM', async () => {
    const proc = start(['start'])
    const url = await managementUrl(proc)
    const ready = await fetch(`${url}/readyz`)
    expect(ready.status).toBe(200)
    const health = (await (await fetch(`${url}/health`)).json()) as {
      status: string
      checks: Array<{ name: string; ok: boolean }>
    }
    expect(health).toMatchObject({
      status: 'ok',
      checks: [
        { name: 'bus', ok: true },
        { name: 'registry', ok: true },
        { name: 'cluster', ok: true },
      ],
    })
    const metrics = await (await fetch(`${url}/metrics`)).text()
    expect(metrics).toMatch(/^# TYPE tributary_bus_published_records_total counter$/m)
    expect(metrics).toMatch(/^# TYPE tributary_bus_publish_duration_seconds histogram$/m)
    expect(metrics).toMatch(/^nodejs_eventloop_lag_seconds /m)
    expect(await proc.stop('SIGTERM')).toBe(0)
    expect(proc.lines.map((l) => l.msg)).toContain('tributary stopped')
  })

  it('starts on Kafka when TRIBUTARY_KAFKA_BROKERS is set, creating the pipeline topics', async () => {
    const brokers = inject('kafkaBrokers')
    const prefix = uniqueName('e2e').replaceAll('-', '_')
    const proc = start(['start', '--roles', 'processors,api'], {
      TRIBUTARY_KAFKA_BROKERS: brokers,
      TRIBUTARY_TOPIC_PREFIX: prefix,
      TRIBUTARY_TOPIC_PARTITIONS: '2',
    })
    const url = await managementUrl(proc)
    expect((await fetch(`${url}/readyz`)).status).toBe(200)
    const started = proc.lines.find((l) => l.msg === 'tributary started')!
    expect(started['bus']).toBe('kafka')
    expect(Object.keys(started['roles'] as object)).toEqual(['processors', 'api'])
    const { stdout } = await run('kcat', ['-L', '-b', brokers, '-J'])
    const topics = (
      JSON.parse(stdout) as { topics: Array<{ topic: string; partitions: unknown[] }> }
    ).topics.filter((t) => t.topic.startsWith(`${prefix}.`))
    expect(topics.map((t) => t.topic).sort()).toEqual([
      `${prefix}.commands`,
      `${prefix}.deadletter`,
      `${prefix}.ingress`,
      `${prefix}.registry`,
    ])
    for (const t of topics) expect(t.partitions).toHaveLength(2)
    expect(await proc.stop('SIGTERM')).toBe(0)
  })

  it('refuses to start with invalid configuration, listing every problem', async () => {
    const proc = start(['start'], {
      TRIBUTARY_MANAGEMENT_PORT: 'eighty',
      TRIBUTARY_LOG_LEVEL: 'loud',
      TRIBUTARY_KAFKA_BROKER: 'x:1',
    })
    expect(await proc.exited).toBe(1)
    const message = proc.stderr.join('\n')
    expect(message).toContain('TRIBUTARY_MANAGEMENT_PORT must be an integer from 0 to 65535, got "eighty"')
    expect(message).toContain('TRIBUTARY_LOG_LEVEL must be one of')
    expect(message).toContain(
      'TRIBUTARY_KAFKA_BROKER is not a Tributary setting (did you mean TRIBUTARY_KAFKA_BROKERS?)',
    )
  })

  it('fails fast when its port is taken, naming the variable to change', async () => {
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as { port: number }).port
    try {
      const proc = start(['start'], { TRIBUTARY_MANAGEMENT_PORT: String(port) })
      expect(await proc.exited).toBe(1)
      expect(proc.stderr.join('\n')).toContain(
        `cannot bind 127.0.0.1:${port} (the port is taken); set TRIBUTARY_MANAGEMENT_PORT to another port`,
      )
    } finally {
      blocker.close()
    }
  })

  it('checks a port the user set before the slow start: taken, it fails at once and opens nothing', async () => {
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as { port: number }).port
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-ports-'))
    try {
      const proc = start(['start'], { TRIBUTARY_DATA_DIR: dataDir, TRIBUTARY_MQTT_PORT: String(port) })
      expect(await proc.exited).toBe(1)
      expect(proc.stderr.join('\n')).toContain(
        `the MQTT listener cannot bind 127.0.0.1:${port} (the port is taken); set TRIBUTARY_MQTT_PORT to another port`,
      )
      // Neither the event log nor the registry was opened (the slow part of a first start).
      expect(readdirSync(dataDir)).toEqual([])
    } finally {
      blocker.close()
    }
  })

  it('moves a default port that is taken, and says where on stderr', async () => {
    // The application MQTT default; held here when nothing else holds it, and by no other test
    // file meanwhile.
    const release = await holdDefaultPorts()
    const blocker = createServer()
    const held = await new Promise<boolean>((resolve) => {
      blocker.once('error', () => resolve(false))
      blocker.listen(1884, '127.0.0.1', () => resolve(true))
    })
    try {
      const proc = start(['start', '--roles', 'consumers'], { TRIBUTARY_APP_MQTT_PORT: '' })
      const started = await proc.waitForLog((l) => l.msg === 'tributary started')
      const bound = (started['ports'] as { appMqtt: number }).appMqtt
      expect(bound).not.toBe(1884)
      await waitUntil(() => proc.stderr.some((l) => l.startsWith('application MQTT: 1884 is taken')))
      expect(proc.stderr).toContain(
        `application MQTT: 1884 is taken, listening on ${bound} (set TRIBUTARY_APP_MQTT_PORT to choose a port)`,
      )
      expect(await proc.stop('SIGTERM')).toBe(0)
    } finally {
      if (held) blocker.close()
      release()
    }
  })

  it('names the part that could not start, the cause and what to do', async () => {
    const proc = start(['start', '--roles', 'processors'], { TRIBUTARY_REDIS_URL: 'redis://127.0.0.1:9' })
    expect(await proc.exited).toBe(1)
    const message = proc.stderr.join('\n')
    expect(message).toMatch(
      /^tributary: the cluster state could not start: cannot connect to Redis at 127\.0\.0\.1:9/,
    )
    expect(message).toContain('what to do: check that Redis at TRIBUTARY_REDIS_URL answers')
  })

  it('rejects unknown roles and commands', async () => {
    const roles = start(['start', '--roles', 'adapters,brokers'])
    expect(await roles.exited).toBe(1)
    expect(roles.stderr.join('\n')).toContain(
      '--roles takes "all" or a comma-separated list of processors, consumers, api, adapters',
    )
    const command = start(['launch'])
    expect(await command.exited).toBe(2)
    expect(command.stderr.join('\n')).toContain('unknown command "launch"')
  })
})
