// `tributary events tail`: a tenant's processed events, live, from the API's event WebSocket
// (`/api/v1/tenants/<t>/events`, subprotocol cloudevents.json), on the embedded bus and on Kafka.
import { parseArgs } from 'node:util'
import WebSocket from 'ws'
import { STRUCTURED_JSON_SUBPROTOCOL } from '../../core/events/structured.ts'
import { apiBase } from './api-client.ts'
import type { CliIo } from './registry-commands.ts'
import { common, required } from './registry-commands.ts'

/** `telemetry` → `io.tributary.telemetry.v1`; full type names pass unchanged. */
const fullType = (type: string): string => (type.includes('.') ? type : `io.tributary.${type}.v1`)

interface EventJson {
  readonly type?: string
  readonly time?: string
  readonly device?: string
  readonly subject?: string
  readonly data?: unknown
  readonly data_base64?: string
}

/** One line: time, device, kind, channel, data (JSON as sent, text as is, else base64). */
function line(event: EventJson): string {
  const kind = /^io\.tributary\.(.+)\.v1$/.exec(event.type ?? '')?.[1] ?? event.type ?? '?'
  const data =
    event.data_base64 !== undefined
      ? `base64:${event.data_base64}`
      : event.data === undefined
        ? ''
        : typeof event.data === 'string'
          ? event.data
          : JSON.stringify(event.data)
  return [event.time ?? '-', event.device ?? '-', kind, event.subject ?? '-', data].join('  ')
}

export async function eventsTail(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...common,
      tenant: { type: 'string', short: 't' },
      device: { type: 'string', multiple: true },
      channel: { type: 'string', multiple: true },
      type: { type: 'string', multiple: true },
      from: { type: 'string' },
      count: { type: 'string' },
    },
  })
  const tenant = required(values.tenant, '--tenant')
  const token = values.token ?? io.env['TRIBUTARY_API_TOKEN']
  if (token === undefined || token === '')
    throw new Error(
      'no token: set --token or TRIBUTARY_API_TOKEN (an API token of the tenant, or the admin token)',
    )
  let count: number | undefined
  if (values.count !== undefined) {
    count = Number(values.count)
    if (!Number.isSafeInteger(count) || count < 1) throw new Error('--count takes a whole number ≥ 1')
  }
  const query = new URLSearchParams()
  for (const device of values.device ?? []) query.append('device', device)
  for (const channel of values.channel ?? []) query.append('channel', channel)
  for (const type of values.type ?? []) query.append('type', fullType(type))
  if (values.from !== undefined) query.set('from', values.from)
  const base = apiBase(values.url ?? io.env['TRIBUTARY_API_URL'] ?? 'http://127.0.0.1:8080')
  const url = `${base.replace(/^http/, 'ws')}/tenants/${encodeURIComponent(tenant)}/events${query.size > 0 ? `?${query.toString()}` : ''}`

  const ws = new WebSocket(url, [STRUCTURED_JSON_SUBPROTOCOL], {
    headers: { authorization: `Bearer ${token}` },
    handshakeTimeout: 30_000,
  })
  const done = Promise.withResolvers<number>()
  let seen = 0
  const stop = (): void => ws.close(1000, 'done')
  io.signal?.addEventListener('abort', stop, { once: true })
  ws.on('unexpected-response', (_request, response) => {
    const chunks: Buffer[] = []
    response.on('data', (chunk: Buffer) => chunks.push(chunk))
    response.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8')
      let reason = response.statusMessage ?? ''
      try {
        const problem = JSON.parse(text) as { title?: string; detail?: string }
        reason = [problem.title, problem.detail].filter((p) => p !== undefined).join(': ')
      } catch {
        // not a problem document: the status line says it
      }
      done.reject(new Error(`${response.statusCode ?? 0} ${reason} (${base}/tenants/${tenant}/events)`))
      ws.terminate()
    })
  })
  ws.on('open', () => io.err?.(`watching the events of tenant ${tenant}; Ctrl-C to stop\n`))
  ws.on('message', (data: Buffer) => {
    // Frames already on their way when --count was reached are not printed.
    if (count !== undefined && seen >= count) return
    const text = data.toString('utf8')
    if (values.json) io.out(`${text}\n`)
    else {
      try {
        io.out(`${line(JSON.parse(text) as EventJson)}\n`)
      } catch {
        io.out(`${text}\n`)
      }
    }
    seen++
    if (count !== undefined && seen >= count) stop()
  })
  ws.on('error', (err) => {
    const reason = err.message === '' ? String(err) : err.message
    done.reject(new Error(`cannot watch the events at ${url.split('?')[0]}: ${reason}`, { cause: err }))
  })
  ws.on('close', (code, reason) => {
    io.signal?.removeEventListener('abort', stop)
    // 1000: we closed it (Ctrl-C or --count); anything else came from the server or the network.
    if (code === 1000) done.resolve(0)
    else
      done.reject(
        new Error(
          `the server closed the event stream (${code}${reason.length > 0 ? ` ${reason.toString()}` : ''})`,
        ),
      )
  })
  return done.promise
}
