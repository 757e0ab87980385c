// `tributary config get|set|rules|rm|status`: desired device configuration through the management
// API (docs/config.md): one level's document (tenant default, --app-version, --device) or a
// label-selector rule (--rule), a device's effective configuration, and the fleet status by
// configuration id.
import { parseArgs } from 'node:util'
import { createApiClient } from './api-client.ts'
import type { CliHandler, CliIo } from './registry-commands.ts'
import { common, labels, required } from './registry-commands.ts'

const levelOptions = {
  tenant: { type: 'string', short: 't' },
  'app-version': { type: 'string' },
  device: { type: 'string', short: 'd' },
  rule: { type: 'string' },
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
  rule?: string | undefined
}) {
  const tenant = required(values.tenant, '--tenant')
  const appVersion = values['app-version']
  const named = [appVersion, values.device, values.rule].filter((v) => v !== undefined)
  if (named.length > 1) throw new Error('use one of --app-version, --device and --rule')
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
  if (values.rule !== undefined) {
    return {
      path: `${path('tenants', tenant)}/config/rules${path(values.rule)}`,
      what: `rule ${values.rule}`,
    }
  }
  return { path: `${path('tenants', tenant)}/config`, what: `tenant ${tenant}` }
}

/** A whole number for --priority. */
function priorityOf(text: string): number {
  if (!/^-?\d+$/.test(text)) throw new Error('--priority takes a whole number')
  return Number(text)
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
  const { body } = await api.request<{
    config: unknown
    version: number
    selector?: Record<string, string>
    priority?: number
  }>('GET', at)
  if (values.json) show(io, body)
  else {
    const rule =
      body.selector === undefined
        ? ''
        : ` · selector ${labelText(body.selector)} · priority ${String(body.priority)}`
    io.out(`# version ${body.version}${rule}\n${JSON.stringify(body.config, null, 2)}\n`)
  }
  return 0
}

const labelText = (labels: Record<string, string>): string =>
  Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',')

async function configSet(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...common,
      ...levelOptions,
      stdin: { type: 'boolean', default: false },
      merge: { type: 'boolean', default: false },
      selector: { type: 'string' },
      priority: { type: 'string' },
    },
  })
  const { path: at, what } = level(values)
  if (values.rule === undefined && (values.selector !== undefined || values.priority !== undefined)) {
    throw new Error('--selector and --priority are for a --rule')
  }
  if (values.rule !== undefined && !values.merge && values.selector === undefined) {
    throw new Error('a rule needs --selector key=value[,key=value]')
  }
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
  const request =
    values.rule === undefined
      ? document
      : {
          config: document,
          ...(values.selector === undefined ? {} : { selector: labels([values.selector], '--selector') }),
          ...(values.priority === undefined ? {} : { priority: priorityOf(values.priority) }),
        }
  const { body } = await client(values, io).request<{ version: number }>(values.merge ? 'PATCH' : 'PUT', at, {
    body: request,
  })
  if (values.json) show(io, body)
  else io.out(`configuration of ${what} ${values.merge ? 'patched' : 'set'} (version ${body.version})\n`)
  return 0
}

async function configRules(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({ args, options: { ...common, tenant: levelOptions.tenant } })
  const tenant = required(values.tenant, '--tenant')
  const { body } = await client(values, io).request<{
    items: Array<{ rule: string; priority: number; selector: Record<string, string>; version: number }>
  }>('GET', `${path('tenants', tenant)}/config/rules`)
  if (values.json) show(io, body)
  else
    table(io, [
      ['RULE', 'PRIORITY', 'SELECTOR', 'VERSION'],
      ...body.items.map((r) => [r.rule, String(r.priority), labelText(r.selector), String(r.version)]),
    ])
  return 0
}

async function configRemove(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...common, tenant: levelOptions.tenant, rule: levelOptions.rule },
  })
  const { path: at, what } = level({ tenant: values.tenant, rule: required(values.rule, '--rule') })
  await client(values, io).request('DELETE', at)
  io.out(`${what} deleted\n`)
  return 0
}

/** Rows as columns padded to their widest cell. */
function table(io: CliIo, rows: string[][]): void {
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
  table(io, [
    ['CONFIG ID', 'APPLIED', 'REJECTED', 'PENDING'],
    ...body.items.map((i) => [i.configId, String(i.applied), String(i.rejected), String(i.pending)]),
  ])
  return 0
}

export const configCommands: Record<string, Record<string, CliHandler>> = {
  config: { get: configGet, set: configSet, rules: configRules, rm: configRemove, status: configStatus },
}
