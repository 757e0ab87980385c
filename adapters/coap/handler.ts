// One CoAP request, from its options to its response: the checks that refuse it (path, query,
// Content-Format, size, credentials, gateway rule, a command-wait slot, JSON, rate), each before any
// side effect (STYLE.md 10), then the CloudEvent made durable on the bus before 2.04 goes out
// (STYLE.md 7). `?ct=` then waits for a command to answer with instead; `POST
// /v1/command/res/<rid>/<status>` is a device's response to a command; `GET /v1/commands` with
// Observe 0 is authenticated here and observed in observe.ts.
import type { Ingest, Outcome } from '../adapter.ts'
import { failureOutcome } from '../adapter.ts'
import type { LastSeen, RateLimiter } from '../device-limits.ts'
import type { CommandOutlet } from '../../commands/outlet.ts'
import { responseEventInput } from '../../core/events/commands.ts'
import type { Logger } from '../../core/log.ts'
import type { DeviceAuthenticator, DeviceAuthResult } from '../../core/registry/auth.ts'
import type { Device } from '../../core/registry/model.ts'
import type { Handover } from '../command-wait.ts'
import { deliverConfig, reportAppVersion, reportConfigApplied } from '../device-config.ts'
import type { RegistryService } from '../../core/registry/service.ts'
import { waitForCommand } from '../command-wait.ts'
import type { WireRequest } from './map.ts'
import {
  CONFIG_APPLIED_PATH,
  CONFIG_PATH,
  FILES_PATH,
  FILES_TOKEN_PATH,
  checkJson,
  contentTypeOf,
  deviceMessage,
  isCommandsPath,
  isPath,
  parseCredentials,
  parseQuery,
  targetOf,
} from './map.ts'
import { CODES, DEFAULT_RETRY_SECONDS, reply, replyFor, retrySeconds } from './outcome.ts'
import type { CoapReply } from './outcome.ts'
import type { PollSlots, Slot } from '../poll-slots.ts'
import { type FileRequestRefusal, type PublishedDeps, answerFileRequest } from '../../core/blobs/published.ts'
import {
  MAX_TOKEN_REQUEST_BYTES,
  type TokenRefusal,
  answerTokenRequest,
} from '../../core/blobs/token-request.ts'
import type { Uploads } from '../../core/blobs/uploads.ts'

export interface HandlerDeps {
  readonly ingest: Pick<Ingest, 'publish' | 'event'>
  readonly auth: Pick<DeviceAuthenticator, 'byPassword' | 'byToken'>
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  readonly limiter: RateLimiter
  readonly lastSeen: Pick<LastSeen, 'seen'>
  readonly maxPayloadBytes: number
  readonly log: Logger
  readonly now?: (() => Date) | undefined
  readonly commands: Pick<CommandOutlet, 'attach' | 'responded'>
  /** Bounds `?ct=` waits and observations together. */
  readonly slots: PollSlots
  /** The longest `?ct=` in seconds (TRIBUTARY_COMMAND_MAX_WAIT_MS). */
  readonly maxWaitSeconds: number
  /** How long a handed-over command may take to be acknowledged before it counts as gone. */
  readonly settleMs: number
  /** Aborted when the adapter stops: waits end at once, answered 2.04. */
  readonly stopping?: AbortSignal | undefined
  /** `GET /v1/config` and `POST /v1/config/applied` (docs/config.md). */
  readonly config: Pick<
    RegistryService,
    'getEffectiveConfig' | 'configDelivered' | 'configApplied' | 'reportAppVersion'
  >
  /**
   * `POST /v1/files/token` (docs/files.md): the uploads, and the device HTTP listener the body goes
   * to (undefined: not listening). Without it the route is answered 5.03.
   */
  readonly files?:
    | { readonly uploads: Pick<Uploads, 'issue' | 'presign'>; readonly uploadBase: () => string | undefined }
    | undefined
  /** `GET /v1/files[/<fileId>]` (docs/files.md#files-for-devices); without it answered 5.03. */
  readonly published?: PublishedDeps | undefined
}

