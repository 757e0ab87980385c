// `tributary tenant|device|token ...`: registry administration through the management API.
import { parseArgs } from 'node:util'
import type { ApiClient } from './api-client.ts'
import { createApiClient } from './api-client.ts'

export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly out: (text: string) => void
  /** Reads all of stdin (for --password-stdin). */
  readonly readStdin: () => Promise<string>
  /** Progress for the person at the terminal (stderr). */
  readonly err?: ((text: string) => void) | undefined
  /** Aborted on Ctrl-C: long-running commands stop cleanly. */
  readonly signal?: AbortSignal | undefined
}

export const common = {
  url: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const

export type CliHandler = (args: string[], io: CliIo) => Promise<number>

export const registryCommands: Record<string, Record<string, CliHandler>> = {
  tenant: { create: tenantCreate, list: tenantList },
  device: { create: deviceCreate, list: deviceList, delete: deviceDelete, 'set-password': deviceSetPassword },
  token: { create: tokenCreate },
}

export function client(
  values: { url?: string | undefined; token?: string | undefined },
  io: CliIo,
): ApiClient {
  return createApiClient({
    url: values.url ?? io.env['TRIBUTARY_API_URL'] ?? 'http://127.0.0.1:8080',
    token: values.token ?? io.env['TRIBUTARY_API_TOKEN'],
  })
}

export function one(positionals: string[], what: string): string {
  if (positionals.length !== 1) throw new Error(`expected exactly one ${what}, got ${positionals.length}`)
  return positionals[0]!
}

export function required(value: string | undefined, flag: string): string {
  if (value === undefined || value === '') throw new Error(`${flag} is required`)
  return value
}

/** `k=v` pairs from repeated flags (each may also hold a comma-separated list): --label, --selector. */
export function labels(values: string[] | undefined, flag = '--label'): Record<string, string> {
  const out: Record<string, string> = {}
  for (const pair of (values ?? []).flatMap((v) => v.split(','))) {
    const eq = pair.indexOf('=')
    if (eq <= 0) throw new Error(`${flag} takes key=value, got ${JSON.stringify(pair)}`)
    out[pair.slice(0, eq)] = pair.slice(eq + 1)
  }
  return out
}

async function password(values: { password?: string | undefined; 'password-stdin'?: boolean }, io: CliIo) {
  if (values['password-stdin'] === true) {
    if (values.password !== undefined) throw new Error('use --password or --password-stdin, not both')
    return (await io.readStdin()).replace(/\r?\n$/, '')
  }
  return values.password
}

export const path = (...parts: string[]): string => parts.map((p) => `/${encodeURIComponent(p)}`).join('')

export function print(io: CliIo, json: boolean, value: unknown, text: string): void {
  io.out(json ? `${JSON.stringify(value, null, 2)}\n` : text)
}

export function table(rows: string[][]): string {
  if (rows.length === 0) return ''
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return (
    rows
      .map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  )
}

async function tenantCreate(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...common,
      disabled: { type: 'boolean', default: false },
      'max-devices': { type: 'string' },
      'auth-methods': { type: 'string' },
    },
  })
  const id = one(positionals, 'tenant id')
  const body: Record<string, unknown> = { id, enabled: !values.disabled }
  if (values['max-devices'] !== undefined) {
    const max = Number(values['max-devices'])
    if (!Number.isSafeInteger(max) || max < 0) throw new Error('--max-devices takes a whole number ≥ 0')
    body['quotas'] = { maxDevices: max }
  }
  if (values['auth-methods'] !== undefined) body['authMethods'] = values['auth-methods'].split(',')
  const { body: tenant } = await client(values, io).request('POST', '/tenants', { body })
  print(io, values.json, tenant, `tenant ${id} created\n`)
  return 0
}

async function tenantList(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: common })
  const items = await client(values, io).listAll<{ id: string; enabled: boolean; version: number }>(
    '/tenants',
  )
  const rows = items.map((t) => [t.id, t.enabled ? 'enabled' : 'disabled', String(t.version)])
  print(io, values.json, items, table([['TENANT', 'STATE', 'VERSION'], ...rows]))
  return 0
}

