// Desired configuration over HTTP (docs/config.md): `GET /v1/config[?appVersion=<v>]` answers the
// device's effective configuration `{configId, config}` (for the application version it says it
// runs, recorded first when it changed) with the id as its ETag (304 for If-None-Match with it: the
// device has it already; `?wait=<s>` holds that answer until a change gives another id, at most s
// seconds), and records the delivery once the bus took its `config.delivered` event;
// `POST /v1/config/applied` records the device's report `{configId, statusCode?, reasonPhrase?}`
// and publishes it as `config.applied` (202). Gateways add `?as=<device>` as everywhere.
import type { Context } from 'hono'
import type { Ingest } from '../adapter.ts'
import type { LastSeen, RateLimiter } from '../device-limits.ts'
import { deliverConfig, reportAppVersion, reportConfigApplied } from '../device-config.ts'
import type { Logger } from '../../core/log.ts'
import type { DeviceAuthenticator } from '../../core/registry/auth.ts'
import type { Device } from '../../core/registry/model.ts'
import type { RegistryService } from '../../core/registry/service.ts'
import { authenticate, deviceFor } from './caller.ts'
import { declaredTooLarge } from './limits.ts'
import { onBehalfOf } from './map.ts'
import type { ProblemKind } from './outcome.ts'
import { outcomeResponse, problemResponse } from './outcome.ts'
import { requestSource } from './request.ts'
import type { ConfigWaits } from './config-waits.ts'
import type { PollSlots } from '../poll-slots.ts'
import { slotRefusal } from './command-route.ts'

export const CONFIG_PATH = '/v1/config'
export const CONFIG_APPLIED_PATH = '/v1/config/applied'
/** A report is a small JSON object; nothing larger is read. */
const MAX_REPORT_BYTES = 4096

export interface ConfigRouteDeps {
  readonly ingest: Pick<Ingest, 'event'>
  readonly auth: Pick<DeviceAuthenticator, 'byPassword' | 'byToken'>
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  readonly config: Pick<
    RegistryService,
    'getEffectiveConfig' | 'configDelivered' | 'configApplied' | 'reportAppVersion'
  >
  readonly limiter: RateLimiter
  readonly lastSeen: LastSeen
  readonly waits: ConfigWaits
  /** Bounds on waiting requests, shared with the command long polls. */
  readonly polls: PollSlots
  /** The longest `?wait=` (TRIBUTARY_HTTP_MAX_COMMAND_WAIT_SECONDS, as for `?ct=`). */
  readonly maxWaitSeconds: number
  readonly log: Logger
  /** Aborted when the listener stops: waits end at once (304). */
  readonly stopping?: AbortSignal | undefined
}

