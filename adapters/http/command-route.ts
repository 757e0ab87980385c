// Commands over HTTP long polls: a request that asks for one (`?ct=` on `POST /v1/<channel>`, or
// `GET /v1/command`) holds a poll slot, attaches a one-shot sink for its device and waits. A command
// is answered 200 with its payload and Tributary-* headers, and counts as delivered once Node has
// handed the whole response to the socket; a client gone before that leaves it queued (`gone`).
import type { ServerResponse } from 'node:http'
import type { Context } from 'hono'
import type { LastSeen, RateLimiter } from '../device-limits.ts'
import type { CommandOutlet, DeviceCommand } from '../../commands/outlet.ts'
import type { Logger } from '../../core/log.ts'
import type { DeviceAuthenticator } from '../../core/registry/auth.ts'
import type { Device } from '../../core/registry/model.ts'
import { authenticate, deviceFor } from './caller.ts'
import type { Handover } from '../command-wait.ts'
import { DELIVERED, GONE, waitForCommand } from '../command-wait.ts'
import { commandWait, onBehalfOf } from './map.ts'
import type { ProblemKind } from './outcome.ts'
import { problemResponse } from './outcome.ts'
import type { PollSlots, Slot } from '../poll-slots.ts'
import { requestSource } from './request.ts'

/** How long a handed-over command may take to reach the socket before it counts as not delivered. */
export const SETTLE_MS = 30_000
/** Retry-After for a device over its share of long polls. */
const POLL_RETRY_MS = 5_000

export const COMMAND_PATH = '/v1/command'

/** 200 with the command as the body; name, ids and (for a gateway's child) the device in headers. */
export function commandResponse(command: DeviceCommand, sender: string): Response {
  const headers: Record<string, string> = {
    'tributary-command': command.name,
    'tributary-command-id': command.id,
    'cache-control': 'no-store',
  }
  if (command.requestId !== undefined) headers['tributary-request-id'] = command.requestId
  if (command.device !== sender) headers['tributary-device'] = command.device
  if (command.contentType !== undefined) headers['content-type'] = command.contentType
  // The command's trace reaches the device, which may answer within it (POST .../command/res with traceparent).
  if (command.traceparent !== undefined) headers['traceparent'] = command.traceparent
  return new Response(new Uint8Array(command.payload), { status: 200, headers })
}

/** The refusal when no poll slot is free: 503 when the listener is full, 429 for one tenant or device. */
export function slotRefusal(slot: Slot & { ok: false }): {
  kind: ProblemKind
  detail: string
  retryAfterMs: number
} {
  return slot.scope === 'all'
    ? {
        kind: 'overloaded',
        detail: 'too many requests are waiting for commands; try again',
        retryAfterMs: POLL_RETRY_MS,
      }
    : {
        kind: 'rate-limited',
        detail: `too many requests of this ${slot.scope} are waiting for commands`,
        retryAfterMs: POLL_RETRY_MS,
      }
}

export interface HoldDeps {
  readonly commands: Pick<CommandOutlet, 'attach'>
  readonly log: Logger
  /** Aborted when the listener stops: waits end at once (202/204) instead of holding the drain. */
  readonly stopping?: AbortSignal | undefined
}

export interface Hold {
  readonly tenant: string
  /** The device the sink is attached for (the `?as=` child for a gateway). */
  readonly device: string
  readonly sender: string
  readonly seconds: number
}

/**
 * Waits for a command for `hold.device` and answers with it, or undefined when none came. The
 * handover is settled by what happens to the response on the Node socket (`finish`: delivered;
 * `close` before it: gone); without one (app.request() in tests) handing it over is delivering it.
 */
export async function holdForCommand(c: Context, hold: Hold, deps: HoldDeps): Promise<Response | undefined> {
  const handover = await waitForCommand({
    commands: deps.commands,
    protocol: 'http',
    tenant: hold.tenant,
    device: hold.device,
    waitMs: hold.seconds * 1000,
    signal:
      deps.stopping === undefined ? c.req.raw.signal : AbortSignal.any([c.req.raw.signal, deps.stopping]),
    settleMs: SETTLE_MS,
  })
  if (handover === undefined) return undefined
  deps.log.debug(
    { tenant: hold.tenant, device: handover.command.device, command: handover.command.id },
    'command answered on a long poll',
  )
  trackDelivery(c, handover)
  return commandResponse(handover.command, hold.sender)
}

function trackDelivery(c: Context, handover: Handover): void {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing
  if (outgoing === undefined || typeof outgoing.once !== 'function') {
    handover.settle(DELIVERED)
    return
  }
  if (outgoing.destroyed) {
    handover.settle(GONE)
    return
  }
  outgoing.once('finish', () => handover.settle(DELIVERED))
  outgoing.once('close', () => handover.settle(outgoing.writableFinished ? DELIVERED : GONE))
}

export interface CommandRouteDeps extends HoldDeps {
  readonly auth: Pick<DeviceAuthenticator, 'byPassword' | 'byToken'>
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  readonly limiter: RateLimiter
  readonly lastSeen: LastSeen
  readonly polls: PollSlots
  readonly maxCommandWaitSeconds: number
}

/**
 * `GET /v1/command?ct=<seconds>[&as=<device>]`: a device that sends nothing asks for its next
 * command. 200 with it, 204 when none came within ct (no ct: none is waited for). The request
 * counts against the device's message rate, so a tight loop of polls is throttled like messages.
 */
export function createCommandRoute(deps: CommandRouteDeps): (c: Context) => Promise<Response> {
  return async function poll(c) {
    const instance = c.req.path
    const refuse = (kind: ProblemKind, detail: string, retryAfterMs?: number): Response => {
      deps.log.debug({ path: instance, kind, detail }, 'command poll refused')
      return problemResponse(kind, detail, { instance, retryAfterMs })
    }
    // hono answers HEAD with the GET route: a command taken by it would be lost with the body.
    if (c.req.method !== 'GET') {
      return problemResponse('method-not-allowed', 'use GET', { instance, allow: 'GET, POST' })
    }
    const who = await authenticate(deps.auth, requestSource(c).header('authorization'))
    if (!who.ok) return refuse(who.kind, who.detail)
    const { caller } = who
    const as = onBehalfOf(c.req.query('as'))
    if (!as.ok) return refuse('invalid', as.detail)
    const ct = commandWait(c.req.query('ct'), deps.maxCommandWaitSeconds)
    if (!ct.ok) return refuse('invalid', ct.detail)
    const target = await deviceFor(deps.findDevice, caller, as.value)
    if (!target.ok) return refuse(target.kind, target.detail)
    const { tenant, sender } = caller
    const rate = await deps.limiter.take(tenant, target.device)
    if (!rate.allowed)
      return refuse('rate-limited', `over the message rate of ${target.device}`, rate.retryAfterMs)
    deps.lastSeen.seen(tenant, sender)
    if (target.device !== sender) deps.lastSeen.seen(tenant, target.device)
    const seconds = ct.value ?? 0
    if (seconds === 0) return new Response(null, { status: 204, headers: { 'cache-control': 'no-store' } })
    const slot = deps.polls.take(tenant, target.device)
    if (!slot.ok) {
      const refused = slotRefusal(slot)
      return refuse(refused.kind, refused.detail, refused.retryAfterMs)
    }
    try {
      const answer = await holdForCommand(c, { tenant, device: target.device, sender, seconds }, deps)
      return answer ?? new Response(null, { status: 204, headers: { 'cache-control': 'no-store' } })
    } finally {
      slot.release()
    }
  }
}
