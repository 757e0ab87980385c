// The registry commands and `start --demo` as a user runs them: a real process, the `tributary`
// CLI in child processes, and curl.
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { GROUPS } from '../../main/cli/help.ts'
import { CLI, startProcess } from '../helpers/process.ts'
import type { TributaryProcess } from '../helpers/process.ts'

const exec = promisify(execFile)
const ADMIN_TOKEN = 'e2e-admin-token-0123456789'

const running: TributaryProcess[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop('SIGKILL')))
})

interface CliResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs `tributary <args>` with the given environment and optional stdin. */
function cli(args: string[], env: Record<string, string>, stdin?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()))
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
    child.once('error', reject)
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
    child.stdin.end(stdin ?? '')
  })
}

async function apiPort(proc: TributaryProcess): Promise<number> {
  const started = await proc.waitForLog((l) => l.msg === 'tributary started')
  return (started['ports'] as { api: number }).api
}

async function curl(args: string[]): Promise<{ status: number; body: string }> {
  const { stdout } = await exec('curl', ['-s', '-w', '\n%{http_code}', ...args])
  const cut = stdout.lastIndexOf('\n')
  return { status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) }
}

describe('tributary tenant|device|token', () => {
  it('administers the registry through the API', async () => {
    const proc = startProcess(['start'], { TRIBUTARY_API_PORT: '0', TRIBUTARY_ADMIN_TOKEN: ADMIN_TOKEN })
    running.push(proc)
    const url = `http://127.0.0.1:${await apiPort(proc)}`
    const admin = { TRIBUTARY_API_URL: url, TRIBUTARY_API_TOKEN: ADMIN_TOKEN }

    expect(await cli(['tenant', 'create', 'acme', '--max-devices', '10'], admin)).toMatchObject({
      code: 0,
      stdout: 'tenant acme created\n',
    })
    const tenants = await cli(['tenant', 'list'], admin)
    expect(tenants.code).toBe(0)
    expect(tenants.stdout).toMatch(/^TENANT\s+STATE\s+VERSION\nacme\s+enabled\s+1\n$/)

    const created = await cli(
      ['token', 'create', '--tenant', 'acme', '--name', 'ops', '--role', 'manager'],
      admin,
    )
    expect(created.code).toBe(0)
    const token = created.stdout.split('\n')[0]!
    expect(token).toMatch(/^tat_/)
    const manager = { TRIBUTARY_API_URL: url, TRIBUTARY_API_TOKEN: token }

    expect(
      await cli(
        ['device', 'create', '--tenant', 'acme', 'sensor-1', '--label', 'room=lab', '--password-stdin'],
        manager,
        'pa55-word\n',
      ),
    ).toMatchObject({ code: 0, stdout: 'device sensor-1 created in tenant acme with a password\n' })
    expect(
      (await cli(['device', 'create', '-t', 'acme', 'sensor-2', '--label', 'room=hall'], manager)).code,
    ).toBe(0)
    const lab = await cli(['device', 'list', '--tenant', 'acme', '--label', 'room=lab'], manager)
    expect(
      lab.stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split(/\s+/)[0]),
    ).toEqual(['sensor-1'])
    const json = await cli(['device', 'list', '--tenant', 'acme', '--json'], manager)
    expect((JSON.parse(json.stdout) as Array<{ id: string }>).map((d) => d.id).sort()).toEqual([
      'sensor-1',
      'sensor-2',
    ])

    expect(
      await cli(
        ['device', 'set-password', '--tenant', 'acme', 'sensor-2', '--password', 'another-pass'],
        manager,
      ),
    ).toMatchObject({
      code: 0,
    })
    const credentials = await curl([
      '-H',
      `Authorization: Bearer ${token}`,
      `${url}/api/v1/tenants/acme/devices/sensor-2/credentials`,
    ])
    expect(credentials.status).toBe(200)
    expect(credentials.body).toContain('"password"')
    expect(credentials.body).not.toContain('another-pass')

    expect(await cli(['device', 'delete', '--tenant', 'acme', 'sensor-2'], manager)).toMatchObject({
      code: 0,
    })
    // A refused body is explained once: the field errors, not the same line again as the detail.
    const invalid = await cli(['device', 'create', '--tenant', 'acme', 'bad id!'], manager)
    expect(invalid.code).toBe(1)
    expect(invalid.stderr.match(/body\.id/g)).toHaveLength(1)
    expect(invalid.stderr).toMatch(/^tributary: 400 .*\n {2}- body\.id: /)

    const gone = await cli(['device', 'delete', '--tenant', 'acme', 'sensor-2'], manager)
    expect(gone.code).toBe(1)
    expect(gone.stderr).toMatch(/^tributary: 404 /)

    // A manager may not create tenants; a wrong token is refused; both say so on stderr.
    const forbidden = await cli(['tenant', 'create', 'other'], manager)
    expect(forbidden.code).toBe(1)
    expect(forbidden.stderr).toMatch(/^tributary: 403 /)
    const wrong = await cli(['tenant', 'list'], {
      TRIBUTARY_API_URL: url,
      TRIBUTARY_API_TOKEN: 'tat_nope_nope',
    })
    expect(wrong.code).toBe(1)
    expect(wrong.stderr).toMatch(/^tributary: 401 /)
  })

  it('answers --help for every command and subcommand with its help, exit 0', async () => {
    const asked = [
      ['--help'],
      ['help'],
      ['start', '--help'],
      ['version', '--help'],
      ...Object.entries(GROUPS).flatMap(([command, group]) => [
        [command, '--help'],
        ...Object.keys(group.subs).map((sub) => [command, sub, '--help']),
      ]),
    ]
    const results = await Promise.all(asked.map((args) => cli(args, {})))
    for (const [i, result] of results.entries()) {
      const args = asked[i]!
      expect(result, args.join(' ')).toMatchObject({ code: 0, stderr: '' })
      expect(result.stdout, args.join(' ')).toMatch(/^Usage/)
      const [command, sub] = args
      const help = command === undefined ? undefined : GROUPS[command]
      if (help !== undefined && sub !== undefined && sub !== '--help')
        expect(result.stdout).toContain(help.subs[sub]!.synopsis)
    }
    // The group's help lists its subcommands (it used to exit 2 with a bare list).
    const device = results[asked.findIndex((a) => a.join(' ') === 'device --help')]!
    expect(device.stdout).toContain('tributary device set-password --tenant T <device>')
  })

  it('explains bad usage and an unreachable API', async () => {
    const usage = await cli(['device', 'frobnicate'], {})
    expect(usage.code).toBe(2)
    expect(usage.stderr).toContain('device takes one of create|list|delete|set-password')
    const option = await cli(['device', 'create', '--tenant', 'acme', 'x', '--frob'], {})
    expect(option.code).toBe(2)
    expect(option.stderr).toContain("Unknown option '--frob'")
    expect(option.stderr).toContain('(tributary device create --help)')
    const missing = await cli(['device', 'list'], {})
    expect(missing).toMatchObject({ code: 1, stderr: 'tributary: --tenant is required\n' })
    const down = await cli(['tenant', 'list', '--url', 'http://127.0.0.1:9'], {})
    expect(down.code).toBe(1)
    expect(down.stderr).toMatch(/^tributary: cannot reach the API at http:\/\/127\.0\.0\.1:9\/api\/v1/)
  })
})

