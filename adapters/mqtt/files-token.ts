// Upload tokens over MQTT (docs/files.md, Kaa BCX): a device publishes `files/token/req/<request id>`
// with the declaration HTTP's `POST /v1/files/token` takes and is answered on
// `files/token/res/<request id>` with {token, expiresAt, uploadUrl} (the body then goes to the device
// HTTP listener), or {statusCode, reasonPhrase} for a declaration refused. `files/presign/req/<id>`
// asks for a presigned S3 PUT as `POST /v1/files/presign` does, answered on `files/presign/res/<id>`.
// A gateway asks for a device D that lists it on `gw/<D>/files/<kind>/req/<id>`, answered on
// `gw/<D>/files/<kind>/res/<id>`.
// Files published to the device (core/blobs/published.ts): `files/list/req/<id>` with {folder?, after?,
// limit?} is answered with a page {items, next}, `files/download/req/<id>` with {fileId, expiresIn?}
// with the file and a short-lived download URL, on `files/{list,download}/res/<id>`.
// As for configurations (config-push.ts), each answer is written to the asking connection only.
import { type FileRequestKind, type PublishedDeps, answerFileRequest } from '../../core/blobs/published.ts'
import {
  MAX_TOKEN_REQUEST_BYTES,
  type TokenMode,
  answerTokenRequest,
} from '../../core/blobs/token-request.ts'
import type { Uploads } from '../../core/blobs/uploads.ts'
import { REQUEST_ID_PATTERN } from '../../core/events/commands.ts'
import { isDeviceId } from '../../core/events/ids.ts'
import type { Logger } from '../../core/log.ts'
import type { Device } from '../../core/registry/model.ts'
import { topicMatches } from './command-topics.ts'
import type { Connection, Session } from './connection.ts'
import { grantedQos } from './link.ts'
import type { DeviceLink } from './link.ts'
import type { PublishResult } from './publish.ts'

const REQUEST = /^(?:gw\/([^/]+)\/)?files\/(token|presign|list|download)\/req\/([^/]*)$/
const RESPONSE_FILTER = /^(?:gw\/([^/]+)\/)?files\/(?:token|presign|list|download)\/res\/(\+|#|[^/+#]+)$/

/** What a `files/<kind>/req/<id>` asks for: an upload token or URL, or a published file. */
export type FilesRequestKind = TokenMode | FileRequestKind

const KINDS: ReadonlySet<string> = new Set<FilesRequestKind>(['token', 'presign', 'list', 'download'])

export interface TokenRequestTopic {
  /** The device the token is for when a gateway asks for it, else undefined (the sender). */
  readonly device: string | undefined
  readonly requestId: string
  /** `token`, `presign`, `list` or `download` (files/<kind>/…). */
  readonly mode: FilesRequestKind
}

/** `[gw/<D>/]files/{token,presign,list,download}/req/<request id>`, or undefined for any other topic. */
export function tokenRequestOf(topic: string): TokenRequestTopic | undefined {
  const match = REQUEST.exec(topic)
  const kind = match?.[2] ?? ''
  if (match === null || !KINDS.has(kind)) return undefined
  return { device: match[1], requestId: match[3] ?? '', mode: kind as FilesRequestKind }
}

/** Whether a SUBSCRIBE filter is this module's: `[gw/<D>/]files/…`. */
export function ownsFilesFilter(filter: string): boolean {
  return filter.startsWith('files/') || /^gw\/[^/]+\/files(?:\/|$)/.test(filter)
}

/** The response filter's device (undefined: the sender's own) and request id, or null if not one. */
export function responseFilterOf(filter: string): { device: string | undefined; id: string } | null {
  const match = RESPONSE_FILTER.exec(filter)
  if (match === null) return null
  const id = match[2] ?? ''
  if (id !== '+' && id !== '#' && !REQUEST_ID_PATTERN.test(id)) return null
  return { device: match[1], id }
}

/** The answer to a refused declaration, as in a Kaa status (HTTP status code and phrase). */
export interface TokenError {
  readonly statusCode: number
  readonly reasonPhrase: string
  /** 429: milliseconds until the device may ask again. */
  readonly retryAfterMs?: number
}

export interface FilesTokenDeps {
  /** Without uploads (no device HTTP listener) every request is answered 503. */
  readonly uploads: Pick<Uploads, 'issue' | 'presign'> | undefined
  /** Files published to devices; without it `files/{list,download}` requests are answered 503. */
  readonly published: PublishedDeps | undefined
  /** The device HTTP listener as the device reaches it (`uploadUrl`, `completeUrl`); undefined: not listening. */
  readonly uploadBase: (conn: Connection) => string | undefined
  /** Cached device rows: a gateway asks for devices that list it. */
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  readonly refused: (conn: Connection, reason: string, detail: string) => void
  readonly log: Logger
}

const TOO_LARGE = `a files request has at most ${MAX_TOKEN_REQUEST_BYTES} bytes`

/** A list or download request's JSON object (empty: `{}`), or why it is not one. */
function readFields(payload: Buffer): Record<string, unknown> | string {
  if (payload.length > MAX_TOKEN_REQUEST_BYTES) return TOO_LARGE
  if (payload.length === 0) return {}
  try {
    const value: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload))
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>
  } catch {
    // Answered below.
  }
  return 'send a JSON object'
}

