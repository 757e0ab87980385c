// One CoAP request, from its options to its response: the checks that refuse it (path, query,
// Content-Format, size, credentials, gateway rule, JSON, rate), each before any side effect
// (STYLE.md 10), then the CloudEvent made durable on the bus before 2.04 goes out (STYLE.md 7).
import type { Ingest, Outcome } from '../adapter.ts'
import type { LastSeen, RateLimiter } from '../device-limits.ts'
import type { Logger } from '../../core/log.ts'
import type { DeviceAuthenticator, DeviceAuthResult } from '../../core/registry/auth.ts'
import type { Device } from '../../core/registry/model.ts'
import type { WireRequest } from './map.ts'
import { checkJson, contentTypeOf, deviceMessage, parseCredentials, parsePath, parseQuery } from './map.ts'
import { CODES, DEFAULT_RETRY_SECONDS, reply, replyFor } from './outcome.ts'
import type { CoapReply } from './outcome.ts'

export interface HandlerDeps {
  readonly ingest: Pick<Ingest, 'publish'>
  readonly auth: Pick<DeviceAuthenticator, 'byPassword' | 'byToken'>
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  readonly limiter: RateLimiter
  readonly lastSeen: Pick<LastSeen, 'seen'>
  readonly maxPayloadBytes: number
  readonly log: Logger
  readonly now?: (() => Date) | undefined
}

const rejected = (reason: 'invalid' | 'unauthenticated' | 'forbidden', detail: string): Outcome => ({
  kind: 'rejected',
  reason,
  detail,
})

export type RequestHandler = (request: WireRequest) => Promise<CoapReply>

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

  async function handle(request: WireRequest): Promise<CoapReply> {
    const time = now()
    if (request.method !== 'POST') return reply(CODES.methodNotAllowed, 'devices POST to /v1/<channel>')
    const path = parsePath(request.uriPath)
    if (!path.ok) return reply(path.notFound === true ? CODES.notFound : CODES.badRequest, path.detail)
    const query = parseQuery(request.uriQuery)
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

    const auth = await authenticate(request, query.query.token)
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
    const device = query.query.as ?? sender
    if (device !== sender) {
      const target = await deps.findDevice(tenant, device)
      if (target === undefined || !target.enabled || !target.gateways.includes(sender)) {
        return answer(rejected('forbidden', `device ${device} does not list ${sender} as a gateway`))
      }
    }
    const json = checkJson(type.type, request.payload)
    if (json !== undefined) return answer(rejected('invalid', json.detail))
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
    const message = deviceMessage({
      tenant,
      sender,
      device,
      channel: path.channel,
      payload: request.payload,
      contentType: type.type,
      credential: credentialId,
      time,
    })
    return answer(await deps.ingest.publish(message))
  }

  return async (request) => {
    try {
      return await handle(request)
    } catch (err) {
      // The registry or the cluster state failed: the device may try again later.
      deps.log.warn({ err }, 'CoAP request failed')
      return { code: CODES.unavailable, detail: 'the service is unavailable', maxAge: DEFAULT_RETRY_SECONDS }
    }
  }
}
