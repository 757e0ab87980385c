// The management API as an operator uses it: a real `tributary start` with TRIBUTARY_ADMIN_TOKEN,
// driven with curl (create a tenant, a device, its password and an API token; read back; a stale
// If-Match is refused with 412).
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { startProcess } from '../helpers/process.ts'
import type { TributaryProcess } from '../helpers/process.ts'

const run = promisify(execFile)
const ADMIN = 'e2e-admin-token-0123456789abcdef'
const running: TributaryProcess[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop('SIGKILL')))
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

interface CurlReply {
  readonly status: number
  readonly headers: Record<string, string>
  readonly body: any // eslint-disable-line @typescript-eslint/no-explicit-any -- read freely in assertions
}

/** Runs curl with -i and splits its output into status, headers and a parsed JSON body. */
async function curl(args: string[]): Promise<CurlReply> {
  const { stdout } = await run('curl', ['-sS', '-i', ...args])
  const end = stdout.indexOf('\r\n\r\n')
  const [statusLine = '', ...lines] = stdout.slice(0, end).split('\r\n')
  const headers = Object.fromEntries(
    lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
  )
  const text = stdout.slice(end + 4)
  return {
    status: Number(statusLine.split(' ')[1]),
    headers,
    body: text === '' ? undefined : JSON.parse(text),
  }
}

const ids = (reply: CurlReply): string[] =>
  (reply.body as { items: Array<{ id: string }> }).items.map((item) => item.id)

async function startWithApi(
  env: Record<string, string> = {},
): Promise<{ proc: TributaryProcess; api: string }> {
  const proc = startProcess(['start', '--roles', 'api'], {
    TRIBUTARY_ADMIN_TOKEN: ADMIN,
    TRIBUTARY_API_PORT: '0',
    ...env,
  })
  running.push(proc)
  const started = await proc.waitForLog((l) => l.msg === 'tributary started')
  const ports = started['ports'] as { api: number }
  expect(ports.api).toBeGreaterThan(0)
  return { proc, api: `http://127.0.0.1:${ports.api}/api/v1` }
}

describe('management API (e2e, curl)', () => {
  it('creates a tenant, a device, its password and an API token, reads them back, and refuses a stale If-Match', async () => {
    const { proc, api } = await startWithApi()
    const admin = ['-H', `Authorization: Bearer ${ADMIN}`]
    const json = ['-H', 'Content-Type: application/json']

    const tenant = await curl([...admin, ...json, '-X', 'POST', '-d', '{"id":"factory"}', `${api}/tenants`])
    expect(tenant.status).toBe(201)
    expect(tenant.headers['location']).toBe('/api/v1/tenants/factory')
    const device = await curl([
      ...admin,
      ...json,
      '-d',
      '{"id":"press-7","labels":{"line":"a"}}',
      `${api}/tenants/factory/devices`,
    ])
    expect(device.status).toBe(201)
    expect(device.headers['etag']).toBe('"1"')
    const password = await curl([
      ...admin,
      ...json,
      '-X',
      'PUT',
      '-d',
      '{"password":"s3cret-pass"}',
      `${api}/tenants/factory/devices/press-7/password`,
    ])
    expect(password.status).toBe(200)
    expect(password.body).toMatchObject({ type: 'password', device: 'press-7' })
    const token = await curl([
      ...admin,
      ...json,
      '-d',
      '{"name":"ops","role":"manager"}',
      `${api}/tenants/factory/tokens`,
    ])
    expect(token.status).toBe(201)
    expect(token.body.secret).toMatch(/^tat_/)

    // The new token reads back what the admin token wrote.
    const asManager = ['-H', `Authorization: Bearer ${token.body.secret as string}`]
    const read = await curl([...asManager, `${api}/tenants/factory/devices/press-7`])
    expect(read.status).toBe(200)
    expect(read.headers['etag']).toBe('"1"')
    expect(read.body).toMatchObject({ tenant: 'factory', id: 'press-7', labels: { line: 'a' } })
    const list = await curl([...asManager, `${api}/tenants/factory/devices?label=line=a`])
    expect(ids(list)).toEqual(['press-7'])
    expect(ids(await curl([...asManager, `${api}/tenants`]))).toEqual(['factory'])

    const patch = [
      '-X',
      'PATCH',
      ...json,
      '-H',
      'If-Match: "1"',
      '-d',
      '{"enabled":false}',
      `${api}/tenants/factory/devices/press-7`,
    ]
    const changed = await curl([...asManager, ...patch])
    expect(changed.status).toBe(200)
    expect(changed.headers['etag']).toBe('"2"')
    const stale = await curl([...asManager, ...patch])
    expect(stale.status).toBe(412)
    expect(stale.headers['content-type']).toBe('application/problem+json')
    expect(stale.body).toMatchObject({
      status: 412,
      code: 'REGISTRY_VERSION_MISMATCH',
      type: 'https://tributary.dev/problems/registry-version-mismatch',
    })

    const unauthenticated = await curl([`${api}/tenants`])
    expect(unauthenticated.status).toBe(401)
    expect(unauthenticated.headers['www-authenticate']).toBe('Bearer realm="tributary"')
    const doc = await curl([`${api}/openapi.json`])
    expect(doc.body.openapi).toBe('3.1.0')
    const { stdout: page } = await run('curl', ['-sS', `${api}/docs`])
    expect(page).toContain('Tributary management API')

    expect(await proc.stop('SIGTERM')).toBe(0)
    // Secrets never reach the log.
    const log = JSON.stringify(proc.lines)
    expect(log).not.toContain(ADMIN)
    expect(log).not.toContain(token.body.secret)
    expect(log).not.toContain('s3cret-pass')
  })

  it('keeps what it wrote across a restart on the same data dir', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-e2e-api-'))
    dirs.push(dataDir)
    const first = await startWithApi({ TRIBUTARY_DATA_DIR: dataDir })
    const admin = ['-H', `Authorization: Bearer ${ADMIN}`, '-H', 'Content-Type: application/json']
    expect((await curl([...admin, '-d', '{"id":"durable"}', `${first.api}/tenants`])).status).toBe(201)
    expect(await first.proc.stop('SIGTERM')).toBe(0)
    const second = await startWithApi({ TRIBUTARY_DATA_DIR: dataDir })
    const read = await curl([...admin, `${second.api}/tenants/durable`])
    expect(read.status).toBe(200)
    expect(read.body.id).toBe('durable')
  })

  it('fails fast when the API port is taken, naming TRIBUTARY_API_PORT', async () => {
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as { port: number }).port
    try {
      const proc = startProcess(['start', '--roles', 'api'], { TRIBUTARY_API_PORT: String(port) })
      running.push(proc)
      expect(await proc.exited).toBe(1)
      expect(proc.stderr.join('\n')).toContain(
        `cannot bind 127.0.0.1:${port} (the port is taken); set TRIBUTARY_API_PORT`,
      )
    } finally {
      blocker.close()
    }
  })
})
