// `tributary config get|set|status` as an operator runs them: a real process (embedded bus and
// registry) and the CLI in child processes, writing each level and reading a device's merged result.
import { spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { configId } from '../../core/registry/device-config.ts'
import { CLI, startProcess } from '../helpers/process.ts'
import type { TributaryProcess } from '../helpers/process.ts'

const ADMIN_TOKEN = 'e2e-admin-token-0123456789'
let proc: TributaryProcess
let env: Record<string, string> = {}

interface CliResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

function cli(args: string[], stdin?: string): Promise<CliResult> {
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

beforeAll(async () => {
  proc = startProcess(['start'], { TRIBUTARY_API_PORT: '0', TRIBUTARY_ADMIN_TOKEN: ADMIN_TOKEN })
  const started = await proc.waitForLog((l) => l.msg === 'tributary started')
  const api = (started['ports'] as { api: number }).api
  env = { TRIBUTARY_API_URL: `http://127.0.0.1:${api}`, TRIBUTARY_API_TOKEN: ADMIN_TOKEN }
})

afterAll(async () => {
  expect(await proc?.stop('SIGTERM')).toBe(0)
})

describe('tributary config', () => {
  it('sets each level, merges them for a device, and shows the fleet status', async () => {
    expect((await cli(['tenant', 'create', 'plant'])).code).toBe(0)
    expect((await cli(['device', 'create', '--tenant', 'plant', 'boiler'])).code).toBe(0)
    // The device's appVersion is set through the API (PATCH /devices/{d}).
    const patched = await fetch(`${env['TRIBUTARY_API_URL']}/api/v1/tenants/plant/devices/boiler`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ appVersion: 'v3' }),
    })
    expect(patched.status).toBe(200)

    expect(await cli(['config', 'set', '--tenant', 'plant', '{"max":90,"unit":"C"}'])).toMatchObject({
      code: 0,
      stdout: 'configuration of tenant plant set (version 1)\n',
    })
    expect(
      (await cli(['config', 'set', '-t', 'plant', '--app-version', 'v3', '--stdin'], '{"max":80}')).code,
    ).toBe(0)
    expect(
      await cli([
        'config',
        'set',
        '-t',
        'plant',
        '--device',
        'boiler',
        '--merge',
        '{"unit":"F","extra":null}',
      ]),
    ).toMatchObject({ code: 0, stdout: 'configuration of device boiler patched (version 1)\n' })

    const level = await cli(['config', 'get', '-t', 'plant', '--app-version', 'v3'])
    expect(level.stdout).toBe('# version 1\n{\n  "max": 80\n}\n')
    const merged = { max: 80, unit: 'F' }
    const effective = await cli([
      'config',
      'get',
      '-t',
      'plant',
      '--device',
      'boiler',
      '--effective',
      '--json',
    ])
    expect(effective.code).toBe(0)
    expect(JSON.parse(effective.stdout)).toMatchObject({ configId: configId(merged), config: merged })

    const status = await cli(['config', 'status', '--tenant', 'plant'])
    expect(status).toMatchObject({ code: 0, stdout: 'CONFIG ID  APPLIED  REJECTED  PENDING\n' })

    const notJson = await cli(['config', 'set', '-t', 'plant', '{max'])
    expect(notJson).toMatchObject({ code: 1, stderr: 'tributary: the document is not JSON\n' })
    const refused = await cli(['config', 'set', '-t', 'plant', '[1]'])
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/^tributary: 400 /)
    const both = await cli(['config', 'get', '-t', 'plant', '--device', 'boiler', '--app-version', 'v3'])
    expect(both).toMatchObject({
      code: 1,
      stderr: 'tributary: use one of --app-version, --device and --rule\n',
    })
    expect((await cli(['config', 'get', '-t', 'plant'])).stdout).toBe(
      '# version 1\n{\n  "max": 90,\n  "unit": "C"\n}\n',
    )
  })

  it('writes, lists, patches and deletes label-selector rules', async () => {
    expect((await cli(['tenant', 'create', 'yard'])).code).toBe(0)
    expect((await cli(['device', 'create', '--tenant', 'yard', 'crane', '--label', 'site=north'])).code).toBe(
      0,
    )
    expect(
      await cli([
        'config',
        'set',
        '-t',
        'yard',
        '--rule',
        'north',
        '--selector',
        'site=north',
        '{"lights":"on"}',
      ]),
    ).toMatchObject({ code: 0, stdout: 'configuration of rule north set (version 1)\n' })
    expect(
      (
        await cli(
          [
            'config',
            'set',
            '-t',
            'yard',
            '--rule',
            'night',
            '--selector',
            'site=north,shift=night',
            '--priority',
            '7',
            '--stdin',
          ],
          '{"lights":"dim"}',
        )
      ).code,
    ).toBe(0)
    expect(await cli(['config', 'rules', '-t', 'yard'])).toMatchObject({
      code: 0,
      stdout:
        'RULE   PRIORITY  SELECTOR                VERSION\nnorth  0         site=north              1\nnight  7         site=north,shift=night  1\n',
    })
    expect(
      (
        await cli([
          'config',
          'set',
          '-t',
          'yard',
          '--rule',
          'north',
          '--merge',
          '--priority',
          '9',
          '{"horn":false}',
        ])
      ).code,
    ).toBe(0)
    expect((await cli(['config', 'get', '-t', 'yard', '--rule', 'north'])).stdout).toBe(
      '# version 2 · selector site=north · priority 9\n{\n  "horn": false,\n  "lights": "on"\n}\n',
    )
    const effective = await cli(['config', 'get', '-t', 'yard', '--device', 'crane', '--effective', '--json'])
    expect(JSON.parse(effective.stdout).config).toEqual({ lights: 'on', horn: false })

    expect(await cli(['config', 'set', '-t', 'yard', '--rule', 'x', '{}'])).toMatchObject({
      code: 1,
      stderr: 'tributary: a rule needs --selector key=value[,key=value]\n',
    })
    expect(await cli(['config', 'set', '-t', 'yard', '--selector', 'a=b', '{}'])).toMatchObject({
      code: 1,
      stderr: 'tributary: --selector and --priority are for a --rule\n',
    })
    expect(
      (await cli(['config', 'set', '-t', 'yard', '--rule', 'x', '--selector', 'nope', '{}'])).stderr,
    ).toMatch(/--selector takes key=value, got "nope"/)
    expect(await cli(['config', 'rm', '-t', 'yard', '--rule', 'north'])).toMatchObject({
      code: 0,
      stdout: 'rule north deleted\n',
    })
    expect((await cli(['config', 'rm', '-t', 'yard', '--rule', 'north'])).stderr).toMatch(/^tributary: 404 /)
  })
})
