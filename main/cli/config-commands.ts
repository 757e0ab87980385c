// `tributary config get|set|status`: desired device configuration through the management API
// (docs/config.md): one level's document (tenant default, --app-version, --device), a device's
// effective configuration, and the fleet status by configuration id.
import { parseArgs } from 'node:util'
import { createApiClient } from './api-client.ts'
import type { CliHandler, CliIo } from './registry-commands.ts'
import { common, required } from './registry-commands.ts'

const levelOptions = {
  tenant: { type: 'string', short: 't' },
  'app-version': { type: 'string' },
  device: { type: 'string', short: 'd' },
} as const

const path = (...parts: string[]): string => parts.map((p) => `/${encodeURIComponent(p)}`).join('')

function client(values: { url?: string | undefined; token?: string | undefined }, io: CliIo) {
  return createApiClient({
    url: values.url ?? io.env['TRIBUTARY_API_URL'] ?? 'http://127.0.0.1:8080',
    token: values.token ?? io.env['TRIBUTARY_API_TOKEN'],
  })
}

/** The API path of the level the flags name, and how to say it. */
function level(values: {
  tenant?: string | undefined
  'app-version'?: string | undefined
  device?: string | undefined
}) {
  const tenant = required(values.tenant, '--tenant')
  const appVersion = values['app-version']
  if (appVersion !== undefined && values.device !== undefined) {
    throw new Error('use --app-version or --device, not both')
  }
  if (values.device !== undefined) {
    return {
      path: `${path('tenants', tenant, 'devices', values.device)}/config`,
      what: `device ${values.device}`,
    }
  }
  if (appVersion !== undefined) {
    return {
      path: `${path('tenants', tenant)}/config/app-versions${path(appVersion)}`,
      what: `app version ${appVersion}`,
    }
  }
  return { path: `${path('tenants', tenant)}/config`, what: `tenant ${tenant}` }
}

const show = (io: CliIo, value: unknown): void => io.out(`${JSON.stringify(value, null, 2)}\n`)

async function configGet(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...common, ...levelOptions, effective: { type: 'boolean', default: false } },
  })
  const { path: at } = level(values)
  if (values.effective && values.device === undefined) throw new Error('--effective needs --device')
  const api = client(values, io)
  if (values.effective) {
    const { body } = await api.request<{ configId: string; config: unknown }>('GET', `${at}/effective`)
    if (values.json) show(io, body)
    else io.out(`# configuration id ${body.configId}\n${JSON.stringify(body.config, null, 2)}\n`)
    return 0
  }
  const { body } = await api.request<{ config: unknown; version: number }>('GET', at)
  if (values.json) show(io, body)
  else io.out(`# version ${body.version}\n${JSON.stringify(body.config, null, 2)}\n`)
  return 0
}

async function configSet(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...common,
      ...levelOptions,
      stdin: { type: 'boolean', default: false },
      merge: { type: 'boolean', default: false },
    },
  })
  const { path: at, what } = level(values)
  if (values.stdin === (positionals.length === 1) || positionals.length > 1) {
    throw new Error('give the document as one argument or with --stdin')
  }
  const text = values.stdin ? await io.readStdin() : positionals[0]!
  let document: unknown
  try {
    document = JSON.parse(text)
  } catch {
    throw new Error('the document is not JSON')
  }
  const { body } = await client(values, io).request<{ version: number }>(values.merge ? 'PATCH' : 'PUT', at, {
    body: document,
  })
  if (values.json) show(io, body)
  else io.out(`configuration of ${what} ${values.merge ? 'patched' : 'set'} (version ${body.version})\n`)
  return 0
}

async function configStatus(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { ...common, tenant: levelOptions.tenant } })
  const tenant = required(values.tenant, '--tenant')
  const { body } = await client(values, io).request<{
    items: Array<{ configId: string; applied: number; rejected: number; pending: number }>
  }>('GET', `${path('tenants', tenant)}/config/status`)
  if (values.json) {
    show(io, body)
    return 0
  }
  const rows = [
    ['CONFIG ID', 'APPLIED', 'REJECTED', 'PENDING'],
    ...body.items.map((i) => [i.configId, String(i.applied), String(i.rejected), String(i.pending)]),
  ]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  io.out(
    rows
      .map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n',
  )
  return 0
}

export const configCommands: Record<string, Record<string, CliHandler>> = {
  config: { get: configGet, set: configSet, status: configStatus },
}
