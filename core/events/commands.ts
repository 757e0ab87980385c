// Commands as events: the io.tributary.command.v1 CloudEvent on the commands topic (what the API,
// the application MQTT broker and data engineers produce), its checked reading, and the status and
// response events (io.tributary.command.status.v1, io.tributary.command.response.v1) that tell the
// application what became of a command. docs/commands.md documents the format.
import { TributaryError } from '../errors.ts'
import type { EventInput, Protocol } from './build.ts'
import { buildEvent, eventTypes, jsonData } from './build.ts'
import type { CloudEvent } from './cloudevent.ts'
import { assertDeviceId, assertTenantId } from './ids.ts'

/** Command names: one URI-safe segment (it becomes a topic level and a path segment). */
export const COMMAND_NAME_PATTERN = /^[A-Za-z0-9._~-]{1,64}$/
/** Names that would be read as something else in device topics and paths. */
const RESERVED_NAMES: ReadonlySet<string> = new Set(['res', 'req', '.', '..'])
/** Request ids: chosen by the sender (or a UUIDv7), echoed by the device in its response. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._~-]{1,64}$/
/** The longest a command may wait for its device: 7 days. */
export const MAX_COMMAND_TTL_MS = 7 * 86_400_000
/** Response status codes, HTTP style. */
export const RESPONSE_STATUS_MIN = 200
export const RESPONSE_STATUS_MAX = 599

export type CommandStatus = 'accepted' | 'delivered' | 'expired' | 'failed'

export interface Command {
  /** The command event's id. */
  readonly id: string
  readonly tenant: string
  readonly device: string
  readonly name: string
  readonly payload: Buffer
  readonly contentType?: string | undefined
  /** Set for request-style commands: the device answers with it. */
  readonly requestId?: string | undefined
  /** When it was sent. */
  readonly time: Date
  /** After this it is not delivered any more (expired). Equal to `time` for "only if connected now". */
  readonly expiresAt: Date
  /** Where it came from: `api`, `mqtt` (the application broker) or `kafka`. */
  readonly origin: Protocol
  /** LoRaWAN FPort for TTN devices (1-223). */
  readonly fport?: number | undefined
  /** TTN: push onto the device's downlink queue (default) or replace it. */
  readonly downlink?: 'push' | 'replace' | undefined
  readonly traceparent?: string | undefined
}

const invalid = (message: string): TributaryError => new TributaryError('EVENT_INVALID', message)

export function isCommandName(name: string): boolean {
  return COMMAND_NAME_PATTERN.test(name) && !RESERVED_NAMES.has(name)
}

export function assertCommandName(name: string): string {
  if (!isCommandName(name)) {
    throw new TributaryError(
      'IDENTIFIER_INVALID',
      `command name ${JSON.stringify(name.slice(0, 80))} is invalid: use 1-64 of A-Z a-z 0-9 . _ ~ -, not res or req`,
    )
  }
  return name
}

export function assertRequestId(id: string): string {
  if (!REQUEST_ID_PATTERN.test(id)) {
    throw new TributaryError(
      'IDENTIFIER_INVALID',
      `request id ${JSON.stringify(id.slice(0, 80))} is invalid: use 1-64 of A-Z a-z 0-9 . _ ~ -`,
    )
  }
  return id
}

export function assertFport(fport: number): number {
  if (!Number.isInteger(fport) || fport < 1 || fport > 223) {
    throw new TributaryError('IDENTIFIER_INVALID', `fport must be an integer 1-223, not ${fport}`)
  }
  return fport
}

export function assertDownlink(mode: string): 'push' | 'replace' {
  if (mode !== 'push' && mode !== 'replace') {
    throw new TributaryError(
      'IDENTIFIER_INVALID',
      `downlink must be push or replace, not ${JSON.stringify(mode.slice(0, 20))}`,
    )
  }
  return mode
}

