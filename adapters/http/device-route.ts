// `POST /v1/<channel>`: one device message from request to response. Checks run cheapest first and
// all before any side effect (STYLE.md 10): declared size, credentials, channel and query, the
// gateway rule, the body (read with its limit), its JSON, the rate; then the event is made durable
// and only then answered 202. A `?ct=` wait for a command comes after that, through awaitCommand.
import type { Context } from 'hono'
import type { Ingest } from '../adapter.ts'
import type { LastSeen, RateLimiter } from '../device-limits.ts'
import type { Logger } from '../../core/log.ts'
import type { DeviceAuthenticator } from '../../core/registry/auth.ts'
import type { Device } from '../../core/registry/model.ts'
import { declaredTooLarge } from './limits.ts'
import { requestSource } from './request.ts'
import {
  channelOf,
  checkJson,
  commandWait,
  contentTypeOf,
  credentialsOf,
  deviceMessage,
  isJsonType,
  onBehalfOf,
  traceparentOf,
} from './map.ts'
import type { ProblemKind } from './outcome.ts'
import { authRefusal, outcomeResponse, problemResponse } from './outcome.ts'

/** A command for the device, answered on a `?ct=` request (filled in by the commands issue). */
export interface PendingCommand {
  readonly id: string
  readonly name: string
  readonly payload: Buffer
  readonly contentType?: string | undefined
}

export interface CommandWait {
  readonly tenant: string
  /** The device the message was for (the gateway's child with `?as=`). */
  readonly device: string
  /** The authenticated caller. */
  readonly sender: string
  readonly seconds: number
  /** Aborted when the client goes away. */
  readonly signal: AbortSignal
}

/** Waits up to `seconds` for a command; undefined when none came (the response is then 202). */
export type AwaitCommand = (wait: CommandWait) => Promise<PendingCommand | undefined>

/** Until the commands issue lands there is never a command: `?ct=` is accepted and answered 202. */
export const noCommands: AwaitCommand = async () => undefined

export interface DeviceRouteDeps {
  readonly ingest: Pick<Ingest, 'publish'>
  readonly auth: Pick<DeviceAuthenticator, 'byPassword' | 'byToken'>
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  readonly limiter: RateLimiter
  readonly lastSeen: LastSeen
  readonly awaitCommand: AwaitCommand
  readonly maxBodyBytes: number
  readonly log: Logger
}

/** 200 with the command as the body; its name and id in headers (docs/http.md). */
export function commandResponse(command: PendingCommand): Response {
  const headers: Record<string, string> = {
    'tributary-command': command.name,
    'tributary-command-id': command.id,
    'cache-control': 'no-store',
  }
  if (command.contentType !== undefined) headers['content-type'] = command.contentType
  return new Response(new Uint8Array(command.payload), { status: 200, headers })
}

export function createDeviceRoute(deps: DeviceRouteDeps): (c: Context) => Promise<Response> {
  const { auth, limiter, maxBodyBytes } = deps

  return async function handle(c) {
    const instance = c.req.path
    const request = requestSource(c)
    const refuse = (kind: ProblemKind, detail: string, retryAfterMs?: number): Response => {
      deps.log.debug({ path: instance, kind, detail }, 'device request refused')
      return problemResponse(kind, detail, { instance, retryAfterMs })
    }
    if (declaredTooLarge(request.header('content-length'), maxBodyBytes)) {
      return refuse('too-large', `the body is larger than ${maxBodyBytes} bytes`)
    }

    const credentials = credentialsOf(request.header('authorization'))
    if (credentials.kind === 'none') {
      return refuse('unauthenticated', 'send Basic <device>@<tenant>:<password> or a Bearer device token')
    }
    if (credentials.kind === 'malformed')
      return refuse('unauthenticated', 'the Authorization header is malformed')
    const who =
      credentials.kind === 'token'
        ? await auth.byToken(credentials.token)
        : await auth.byPassword(credentials.username, credentials.password)
    if (!who.ok) {
      const refusal = authRefusal(who.reason)
      return refuse(refusal.kind, refusal.detail)
    }
    const { tenant, device: sender, credentialId } = who

    const channel = channelOf(instance)
    if (!channel.ok) return refuse(channel.reserved === true ? 'forbidden' : 'invalid', channel.detail)
    const as = onBehalfOf(c.req.query('as'))
    if (!as.ok) return refuse('invalid', as.detail)
    const ct = commandWait(c.req.query('ct'))
    if (!ct.ok) return refuse('invalid', ct.detail)
    const device = as.value === undefined || as.value === sender ? sender : as.value
    if (device !== sender) {
      const target = await deps.findDevice(tenant, device)
      if (target === undefined || !target.enabled || !target.gateways.includes(sender)) {
        return refuse(
          'forbidden',
          `device ${device} does not exist, is disabled or does not list ${sender} as a gateway`,
        )
      }
    }

    const read = await request.readBody(maxBodyBytes)
    if (!read.ok) return refuse('too-large', `the body is larger than ${maxBodyBytes} bytes`)
    const body = read.body
    const contentType = contentTypeOf(request.header('content-type'), body.length)
    if (!contentType.ok) return refuse('invalid', contentType.detail)
    if (isJsonType(contentType.value)) {
      const json = checkJson(body)
      if (!json.ok) return refuse('invalid', json.detail)
    }

    const rate = await limiter.take(tenant, device)
    if (!rate.allowed) return refuse('rate-limited', `over the message rate of ${device}`, rate.retryAfterMs)

    const time = new Date()
    const outcome = await deps.ingest.publish(
      deviceMessage({
        tenant,
        sender,
        device,
        channel: channel.value,
        body,
        contentType: contentType.value,
        traceparent: traceparentOf(request.header('traceparent')),
        credential: credentialId,
        time,
      }),
    )
    if (outcome.kind !== 'accepted') {
      deps.log.debug({ tenant, device, outcome }, 'device message not accepted')
      return outcomeResponse(outcome, { instance })
    }
    deps.lastSeen.seen(tenant, sender, time)
    if (device !== sender) deps.lastSeen.seen(tenant, device, time)

    if (ct.value !== undefined && ct.value > 0) {
      const command = await deps.awaitCommand({
        tenant,
        device,
        sender,
        seconds: ct.value,
        signal: c.req.raw.signal,
      })
      if (command !== undefined) return commandResponse(command)
    }
    return new Response(null, { status: 202 })
  }
}