const qosFor = (link: DeviceLink, topic: string): 0 | 1 | undefined =>
  grantedQos(link, (filter) => responseFilterOf(filter) !== null && topicMatches(filter, topic))

export function createFilesToken(deps: FilesTokenDeps) {
  const { log } = deps

  async function serves(session: Session, device: string): Promise<boolean> {
    if (device === session.device) return true
    if (!isDeviceId(device)) return false
    const served = await deps.findDevice(session.tenant, device)
    return served !== undefined && served.enabled && served.gateways.includes(session.device)
  }

  async function writeTo(link: DeviceLink, topic: string, body: unknown, qos: 0 | 1): Promise<void> {
    const payload = Buffer.from(JSON.stringify(body))
    await link.publish({ topic, payload, qos, properties: { contentType: 'application/json' } })
  }

  async function answer(
    conn: Connection,
    session: Session,
    device: string,
    topic: string,
    mode: FilesRequestKind,
    payload: Buffer,
  ): Promise<void> {
    const link = conn.link
    if (link === undefined || conn.closed) return
    const qos = qosFor(link, topic)
    // Nobody would read the token: none is issued.
    if (qos === undefined) return
    const refuse = (statusCode: number, reasonPhrase: string, retryAfterMs?: number) => {
      log.debug({ tenant: session.tenant, device, statusCode, reasonPhrase }, 'file token refused')
      const error: TokenError = {
        statusCode,
        reasonPhrase,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      }
      return writeTo(link, topic, error, qos)
    }
    if (mode === 'list' || mode === 'download') {
      const fields = readFields(payload)
      if (typeof fields === 'string') return refuse(fields === TOO_LARGE ? 413 : 400, fields)
      if (deps.published === undefined) return refuse(503, 'published files are not served here')
      const answered = await answerFileRequest(deps.published, {
        tenant: session.tenant,
        device,
        kind: mode,
        fields,
        base: () => deps.uploadBase(conn),
      })
      if (!answered.ok) {
        const { status, detail, retryAfterMs } = answered.refusal
        return refuse(status, detail, retryAfterMs)
      }
      return writeTo(link, topic, answered.body, qos)
    }
    const base = deps.uploadBase(conn)
    if (deps.uploads === undefined || base === undefined)
      return refuse(503, 'file uploads need the device HTTP listener')
    const answered = await answerTokenRequest(deps.uploads, {
      tenant: session.tenant,
      device,
      payload,
      mode,
      base,
    })
    if (!answered.ok) {
      const { status, detail, retryAfterMs } = answered.refusal
      return refuse(status, detail, retryAfterMs)
    }
    await writeTo(link, topic, answered.body, qos)
  }

  return {
    /** `[gw/<D>/]files/{token,presign}/res/<request id | + | #>` (QoS capped at 1); null for any other `files` filter. */
    async authorizeSubscribe(session: Session, topic: string, qos: number): Promise<0 | 1 | null> {
      const filter = responseFilterOf(topic)
      if (filter === null) return null
      if (
        filter.device !== undefined &&
        (filter.device === session.device || !(await serves(session, filter.device)))
      )
        return null
      return Math.min(qos, 1) as 0 | 1
    },

    /**
     * A token request: PUBACK at once, the answer follows on the response topic. A malformed request
     * id, or a gateway topic for a device that does not list the sender, ends the connection.
     */
    async request(
      conn: Connection,
      session: Session,
      target: TokenRequestTopic,
      payload: Buffer,
    ): Promise<PublishResult> {
      if (!REQUEST_ID_PATTERN.test(target.requestId)) {
        deps.refused(
          conn,
          'invalid-files-request',
          'files/token/req/<request id>: 1-64 of A-Z a-z 0-9 . _ ~ -',
        )
        return { action: 'disconnect', reason: 'invalid-files-request' }
      }
      const device = target.device ?? session.device
      if (target.device !== undefined && (device === session.device || !(await serves(session, device)))) {
        deps.refused(
          conn,
          'gateway-not-allowed',
          `device ${device.slice(0, 100)} does not list ${session.device} as a gateway`,
        )
        return { action: 'disconnect', reason: 'gateway-not-allowed' }
      }
      const topic = `${target.device === undefined ? '' : `gw/${device}/`}files/${target.mode}/res/${target.requestId}`
      void answer(conn, session, device, topic, target.mode, payload).catch((err: unknown) =>
        log.warn({ err, tenant: session.tenant, device }, 'file token request failed'),
      )
      return { action: 'ack' }
    },
  }
}

export type FilesToken = ReturnType<typeof createFilesToken>