export interface CommandInput {
  readonly tenant: string
  readonly device: string
  readonly name: string
  readonly payload: Buffer
  readonly contentType?: string | undefined
  readonly requestId?: string | undefined
  /** How long it may wait for the device; 0 = only if it is connected now. */
  readonly ttlMs: number
  readonly origin: Protocol
  readonly fport?: number | undefined
  readonly downlink?: 'push' | 'replace' | undefined
  readonly traceparent?: string | undefined
  readonly time?: Date | undefined
  readonly id?: string | undefined
}

/** The command event for the commands topic, keyed `<tenant>/<device>`. */
export function buildCommandEvent(input: CommandInput): CloudEvent {
  assertCommandName(input.name)
  if (input.requestId !== undefined) assertRequestId(input.requestId)
  if (!Number.isInteger(input.ttlMs) || input.ttlMs < 0 || input.ttlMs > MAX_COMMAND_TTL_MS) {
    throw new TributaryError(
      'IDENTIFIER_INVALID',
      `ttl must be 0 to ${MAX_COMMAND_TTL_MS / 1000} seconds, not ${input.ttlMs / 1000}`,
    )
  }
  const time = input.time ?? new Date()
  const extensions: Record<string, string> = {
    expires: new Date(time.getTime() + input.ttlMs).toISOString(),
  }
  if (input.requestId !== undefined) extensions['requestid'] = input.requestId
  if (input.fport !== undefined) extensions['fport'] = String(assertFport(input.fport))
  if (input.downlink !== undefined) extensions['downlink'] = assertDownlink(input.downlink)
  return buildEvent({
    kind: 'command',
    tenant: input.tenant,
    device: input.device,
    protocol: input.origin,
    subject: input.name,
    data: input.payload,
    datacontenttype: input.contentType,
    traceparent: input.traceparent,
    time,
    id: input.id,
    extensions,
  })
}

export interface ReadOptions {
  /** The ttl of a command that gives neither `expires` nor `ttl`. */
  readonly defaultTtlMs: number
  /** Used when the event has no `time` (the record's timestamp). */
  readonly receivedAt: Date
}

function timeOf(value: string | undefined, what: string): Date | undefined {
  if (value === undefined) return undefined
  const ms = Date.parse(value)
  if (!Number.isFinite(ms))
    throw invalid(`${what} ${JSON.stringify(value.slice(0, 40))} is not an RFC 3339 time`)
  return new Date(ms)
}

/**
 * Reads a command event as anyone may have produced it to the commands topic: tenant, device and
 * subject (the name) are required; `expires` (a time) or `ttl` (milliseconds) bound its wait, capped
 * at 7 days. Throws EVENT_INVALID or IDENTIFIER_INVALID with the reason.
 */
export function readCommand(event: CloudEvent, options: ReadOptions): Command {
  const a = event.attributes
  if (a.type !== eventTypes.command)
    throw invalid(`type ${JSON.stringify(a.type)} is not ${eventTypes.command}`)
  const tenant = a.tenant
  const device = a.device
  if (tenant === undefined || device === undefined)
    throw invalid('a command needs the tenant and device attributes')
  assertTenantId(tenant)
  assertDeviceId(device)
  if (a.subject === undefined) throw invalid('a command needs its name as the subject')
  const name = assertCommandName(a.subject)
  const requestId = a['requestid'] === undefined ? undefined : assertRequestId(a['requestid'])
  const time = timeOf(a.time, 'time') ?? options.receivedAt
  let expiresAt = timeOf(a['expires'], 'expires')
  if (expiresAt === undefined) {
    const ttl = a['ttl'] === undefined ? options.defaultTtlMs : Number(a['ttl'])
    if (!Number.isInteger(ttl) || ttl < 0)
      throw invalid(`ttl ${JSON.stringify(a['ttl'])} is not whole milliseconds ≥ 0`)
    expiresAt = new Date(time.getTime() + ttl)
  }
  const latest = time.getTime() + MAX_COMMAND_TTL_MS
  if (expiresAt.getTime() > latest) expiresAt = new Date(latest)
  const fport = a['fport'] === undefined ? undefined : assertFport(Number(a['fport']))
  const downlink = a['downlink'] === undefined ? undefined : assertDownlink(a['downlink'])
  const origin = (['api', 'mqtt', 'kafka'] as const).find((p) => p === a.protocol) ?? 'kafka'
  return {
    id: a.id,
    tenant,
    device,
    name,
    payload: event.data ?? Buffer.alloc(0),
    contentType: a.datacontenttype,
    requestId,
    time,
    expiresAt,
    origin,
    fport,
    downlink,
    traceparent: a.traceparent,
  }
}

