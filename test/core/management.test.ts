import { Writable } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../../core/log.ts'
import { createManagementServer } from '../../core/management.ts'
import type { ManagementServer } from '../../core/management.ts'
import { createMetricsRegistry } from '../../core/metrics.ts'
import { isTributaryError } from '../../core/errors.ts'

const log = createLogger({ level: 'silent' })
const servers: ManagementServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()))
})

async function serve(
  ready: () => boolean,
  checks: Array<{ name: string; ok: boolean; reason?: string; critical?: boolean }> = [],
) {
  const server = createManagementServer({
    host: '127.0.0.1',
    port: 0,
    portVariable: 'TRIBUTARY_MANAGEMENT_PORT',
    registry: createMetricsRegistry(),
    log,
    ready,
  })
  for (const c of checks) {
    server.add({ name: c.name, critical: c.critical, check: async () => ({ ok: c.ok, reason: c.reason }) })
  }
  servers.push(server)
  const port = await server.start()
  return (path: string) => fetch(`http://127.0.0.1:${port}${path}`)
}

describe('management listener', () => {
  it('answers liveness, readiness, health and metrics when all is well', async () => {
    const get = await serve(() => true, [{ name: 'bus', ok: true }])
    expect((await get('/livez')).status).toBe(200)
    expect((await get('/readyz')).status).toBe(200)
    const health = await get('/health')
    expect(health.status).toBe(200)
    expect(await health.json()).toEqual({
      status: 'ok',
      ready: true,
      checks: [{ name: 'bus', critical: true, ok: true }],
    })
    const metrics = await get('/metrics')
    expect(metrics.headers.get('content-type')).toContain('text/plain')
    expect(await metrics.text()).toMatch(/^process_cpu_user_seconds_total /m)
  })

  it('reports a failing check with its reason: 503 on /readyz, 500 on /health', async () => {
    const get = await serve(
      () => true,
      [
        { name: 'bus', ok: false, reason: 'no broker answers at k1:9092' },
        { name: 'other', ok: true },
      ],
    )
    const ready = await get('/readyz')
    expect(ready.status).toBe(503)
    expect(await ready.text()).toContain('bus: no broker answers at k1:9092')
    const health = await get('/health')
    expect(health.status).toBe(500)
    expect(await health.json()).toMatchObject({
      status: 'failing',
      checks: [
        { name: 'bus', ok: false, reason: 'no broker answers at k1:9092' },
        { name: 'other', ok: true },
      ],
    })
    expect((await get('/livez')).status).toBe(200)
  })

  it('stays ready with a failing check that is not critical, and says what is degraded', async () => {
    const get = await serve(
      () => true,
      [
        { name: 'bus', ok: true },
        { name: 'cluster', ok: false, reason: 'Redis at r:6379 is unreachable', critical: false },
      ],
    )
    const ready = await get('/readyz')
    expect(ready.status).toBe(200)
    expect(await ready.text()).toBe('ready, degraded: cluster: Redis at r:6379 is unreachable\n')
    const health = await get('/health')
    expect(health.status).toBe(500)
    expect(await health.json()).toMatchObject({
      status: 'degraded',
      ready: true,
      checks: [
        { name: 'bus', ok: true },
        { name: 'cluster', critical: false, ok: false, reason: 'Redis at r:6379 is unreachable' },
      ],
    })
  })

  it('names the failures that make it unready first', async () => {
    const get = await serve(
      () => true,
      [
        { name: 'cluster', ok: false, reason: 'away', critical: false },
        { name: 'registry', ok: false, reason: 'refused' },
      ],
    )
    const ready = await get('/readyz')
    expect(ready.status).toBe(503)
    expect(await ready.text()).toBe('not ready: registry: refused; cluster: away\n')
    expect(await (await get('/health')).json()).toMatchObject({ status: 'failing', ready: false })
  })

  it('is not ready while starting or stopping', async () => {
    const get = await serve(() => false)
    expect((await get('/readyz')).status).toBe(503)
    expect((await get('/livez')).status).toBe(200)
  })

  it('refuses other paths and methods clearly', async () => {
    const get = await serve(() => true)
    expect((await get('/nope')).status).toBe(404)
    const port = new URL((await get('/livez')).url).port
    const post = await fetch(`http://127.0.0.1:${port}/livez`, { method: 'POST' })
    expect(post.status).toBe(405)
    expect(post.headers.get('allow')).toBe('GET, HEAD')
  })

  it('names the variable to change when its port is taken', async () => {
    const first = createManagementServer({
      host: '127.0.0.1',
      port: 0,
      portVariable: 'TRIBUTARY_MANAGEMENT_PORT',
      registry: createMetricsRegistry(),
      log,
      ready: () => true,
    })
    servers.push(first)
    const port = await first.start()
    const second = createManagementServer({
      host: '127.0.0.1',
      port,
      portVariable: 'TRIBUTARY_MANAGEMENT_PORT',
      registry: createMetricsRegistry(),
      log,
      ready: () => true,
    })
    const error = await second.start().then(
      () => undefined,
      (err: unknown) => err,
    )
    expect(isTributaryError(error, 'PORT_IN_USE')).toBe(true)
    expect((error as Error).message).toContain('set TRIBUTARY_MANAGEMENT_PORT to another port')
  })
})

describe('logs', () => {
  it('redact secrets wherever they sit in a logged object', () => {
    const lines: string[] = []
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString())
        done()
      },
    })
    const logger = createLogger({ level: 'info', destination })
    logger.info(
      {
        password: 'p1',
        device: { token: 't1', psk: 'k1' },
        req: { headers: { authorization: 'Bearer x' } },
        config: { adminToken: 'a1' },
      },
      'hello',
    )
    const line = lines.join('')
    for (const secret of ['p1', 't1', 'k1', 'Bearer x', 'a1']) expect(line).not.toContain(secret)
    expect(JSON.parse(line)).toMatchObject({
      msg: 'hello',
      password: '[redacted]',
      device: { token: '[redacted]' },
    })
  })
})