/** A token request refused, as CoAP says it (RFC 7252 §5.9.2, RFC 8132 4.09, RFC 8516 4.29). */
function tokenRefusal(refusal: TokenRefusal): CoapReply {
  switch (refusal.status) {
    case 400:
      return reply(CODES.badRequest, refusal.detail)
    case 409:
      return reply(CODES.conflict, refusal.detail)
    case 413:
      return { code: CODES.tooLarge, detail: refusal.detail, size1: MAX_TOKEN_REQUEST_BYTES }
    case 429:
      return {
        code: CODES.tooManyRequests,
        detail: refusal.detail,
        maxAge: retrySeconds(refusal.retryAfterMs, 1),
      }
  }
}

/** A published-file request refused, as CoAP says it. */
function fileRefusal(refusal: FileRequestRefusal): CoapReply {
  switch (refusal.status) {
    case 400:
      return reply(CODES.badRequest, refusal.detail)
    case 404:
      return reply(CODES.notFound, refusal.detail)
    case 429:
      return {
        code: CODES.tooManyRequests,
        detail: refusal.detail,
        maxAge: retrySeconds(refusal.retryAfterMs, 1),
      }
    case 503:
      return { code: CODES.unavailable, detail: refusal.detail, maxAge: DEFAULT_RETRY_SECONDS }
  }
}

/** Content-Format 50, application/json: the configuration and the report. */
const JSON_FORMAT = 50

/**
 * The ETag of a configuration: an ETag option holds 1-8 bytes (RFC 7252 §5.10.6), so it is the first
 * 8 of the 16 bytes the id encodes (base64url), not the 22 characters of the id itself.
 */
export const configEtag = (configId: string): Buffer => Buffer.from(configId, 'base64url').subarray(0, 8)

/** `?ct=` got a command: the adapter answers 2.05 with it and settles the handover. */
export interface CommandAnswer {
  readonly handover: Handover
  /** The authenticated device, to tell a gateway which of its devices the command is for. */
  readonly receiver: string
}

/** `GET /v1/commands` with Observe 0, authenticated and within its slot: observe.ts takes it from here. */
export interface ObserveAnswer {
  readonly observe: {
    readonly tenant: string
    /** The device commands are for (the `?as=` device of a gateway). */
    readonly device: string
    readonly receiver: string
    /** Gives the slot back when the observation ends. */
    readonly release: () => void
  }
}

export interface ConfigObserver {
  readonly tenant: string
  /** The device whose configuration is observed (a gateway's `?as=` device). */
  readonly device: string
  /** The authenticated device. */
  readonly sender: string
  readonly credentialId: string
  /** Gives the observation's slot back. */
  readonly release: () => void
}

/** `GET /v1/config` with Observe 0, authenticated and within its slot: config-observe.ts takes it from here. */
export interface ConfigObserveAnswer {
  readonly observeConfig: ConfigObserver
}

export type Answer = CoapReply | CommandAnswer | ObserveAnswer | ConfigObserveAnswer

const rejected = (reason: 'invalid' | 'unauthenticated' | 'forbidden', detail: string): Outcome => ({
  kind: 'rejected',
  reason,
  detail,
})

export type RequestHandler = (request: WireRequest) => Promise<Answer>

export const isReply = (answer: Answer): answer is CoapReply => 'code' in answer

function slotReply(slot: Slot & { ok: false }): CoapReply {
  return slot.scope === 'all'
    ? {
        code: CODES.unavailable,
        detail: 'too many requests wait for commands',
        maxAge: DEFAULT_RETRY_SECONDS,
      }
    : {
        code: CODES.tooManyRequests,
        detail: `too many requests of this ${slot.scope} wait for commands`,
        maxAge: DEFAULT_RETRY_SECONDS,
      }
}

/**
 * Shares one verification among identical credentials checked at the same time: a device that
 * sends a burst before its password is cached would otherwise pay one scrypt per request. An entry
 * lives only while its verification runs, no longer than the request holding the same secret.
 */