export interface StatusInput {
  readonly command: Pick<Command, 'id' | 'tenant' | 'device' | 'name' | 'requestId'>
  readonly status: CommandStatus
  /** Why it expired or failed, a short token (e.g. `device-unknown`, `not-connected`). */
  readonly reason?: string | undefined
  /** The protocol it was (or was to be) delivered over, else where it came from. */
  readonly protocol: Protocol
  /** The gateway it went through, when not the device itself. */
  readonly via?: string | undefined
  readonly time?: Date | undefined
}

/** io.tributary.command.status.v1: what became of a command, correlated by command id and request id. */
export function buildStatusEvent(input: StatusInput): CloudEvent {
  const { command } = input
  const data: Record<string, string> = { command: command.id, name: command.name, status: input.status }
  if (command.requestId !== undefined) data['requestId'] = command.requestId
  if (input.reason !== undefined) data['reason'] = input.reason
  if (input.via !== undefined) data['via'] = input.via
  const extensions: Record<string, string> = { commandid: command.id, status: input.status }
  if (command.requestId !== undefined) extensions['requestid'] = command.requestId
  return buildEvent({
    kind: 'command.status',
    tenant: command.tenant,
    device: command.device,
    protocol: input.protocol,
    subject: command.name,
    time: input.time,
    extensions,
    ...jsonData(data),
  })
}

export interface ResponseInput {
  readonly tenant: string
  readonly device: string
  /** The gateway that answered for the device. */
  readonly sender?: string | undefined
  readonly protocol: Protocol
  readonly requestId: string
  /** The device's status code (200-599). */
  readonly status: number
  readonly payload: Buffer
  readonly contentType?: string | undefined
  readonly credential?: string | undefined
  readonly time?: Date | undefined
  /** The trace the device answers within (the command's, when it carried it on). */
  readonly traceparent?: string | undefined
}

export function assertResponseStatus(status: number): number {
  if (!Number.isInteger(status) || status < RESPONSE_STATUS_MIN || status > RESPONSE_STATUS_MAX) {
    throw new TributaryError(
      'IDENTIFIER_INVALID',
      `response status must be an integer ${RESPONSE_STATUS_MIN}-${RESPONSE_STATUS_MAX}, not ${status}`,
    )
  }
  return status
}

/**
 * io.tributary.command.response.v1: a device's answer to a request-style command, as the input of
 * an adapter's ingest (it goes through the processors like any device event).
 */
export function responseEventInput(input: ResponseInput): EventInput {
  assertRequestId(input.requestId)
  assertResponseStatus(input.status)
  return {
    kind: 'command.response',
    tenant: input.tenant,
    device: input.device,
    sender: input.sender,
    protocol: input.protocol,
    data: input.payload,
    datacontenttype: input.contentType,
    credential: input.credential,
    time: input.time,
    traceparent: input.traceparent,
    extensions: { requestid: input.requestId, status: String(input.status) },
  }
}

/**
 * The response channel a device answers on: `command/res/<request id>/<status>` (MQTT topic, HTTP
 * and CoAP path after /v1/). Returns undefined for any other channel.
 */
export function parseResponseChannel(channel: string): { requestId: string; status: number } | undefined {
  const match = /^command\/res\/([^/]+)\/(\d{3})$/.exec(channel)
  if (match === null) return undefined
  const [, requestId, status] = match
  if (!REQUEST_ID_PATTERN.test(requestId!)) return undefined
  const code = Number(status)
  return code >= RESPONSE_STATUS_MIN && code <= RESPONSE_STATUS_MAX
    ? { requestId: requestId!, status: code }
    : undefined
}
