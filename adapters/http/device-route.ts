// `POST /v1/<channel>`: one device message from request to response. Checks run cheapest first and
// all before any side effect (STYLE.md 10): declared size, credentials, channel and query, the
// gateway rule, a long-poll slot for `?ct=`, the body (read with its limit), its JSON, the rate;
// then the event is made durable and only then answered: 202, or with `?ct=` the command that
// came while the request waited (command-route.ts). `POST /v1/command/res/<rid>/<status>` is a
// device's answer to a request-style command: a response event, then the waiting API call is told.
import type { Context } from 'hono'
import type { Ingest, Outcome } from '../adapter.ts'
import type { LastSeen, RateLimiter } from '../device-limits.ts'
import type { CommandOutlet } from '../../commands/outlet.ts'
import { responseEventInput } from '../../core/events/commands.ts'
import type { Logger } from '../../core/log.ts'
import type { DeviceAuthenticator } from '../../core/registry/auth.ts'
import type { Device } from '../../core/registry/model.ts'
import { authenticate, deviceFor } from './caller.ts'
import { holdForCommand, slotRefusal } from './command-route.ts'
import { declaredTooLarge } from './limits.ts'
import { requestSource } from './request.ts'
import {
  checkJson,
  commandWait,
  contentTypeOf,
  deviceMessage,
  isJsonType,
  onBehalfOf,
  targetOf,
  traceparentOf,
} from './map.ts'
import type { ProblemKind } from './outcome.ts'
import { outcomeResponse, problemResponse } from './outcome.ts'
import type { PollSlots } from '../poll-slots.ts'

export interface DeviceRouteDeps {
  readonly ingest: Pick<Ingest, 'publish' | 'event'>
  readonly auth: Pick<DeviceAuthenticator, 'byPassword' | 'byToken'>
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  readonly limiter: RateLimiter
  readonly lastSeen: LastSeen
  readonly commands: Pick<CommandOutlet, 'attach' | 'responded'>
  readonly polls: PollSlots
  readonly maxCommandWaitSeconds: number
  readonly maxBodyBytes: number
  readonly log: Logger
  readonly stopping?: AbortSignal | undefined
}

export function createDeviceRoute(deps: DeviceRouteDeps): (c: Context) => Promise<Response> {
  const { limiter, maxBodyBytes } = deps

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

    const who = await authenticate(deps.auth, request.header('authorization'))
    if (!who.ok) return refuse(who.kind, who.detail)
    const { tenant, sender, credentialId } = who.caller

    const target = targetOf(instance)
    if (!target.ok) return refuse(target.reserved === true ? 'forbidden' : 'invalid', target.detail)
    const as = onBehalfOf(c.req.query('as'))
    if (!as.ok) return refuse('invalid', as.detail)
    const ct = commandWait(c.req.query('ct'), deps.maxCommandWaitSeconds)
    if (!ct.ok) return refuse('invalid', ct.detail)
    const forDevice = await deviceFor(deps.findDevice, who.caller, as.value)
    if (!forDevice.ok) return refuse(forDevice.kind, forDevice.detail)
    const { device } = forDevice
    const seconds = ct.value ?? 0

    // Taken before anything is written: a refused request left no event behind and can be retried.
    const slot = seconds > 0 ? deps.polls.take(tenant, device) : undefined
    if (slot !== undefined && !slot.ok) {
      const refused = slotRefusal(slot)
      return refuse(refused.kind, refused.detail, refused.retryAfterMs)
    }
    try {
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
      if (!rate.allowed)
        return refuse('rate-limited', `over the message rate of ${device}`, rate.retryAfterMs)

      const time = new Date()
      const type = body.length === 0 ? undefined : contentType.value
      let outcome: Outcome
      if (target.value.kind === 'response') {
        outcome = await deps.ingest.event(
          responseEventInput({
            tenant,
            device,
            sender: device === sender ? undefined : sender,
            protocol: 'http',
            requestId: target.value.requestId,
            status: target.value.status,
            payload: body,
            contentType: type,
            credential: credentialId,
            time,
            traceparent: traceparentOf(request.header('traceparent')),
          }),
        )
      } else {
        outcome = await deps.ingest.publish(
          deviceMessage({
            tenant,
            sender,
            device,
            channel: target.value.channel,
            body,
            contentType: contentType.value,
            traceparent: traceparentOf(request.header('traceparent')),
            credential: credentialId,
            time,
          }),
        )
      }
      if (outcome.kind !== 'accepted') {
        deps.log.debug({ tenant, device, outcome }, 'device message not accepted')
        return outcomeResponse(outcome, { instance })
      }
      deps.lastSeen.seen(tenant, sender, time)
      if (device !== sender) deps.lastSeen.seen(tenant, device, time)
      if (target.value.kind === 'response') {
        deps.commands.responded({
          tenant,
          device,
          requestId: target.value.requestId,
          status: target.value.status,
          payload: body,
          contentType: type,
        })
      }

      if (seconds > 0) {
        const command = await holdForCommand(c, { tenant, device, sender, seconds }, deps)
        if (command !== undefined) return command
      }
      return new Response(null, { status: 202 })
    } finally {
      slot?.release()
    }
  }
}
