// `tributary files list|get|download|url|delete|publish|unpublish|publications`: a tenant's device
// files, and where they are published for devices to download, through the management API.
import { createWriteStream } from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { parseArgs } from 'node:util'
import { apiBase } from './api-client.ts'
import type { CliHandler, CliIo } from './registry-commands.ts'
import { client, common, one, path, print, required, table, tenantOption } from './registry-commands.ts'

interface DeviceFile {
  id: string
  device: string
  name: string
  size: number
  sha256: string
  contentType: string
  uploadedAt: string
}

export const filesCommands: Record<string, CliHandler> = {
  list: filesList,
  get: filesGet,
  download: filesDownload,
  url: filesUrl,
  delete: filesDelete,
  publish: (args, io) => filesPublication('PUT', args, io),
  unpublish: (args, io) => filesPublication('DELETE', args, io),
  publications: (args, io) => filesPublication('GET', args, io),
}

interface Publications {
  devices: string[]
  folders: string[]
}

const publicationsText = (id: string, p: Publications): string =>
  `file ${id}\n  devices ${p.devices.join(', ') || '(none)'}\n  folders ${p.folders.join(', ') || '(none)'}\n`

/** PUT or DELETE a publication (--device or --folder), or GET them; prints where the file is published. */
async function filesPublication(
  method: 'PUT' | 'DELETE' | 'GET',
  args: string[],
  io: CliIo,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...common, ...tenantOption, device: { type: 'string' }, folder: { type: 'string' } },
  })
  const tenant = required(values.tenant, '--tenant')
  const id = one(positionals, 'file id')
  const api = client(values, io)
  const at = path('tenants', tenant, 'files', id, 'publications')
  if (method === 'GET' && (values.device !== undefined || values.folder !== undefined)) {
    throw new Error('publications takes no --device or --folder')
  }
  if (method !== 'GET') {
    if ((values.device === undefined) === (values.folder === undefined)) {
      throw new Error('give one of --device D and --folder F')
    }
    const target = values.device === undefined ? ['folders', values.folder ?? ''] : ['devices', values.device]
    await api.request(method, `${at}${path(...target)}`)
  }
  const { body } = await api.request<Publications>('GET', at)
  print(io, values.json, body, publicationsText(id, body))
  return 0
}

async function filesList(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...common, ...tenantOption, device: { type: 'string' }, 'name-prefix': { type: 'string' } },
  })
  const tenant = required(values.tenant, '--tenant')
  const query = new URLSearchParams()
  if (values.device !== undefined) query.set('device', values.device)
  if (values['name-prefix'] !== undefined) query.set('namePrefix', values['name-prefix'])
  const items = await client(values, io).listAll<DeviceFile>(`${path('tenants', tenant)}/files`, query)
  const rows = items.map((f) => [f.id, f.device, String(f.size), f.uploadedAt, f.name])
  print(io, values.json, items, table([['FILE', 'DEVICE', 'BYTES', 'UPLOADED', 'NAME'], ...rows]))
  return 0
}

async function filesGet(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...common, ...tenantOption },
  })
  const tenant = required(values.tenant, '--tenant')
  const id = one(positionals, 'file id')
  const { body } = await client(values, io).request<DeviceFile>('GET', path('tenants', tenant, 'files', id))
  const text = `${body.name}\n  device ${body.device}, ${body.size} bytes, ${body.contentType}\n  sha256 ${body.sha256}\n  uploaded ${body.uploadedAt}\n`
  print(io, values.json, body, text)
  return 0
}

async function filesUrl(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...common, ...tenantOption, 'expires-in': { type: 'string' } },
  })
  const tenant = required(values.tenant, '--tenant')
  const id = one(positionals, 'file id')
  const query =
    values['expires-in'] === undefined ? '' : `?expiresIn=${encodeURIComponent(values['expires-in'])}`
  const { body } = await client(values, io).request<{ url: string; expiresAt: string }>(
    'GET',
    `${path('tenants', tenant, 'files', id, 'url')}${query}`,
  )
  print(io, values.json, body, `${body.url}\n  GET until ${body.expiresAt}\n`)
  return 0
}

async function filesDownload(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...common, ...tenantOption, output: { type: 'string', short: 'o' } },
  })
  const tenant = required(values.tenant, '--tenant')
  const output = required(values.output, '--output')
  const id = one(positionals, 'file id')
  const url = `${apiBase(values.url ?? io.env['TRIBUTARY_API_URL'] ?? 'http://127.0.0.1:8080')}${path('tenants', tenant, 'files', id, 'content')}`
  const token = values.token ?? io.env['TRIBUTARY_API_TOKEN']
  const response = await fetch(url, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    ...(io.signal === undefined ? {} : { signal: io.signal }),
  })
  if (!response.ok || response.body === null) {
    const problem = (await response.json().catch(() => undefined)) as { detail?: string } | undefined
    throw new Error(`download failed: ${response.status} ${problem?.detail ?? response.statusText}`)
  }
  // Streamed to the file: a large file never sits in memory.
  await pipeline(Readable.fromWeb(response.body), createWriteStream(output, { flags: 'wx' }))
  print(io, values.json, { id, output }, `file ${id} saved to ${output}\n`)
  return 0
}

async function filesDelete(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { ...common, ...tenantOption },
  })
  const tenant = required(values.tenant, '--tenant')
  const id = one(positionals, 'file id')
  await client(values, io).request('DELETE', path('tenants', tenant, 'files', id))
  print(io, values.json, { deleted: id }, `file ${id} deleted from tenant ${tenant}\n`)
  return 0
}