export function createSingleFlight<T>(): (key: string, work: () => Promise<T>) => Promise<T> {
  const inFlight = new Map<string, Promise<T>>()
  return (key, work) => {
    const running = inFlight.get(key)
    if (running !== undefined) return running
    const started = work().finally(() => inFlight.delete(key))
    inFlight.set(key, started)
    return started
  }
}

export function createRequestHandler(deps: HandlerDeps): RequestHandler {
  const now = deps.now ?? (() => new Date())
  const answer = (outcome: Outcome): CoapReply => replyFor(outcome, deps.maxPayloadBytes)
  const once = createSingleFlight<DeviceAuthResult>()

  async function authenticate(
    request: WireRequest,
    token: string | undefined,
  ): Promise<DeviceAuthResult | CoapReply> {
    const credentials = parseCredentials(request.credentials, token)
    switch (credentials.kind) {
      case 'missing':
        return answer(rejected('unauthenticated', 'credentials are required: option 4209 or ?token='))
      case 'malformed':
        return answer(rejected('unauthenticated', credentials.detail))
      case 'password':
        return once(`p\0${credentials.username}\0${credentials.password}`, () =>
          deps.auth.byPassword(credentials.username, credentials.password),
        )
      case 'token':
        return once(`t\0${credentials.token}`, () => deps.auth.byToken(credentials.token))
    }
  }

  /** The authenticated caller and the device the request is for (itself, or a device it is a gateway for). */
  async function identify(
    request: WireRequest,
    token: string | undefined,
    as: string | undefined,
  ): Promise<{ tenant: string; sender: string; device: string; credentialId: string } | CoapReply> {
    const auth = await authenticate(request, token)
    if ('code' in auth) return auth
    if (!auth.ok) {
      // Disabled devices and a tenant policy that refuses the method are known, just not allowed.
      const forbidden = auth.reason === 'disabled' || auth.reason === 'method-not-allowed'
      return answer(
        forbidden
          ? rejected(
              'forbidden',
              auth.reason === 'disabled'
                ? 'the device is disabled'
                : 'the tenant does not allow this authentication method',
            )
          : rejected('unauthenticated', 'the credentials are not valid'),
      )
    }
    const { tenant, device: sender, credentialId } = auth
    const device = as ?? sender
    if (device !== sender) {
      const target = await deps.findDevice(tenant, device)
      if (target === undefined || !target.enabled || !target.gateways.includes(sender)) {
        return answer(rejected('forbidden', `device ${device} does not list ${sender} as a gateway`))
      }
    }
    return { tenant, sender, device, credentialId }
  }

  /** `GET /v1/commands` with Observe 0: who observes, for which device, within the bounds. */
  async function observe(request: WireRequest): Promise<Answer> {
    const query = parseQuery(request.uriQuery)
    if (!query.ok) return reply(CODES.badRequest, query.detail)
    const who = await identify(request, query.query.token, query.query.as)
    if ('code' in who) return who
    const rate = await deps.limiter.take(who.tenant, who.device)
    if (!rate.allowed) {
      return answer({
        kind: 'rejected',
        reason: 'rate-limited',
        detail: `over the publish rate of ${who.device}`,
        retryAfterMs: rate.retryAfterMs,
      })
    }
    const slot = deps.slots.take(who.tenant, who.device)
    if (!slot.ok) return slotReply(slot)
    deps.lastSeen.seen(who.tenant, who.sender)
    if (who.device !== who.sender) deps.lastSeen.seen(who.tenant, who.device)
    return {
      observe: {
        tenant: who.tenant,
        device: who.device,
        receiver: who.sender,
        release: () => slot.release(),
      },
    }
  }

  /** Authenticated, for its device, within its rate: what both configuration requests check first. */
  async function configCaller(
    request: WireRequest,
    extra: readonly string[] = [],
  ): Promise<
    | {
        tenant: string
        sender: string
        device: string
        credentialId: string
        appVersion?: string | undefined
      }
    | CoapReply
  > {
    const query = parseQuery(request.uriQuery, 0, extra)
    if (!query.ok) return reply(CODES.badRequest, query.detail)
    const who = await identify(request, query.query.token, query.query.as)
    if ('code' in who) return who
    const rate = await deps.limiter.take(who.tenant, who.device)
    if (!rate.allowed) {
      return answer({
        kind: 'rejected',
        reason: 'rate-limited',
        detail: `over the publish rate of ${who.device}`,
        retryAfterMs: rate.retryAfterMs,
      })
    }
    return { ...who, appVersion: query.query.extra['appVersion'] }
  }

  /**
   * `GET /v1/config`: 2.05 with `{configId, config}` and the id as its ETag once its
   * `config.delivered` event is durable, or 2.03 Valid (no payload) when an ETag option names the id.
   * With Observe 0 the observation is handed to config-observe.ts.
   */
  async function getConfig(request: WireRequest, time: Date): Promise<Answer> {
    const who = await configCaller(request, ['appVersion'])
    if ('code' in who) return who
    if (who.appVersion !== undefined) {
      const refused = await reportAppVersion(deps.config, who, who.appVersion)
      if (refused !== undefined) return answer(refused)
    }
    if (request.observe === 0) {
      // Observations share the bound of command waits: per device, per tenant and per listener.
      const slot = deps.slots.take(who.tenant, who.device)
      if (!slot.ok) return slotReply(slot)
      deps.lastSeen.seen(who.tenant, who.sender)
      const { tenant, device, sender, credentialId } = who
      return { observeConfig: { tenant, device, sender, credentialId, release: () => slot.release() } }
    }
    const { tenant, sender, device } = who
    deps.lastSeen.seen(tenant, sender)
    const effective = await deps.config.getEffectiveConfig(tenant, device)
    const etag = configEtag(effective.configId)
    if ((request.etags ?? []).some((tag) => tag.equals(etag))) return { code: CODES.valid, etag }
    const outcome = await deliverConfig(
      deps,
      { tenant, device, sender, protocol: 'coap', time },
      effective.configId,
    )
    if (outcome.kind !== 'accepted') return answer(outcome)
    const payload = Buffer.from(
      JSON.stringify({ configId: effective.configId, config: effective.config }),
      'utf8',
    )
    return { code: CODES.content, etag, body: { payload, contentFormat: JSON_FORMAT } }
  }

  /** `POST /v1/config/applied`: the report recorded and published as `config.applied` (2.04), 4.00 if refused. */
  async function applied(request: WireRequest, time: Date): Promise<Answer> {
    const type = contentTypeOf(request.contentFormat)
    if (!type.ok) return reply(CODES.unsupportedFormat, type.detail)
    if (type.type !== 'application/json') {
      return reply(CODES.unsupportedFormat, 'a report is JSON: Content-Format 50')
    }
    if (request.payload.length > deps.maxPayloadBytes) {
      return answer({
        kind: 'rejected',
        reason: 'too-large',
        detail: `the body of ${request.payload.length} bytes exceeds ${deps.maxPayloadBytes}`,
      })
    }
    const who = await configCaller(request)
    if ('code' in who) return who
    const { tenant, sender, device, credentialId } = who
    let body: unknown
    try {
      body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(request.payload))
    } catch {
      return reply(CODES.badRequest, 'the body must be UTF-8 JSON: {"configId": "...", "statusCode": 200}')
    }
    const outcome = await reportConfigApplied(
      deps,
      { tenant, device, sender, protocol: 'coap', credential: credentialId, time },
      body,
    )
    if (outcome.kind === 'accepted') deps.lastSeen.seen(tenant, sender)
    return answer(outcome)
  }

  /** `POST /v1/files/token`: 2.01 with {fileId, token, expiresAt, uploadUrl}, the answer HTTP gives. */
  async function fileToken(request: WireRequest): Promise<Answer> {
    const type = contentTypeOf(request.contentFormat)
    if (!type.ok) return reply(CODES.unsupportedFormat, type.detail)
    if (type.type !== undefined && type.type !== 'application/json') {
      return reply(CODES.unsupportedFormat, 'a token request is JSON: Content-Format 50')
    }
    if (request.payload.length > MAX_TOKEN_REQUEST_BYTES) {
      return tokenRefusal({
        status: 413,
        code: 'REQUEST_TOO_LARGE',
        detail: `a token request has at most ${MAX_TOKEN_REQUEST_BYTES} bytes`,
      })
    }
    const query = parseQuery(request.uriQuery)
    if (!query.ok) return reply(CODES.badRequest, query.detail)
    const who = await identify(request, query.query.token, query.query.as)
    if ('code' in who) return who
    const base = deps.files?.uploadBase()
    if (deps.files === undefined || base === undefined) {
      return {
        code: CODES.unavailable,
        detail: 'file uploads need the device HTTP listener',
        maxAge: DEFAULT_RETRY_SECONDS,
      }
    }
    deps.lastSeen.seen(who.tenant, who.sender)
    const answered = await answerTokenRequest(deps.files.uploads, {
      tenant: who.tenant,
      device: who.device,
      payload: request.payload,
      mode: 'token',
      base,
    })
    if (!answered.ok) return tokenRefusal(answered.refusal)
    const payload = Buffer.from(JSON.stringify(answered.body), 'utf8')
    return { code: CODES.created, body: { payload, contentFormat: JSON_FORMAT } }
  }

  /**
   * `GET /v1/files` (`?folder=&after=&limit=`) lists the files published to the device, `GET
   * /v1/files/<fileId>` (`?expiresIn=`) answers one with a short-lived download URL: 2.05 with the
   * body HTTP gives (core/blobs/published.ts), 4.04 for a file that is not the device's to download.
   */
  async function publishedFile(request: WireRequest, fileId: string | undefined): Promise<Answer> {
    const query = parseQuery(
      request.uriQuery,
      0,
      fileId === undefined ? ['folder', 'after', 'limit'] : ['expiresIn'],
    )
    if (!query.ok) return reply(CODES.badRequest, query.detail)
    const who = await identify(request, query.query.token, query.query.as)
    if ('code' in who) return who
    if (deps.published === undefined) {
      return {
        code: CODES.unavailable,
        detail: 'published files are not served here',
        maxAge: DEFAULT_RETRY_SECONDS,
      }
    }
    deps.lastSeen.seen(who.tenant, who.sender)
    const answered = await answerFileRequest(deps.published, {
      tenant: who.tenant,
      device: who.device,
      kind: fileId === undefined ? 'list' : 'download',
      fields: fileId === undefined ? { ...query.query.extra } : { ...query.query.extra, fileId },
      base: () => deps.files?.uploadBase(),
    })
    if (!answered.ok) return fileRefusal(answered.refusal)
    const payload = Buffer.from(JSON.stringify(answered.body), 'utf8')
    return { code: CODES.content, body: { payload, contentFormat: JSON_FORMAT } }
  }

  async function handle(request: WireRequest): Promise<Answer> {
    const time = now()
    if (request.method === 'GET' && isPath(request.uriPath.slice(0, 2), FILES_PATH)) {
      if (request.uriPath.length === 2) return publishedFile(request, undefined)
      if (request.uriPath.length === 3) return publishedFile(request, request.uriPath[2]!.toString('utf8'))
    }
    if (request.method === 'POST' && isPath(request.uriPath, FILES_TOKEN_PATH)) return fileToken(request)
    if (request.method === 'GET' && isCommandsPath(request.uriPath) && request.observe === 0) {
      return observe(request)
    }
    if (request.method === 'GET' && isPath(request.uriPath, CONFIG_PATH)) return getConfig(request, time)
    if (request.method === 'POST' && isPath(request.uriPath, CONFIG_APPLIED_PATH))
      return applied(request, time)
    if (request.method !== 'POST') {
      return reply(
        CODES.methodNotAllowed,
        'devices POST to /v1/<channel>, observe GET /v1/commands and GET /v1/config, and GET /v1/files',
      )
    }
    const path = targetOf(request.uriPath)
    if (!path.ok) {
      const code =
        path.notFound === true ? CODES.notFound : path.reserved === true ? CODES.forbidden : CODES.badRequest
      return reply(code, path.detail)
    }
    const { target } = path
    const query = parseQuery(request.uriQuery, deps.maxWaitSeconds)
    if (!query.ok) return reply(CODES.badRequest, query.detail)
    const type = contentTypeOf(request.contentFormat)
    if (!type.ok) return reply(CODES.unsupportedFormat, type.detail)
    if (request.payload.length > deps.maxPayloadBytes) {
      return answer({
        kind: 'rejected',
        reason: 'too-large',
        detail: `the body of ${request.payload.length} bytes exceeds ${deps.maxPayloadBytes}`,
      })
    }

    const who = await identify(request, query.query.token, query.query.as)
    if ('code' in who) return who
    const { tenant, sender, device, credentialId } = who
    const json = checkJson(type.type, request.payload)
    if (json !== undefined) return answer(rejected('invalid', json.detail))
    const seconds = query.query.ct ?? 0
    // Taken before anything is written: a refused request left no event behind.
    const slot = seconds > 0 ? deps.slots.take(tenant, device) : undefined
    if (slot !== undefined && !slot.ok) return slotReply(slot)
    try {
      const rate = await deps.limiter.take(tenant, device)
      if (!rate.allowed) {
        return answer({
          kind: 'rejected',
          reason: 'rate-limited',
          detail: `over the publish rate of ${device}`,
          retryAfterMs: rate.retryAfterMs,
        })
      }
      // Stateless protocols have no connect: an authenticated request is what "seen" means here.
      deps.lastSeen.seen(tenant, sender)
      if (device !== sender) deps.lastSeen.seen(tenant, device)
      const contentType = request.payload.length === 0 ? undefined : type.type
      const outcome =
        target.kind === 'telemetry'
          ? await deps.ingest.publish(
              deviceMessage({
                tenant,
                sender,
                device,
                channel: target.channel,
                payload: request.payload,
                contentType: type.type,
                credential: credentialId,
                time,
              }),
            )
          : await deps.ingest.event(
              responseEventInput({
                tenant,
                device,
                sender: device === sender ? undefined : sender,
                protocol: 'coap',
                requestId: target.requestId,
                status: target.status,
                payload: request.payload,
                contentType,
                credential: credentialId,
                time,
              }),
            )
      if (outcome.kind !== 'accepted') return answer(outcome)
      if (target.kind === 'response') {
        const { requestId, status } = target
        deps.commands.responded({ tenant, device, requestId, status, payload: request.payload, contentType })
      }
      if (seconds === 0) return answer(outcome)
      const handover = await waitForCommand({
        commands: deps.commands,
        protocol: 'coap',
        tenant,
        device,
        waitMs: seconds * 1000,
        signal: deps.stopping,
        settleMs: deps.settleMs,
      })
      return handover === undefined ? answer(outcome) : { handover, receiver: sender }
    } finally {
      if (slot?.ok === true) slot.release()
    }
  }

  return async (request) => {
    try {
      return await handle(request)
    } catch (err) {
      // The registry or the cluster state cannot answer now: 5.03, and the device tries again later.
      const unavailable = failureOutcome(err)
      if (unavailable !== undefined) {
        deps.log.warn({ err }, 'CoAP request not served now')
        return {
          code: CODES.unavailable,
          detail: 'the service is unavailable',
          maxAge: retrySeconds(unavailable.retryAfterMs),
        }
      }
      deps.log.error({ err }, 'CoAP request failed')
      return reply(CODES.internal, 'an unexpected error occurred')
    }
  }
}