describe('tributary start --demo', () => {
  it('leaves the settings the user made alone and replaces a demo token that was revoked', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-demo-'))
    const env = {
      TRIBUTARY_DATA_DIR: dataDir,
      TRIBUTARY_ADMIN_TOKEN: ADMIN_TOKEN,
      TRIBUTARY_WEBHOOK_ALLOW_PRIVATE: 'false',
    }
    const tokens: string[] = []
    for (let run = 0; run < 2; run++) {
      const proc = startProcess(['start', '--demo'], env)
      running.push(proc)
      await proc.waitForLog((l) => l.msg === 'demo ready')
      await expect.poll(() => proc.stderr.join('\n')).toContain('TRIBUTARY_API_TOKEN=')
      const printed = proc.stderr.join('\n')
      // The user's admin token is theirs: used, never printed; their "no private webhooks" holds.
      expect(printed).toContain('admin token: the TRIBUTARY_ADMIN_TOKEN you set')
      expect(printed).not.toContain(ADMIN_TOKEN)
      expect(printed).not.toContain('TRIBUTARY_WEBHOOK_ALLOW_PRIVATE=true')
      const [, url, token] = /export TRIBUTARY_API_URL=(\S+) TRIBUTARY_API_TOKEN=(\S+)/.exec(printed)!
      tokens.push(token!)
      const devices = await curl([
        '-H',
        `Authorization: Bearer ${token}`,
        `${url}/api/v1/tenants/demo/devices`,
      ])
      expect(devices.status).toBe(200)
      expect((JSON.parse(devices.body) as { items: Array<{ id: string }> }).items.map((d) => d.id)).toEqual([
        'device1',
      ])
      const local = await curl([
        '-H',
        `Authorization: Bearer ${token}`,
        '-H',
        'content-type: application/json',
        '-d',
        '{"url":"http://127.0.0.1:9/hook"}',
        `${url}/api/v1/tenants/demo/subscriptions`,
      ])
      expect(local.status).toBe(400)
      const stored = JSON.parse(readFileSync(join(dataDir, 'demo.json'), 'utf8')) as Record<string, unknown>
      expect(stored).toEqual({ apiToken: token })
      expect(statSync(join(dataDir, 'demo.json')).mode & 0o777).toBe(0o600)
      if (run === 0) {
        // Revoked behind the demo's back: the next start makes and stores a new one.
        const id = /^tat_([^_]+)_/.exec(token!)![1]!
        const deleted = await curl([
          '-X',
          'DELETE',
          '-H',
          `Authorization: Bearer ${ADMIN_TOKEN}`,
          `${url}/api/v1/tenants/demo/tokens/${id}`,
        ])
        expect(deleted.status).toBe(204)
      }
      expect(await proc.stop('SIGTERM')).toBe(0)
      running.splice(running.indexOf(proc), 1)
    }
    expect(tokens[0]).not.toBe(tokens[1])
  })
})