/** RFC 9110 §13.1.2: If-None-Match lists entity tags (or `*`); weak comparison. */
function matches(ifNoneMatch: string | undefined, tag: string): boolean {
  if (ifNoneMatch === undefined) return false
  return ifNoneMatch.split(',').some((t) => {
    const value = t.trim()
    return value === '*' || value.replace(/^W\//, '') === tag
  })
}

export function createConfigRoutes(deps: ConfigRouteDeps) {
  /** Who asks, for which device, within its rate: the checks both routes run first. */
  async function caller(c: Context) {
    const instance = c.req.path
    const refuse = (kind: ProblemKind, detail: string, retryAfterMs?: number) => {
      deps.log.debug({ path: instance, kind, detail }, 'configuration request refused')
      return { ok: false as const, response: problemResponse(kind, detail, { instance, retryAfterMs }) }
    }
    const who = await authenticate(deps.auth, requestSource(c).header('authorization'))
    if (!who.ok) return refuse(who.kind, who.detail)
    const as = onBehalfOf(c.req.query('as'))
    if (!as.ok) return refuse('invalid', as.detail)
    const target = await deviceFor(deps.findDevice, who.caller, as.value)
    if (!target.ok) return refuse(target.kind, target.detail)
    const { tenant, sender, credentialId } = who.caller
    const rate = await deps.limiter.take(tenant, target.device)
    if (!rate.allowed)
      return refuse('rate-limited', `over the message rate of ${target.device}`, rate.retryAfterMs)
    return { ok: true as const, tenant, sender, credentialId, device: target.device, refuse }
  }

  async function get(c: Context): Promise<Response> {
    // hono answers HEAD with the GET route: HEAD would count as a delivery without a body.
    if (c.req.method !== 'GET') {
      return problemResponse('method-not-allowed', 'use GET', { instance: c.req.path, allow: 'GET' })
    }
    const rawWait = c.req.query('wait')
    if (rawWait !== undefined && !(/^\d{1,5}$/.test(rawWait) && Number(rawWait) <= deps.maxWaitSeconds)) {
      return problemResponse(
        'invalid',
        `wait is a whole number of seconds from 0 to ${deps.maxWaitSeconds}`,
        {
          instance: c.req.path,
        },
      )
    }
    const who = await caller(c)
    if (!who.ok) return who.response
    const { tenant, device, sender } = who
    const time = new Date()
    deps.lastSeen.seen(tenant, sender, time)
    const appVersion = c.req.query('appVersion')
    if (appVersion !== undefined) {
      const refused = await reportAppVersion(deps.config, who, appVersion)
      if (refused !== undefined) return outcomeResponse(refused, { instance: c.req.path })
    }
    const ifNoneMatch = requestSource(c).header('if-none-match')
    let effective = await deps.config.getEffectiveConfig(tenant, device)
    // Kaa 7/CMP: the same id means nothing new to send; `?wait=` holds the answer for a change.
    if (matches(ifNoneMatch, `"${effective.configId}"`) && rawWait !== undefined && Number(rawWait) > 0) {
      const slot = deps.polls.take(tenant, device)
      if (!slot.ok) {
        const refused = slotRefusal(slot)
        return who.refuse(refused.kind, refused.detail, refused.retryAfterMs).response
      }
      try {
        const signal =
          deps.stopping === undefined ? c.req.raw.signal : AbortSignal.any([c.req.raw.signal, deps.stopping])
        const deadline = Date.now() + Number(rawWait) * 1000
        while (
          matches(ifNoneMatch, `"${effective.configId}"`) &&
          (await deps.waits.next(tenant, device, deadline - Date.now(), signal))
        ) {
          effective = await deps.config.getEffectiveConfig(tenant, device)
        }
      } finally {
        slot.release()
      }
    }
    const tag = `"${effective.configId}"`
    const headers = { etag: tag, 'cache-control': 'no-store' }
    if (matches(ifNoneMatch, tag)) return new Response(null, { status: 304, headers })
    const outcome = await deliverConfig(
      deps,
      { tenant, device, sender, protocol: 'http', time },
      effective.configId,
    )
    if (outcome.kind !== 'accepted') return outcomeResponse(outcome, { instance: c.req.path })
    return new Response(JSON.stringify({ configId: effective.configId, config: effective.config }), {
      status: 200,
      headers: { ...headers, 'content-type': 'application/json' },
    })
  }

  async function applied(c: Context): Promise<Response> {
    const request = requestSource(c)
    const instance = c.req.path
    if (declaredTooLarge(request.header('content-length'), MAX_REPORT_BYTES)) {
      return problemResponse('too-large', `a report is at most ${MAX_REPORT_BYTES} bytes`, { instance })
    }
    const who = await caller(c)
    if (!who.ok) return who.response
    const { tenant, device, sender, credentialId, refuse } = who
    const read = await request.readBody(MAX_REPORT_BYTES)
    if (!read.ok) return refuse('too-large', `a report is at most ${MAX_REPORT_BYTES} bytes`).response
    let body: unknown
    try {
      body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(read.body))
    } catch {
      return refuse('invalid', 'the body must be UTF-8 JSON: {"configId": "...", "statusCode": 200}').response
    }
    const time = new Date()
    // Checks the report and that the id was sent to this device before anything is written.
    const outcome = await reportConfigApplied(
      deps,
      { tenant, device, sender, protocol: 'http', credential: credentialId, time },
      body,
    )
    if (outcome.kind !== 'accepted') return outcomeResponse(outcome, { instance })
    deps.lastSeen.seen(tenant, sender, time)
    return new Response(null, { status: 202 })
  }

  return { get, applied }
}