export const tenantOption = { tenant: { type: 'string', short: 't' } } as const

async function deviceCreate(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...common,
      ...tenantOption,
      label: { type: 'string', multiple: true },
      gateway: { type: 'string', multiple: true },
      disabled: { type: 'boolean', default: false },
      password: { type: 'string' },
      'password-stdin': { type: 'boolean', default: false },
    },
  })
  const tenant = required(values.tenant, '--tenant')
  const id = one(positionals, 'device id')
  const secret = await password(values, io)
  const api = client(values, io)
  const { body: device } = await api.request('POST', `${path('tenants', tenant)}/devices`, {
    body: { id, enabled: !values.disabled, labels: labels(values.label), gateways: values.gateway ?? [] },
  })
  if (secret !== undefined) {
    await api.request('PUT', `${path('tenants', tenant, 'devices', id)}/password`, {
      body: { password: secret },
    })
  }
  print(
    io,
    values.json,
    device,
    `device ${id} created in tenant ${tenant}${secret === undefined ? '' : ' with a password'}\n`,
  )
  return 0
}

async function deviceList(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...common, ...tenantOption, label: { type: 'string', multiple: true } },
  })
  const tenant = required(values.tenant, '--tenant')
  const query = new URLSearchParams()
  const selector = Object.entries(labels(values.label))
  if (selector.length > 0) query.set('label', selector.map(([k, v]) => `${k}=${v}`).join(','))
  const items = await client(values, io).listAll<{
    id: string
    enabled: boolean
    labels: Record<string, string>
    lastSeen: string | null
  }>(`${path('tenants', tenant)}/devices`, query)
  const rows = items.map((d) => [
    d.id,
    d.enabled ? 'enabled' : 'disabled',
    Object.entries(d.labels)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
    d.lastSeen ?? '-',
  ])
  print(io, values.json, items, table([['DEVICE', 'STATE', 'LABELS', 'LAST SEEN'], ...rows]))
  return 0
}

async function deviceDelete(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...common, ...tenantOption },
  })
  const tenant = required(values.tenant, '--tenant')
  const id = one(positionals, 'device id')
  await client(values, io).request('DELETE', path('tenants', tenant, 'devices', id))
  print(io, values.json, { deleted: id }, `device ${id} deleted from tenant ${tenant}\n`)
  return 0
}

async function deviceSetPassword(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...common,
      ...tenantOption,
      password: { type: 'string' },
      'password-stdin': { type: 'boolean', default: false },
    },
  })
  const tenant = required(values.tenant, '--tenant')
  const id = one(positionals, 'device id')
  const secret = await password(values, io)
  if (secret === undefined) throw new Error('--password or --password-stdin is required')
  const { body } = await client(values, io).request(
    'PUT',
    `${path('tenants', tenant, 'devices', id)}/password`,
    {
      body: { password: secret },
    },
  )
  print(io, values.json, body, `password of device ${id} in tenant ${tenant} set\n`)
  return 0
}

async function tokenCreate(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...common,
      ...tenantOption,
      name: { type: 'string' },
      role: { type: 'string', default: 'reader' },
      'expires-at': { type: 'string' },
    },
  })
  const tenant = required(values.tenant, '--tenant')
  const body: Record<string, unknown> = { name: required(values.name, '--name'), role: values.role }
  if (values['expires-at'] !== undefined) body['expiresAt'] = values['expires-at']
  const { body: created } = await client(values, io).request<{
    secret: string
    token: { id: string; expiresAt: string }
  }>('POST', `${path('tenants', tenant)}/tokens`, { body })
  print(
    io,
    values.json,
    created,
    `${created.secret}\n# API token ${created.token.id} (${values.role} on ${tenant}), expires ${created.token.expiresAt}. Shown once: store it now.\n`,
  )
  return 0
}
