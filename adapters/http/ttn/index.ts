// `POST /ttn/v3`: The Things Network v3 webhook on the device HTTP listener. The tenant is named by
// X-Tributary-Tenant and proven by X-Tributary-Webhook-Secret (its SHA-256 in the tenant's
// settings); the message is checked, its device found or registered, its event made durable and
// then its downlink headers kept for commands (downlinks.ts), all before the 202. Anything refused
// writes nothing to the bus.
import { timingSafeEqual } from 'node:crypto'
import type { Context } from 'hono'
import type { Ingest, Outcome } from '../../adapter.ts'
import type { LastSeen, RateLimiter } from '../../device-limits.ts'
import { isTributaryError } from '../../../core/errors.ts'
import { isTenantId } from '../../../core/events/ids.ts'
import type { Logger } from '../../../core/log.ts'
import { validTraceparent } from '../../../core/tracing.ts'
import type { Device, Tenant } from '../../../core/registry/model.ts'
import type { RegistryService } from '../../../core/registry/service.ts'
import { declaredTooLarge } from '../limits.ts'
import type { RequestSource } from '../request.ts'
import { requestSource } from '../request.ts'
import { isJsonType } from '../map.ts'
import type { ProblemKind } from '../outcome.ts'
import { outcomeResponse, problemResponse } from '../outcome.ts'
import type { TtnSettings } from './config.ts'
import { SECRET_HEADER, TENANT_HEADER, readTtnSettings, webhookSecretHash } from './config.ts'
import type { DownlinkTargets } from './downlinks.ts'
import type { TtnMessage } from './map.ts'
import { parseTtnMessage, ttnEvent } from './map.ts'

export const TTN_PATH = '/ttn/v3'

/** The challenge of a 401: the webhook proves itself with headers, not an HTTP auth scheme. */
export const TTN_CHALLENGE = 'Tributary-Webhook-Secret realm="tributary"'

export interface TtnWebhookDeps {
  /** The tenant (cached; registry changes invalidate it). */
  readonly tenant: (id: string) => Promise<Tenant | undefined>
  readonly findDevice: (tenant: string, device: string) => Promise<Device | undefined>
  /** Auto-registration of unknown devices. */
  readonly registry: Pick<RegistryService, 'createDevice'>
  /** TTN events carry kinds other than telemetry and LoRaWAN extension attributes. */
  readonly ingest: Pick<Ingest, 'event'>
  readonly limiter: RateLimiter
  readonly lastSeen: LastSeen
  readonly downlinks: DownlinkTargets
  readonly maxBodyBytes: number
  readonly log: Logger
}

const MAX_SECRET_LENGTH = 256
// Hashed for an unknown tenant too, so that the answer takes as long whether or not the tenant exists.
const NO_HASH = Buffer.alloc(32)

type Refusal = { readonly kind: ProblemKind; readonly detail: string }

function sameHash(presented: string, stored: string | undefined): boolean {
  const a = Buffer.from(webhookSecretHash(presented), 'hex')
  const b = stored === undefined ? NO_HASH : Buffer.from(stored, 'hex')
  return timingSafeEqual(a, b) && stored !== undefined
}

export function createTtnWebhook(deps: TtnWebhookDeps): (c: Context) => Promise<Response> {
  /** The tenant and its settings once the headers prove the caller is its webhook. */
  async function authenticate(
    request: RequestSource,
  ): Promise<{ tenant: Tenant; settings: TtnSettings } | Refusal> {
    const id = request.header(TENANT_HEADER)
    const secret = request.header(SECRET_HEADER)
    const denied: Refusal = {
      kind: 'unauthenticated',
      detail: `send the tenant in ${TENANT_HEADER} and its webhook secret in ${SECRET_HEADER}`,
    }
    if (id === undefined || secret === undefined || secret.length > MAX_SECRET_LENGTH) return denied
    const tenant = isTenantId(id) ? await deps.tenant(id) : undefined
    const read = tenant === undefined ? undefined : readTtnSettings(tenant.settings)
    const stored =
      read === undefined
        ? undefined
        : read.ok
          ? read.settings.webhookSecretSha256
          : read.reason === 'invalid'
            ? read.secretSha256
            : undefined
    if (!sameHash(secret, stored) || tenant === undefined || read === undefined) return denied
    if (!read.ok) return { kind: 'forbidden', detail: read.detail }
    if (!tenant.enabled) return { kind: 'forbidden', detail: 'the tenant is disabled' }
    return { tenant, settings: read.settings }
  }

  /** The device of the message: found, or registered when the tenant asks for that. */
  async function deviceFor(
    tenant: string,
    settings: TtnSettings,
    message: TtnMessage,
  ): Promise<Refusal | undefined> {
    const found = await deps.findDevice(tenant, message.device)
    if (found !== undefined) {
      return found.enabled ? undefined : { kind: 'forbidden', detail: `device ${message.device} is disabled` }
    }
    if (!settings.autoRegister) {
      return {
        kind: 'forbidden',
        detail: `device ${message.device} is not registered (settings.ttn.autoRegister is off)`,
      }
    }
    const labels: Record<string, string> = { 'ttn/application': message.application }
    if (message.extensions['deveui'] !== undefined) labels['ttn/dev-eui'] = message.extensions['deveui']
    try {
      await deps.registry.createDevice(tenant, message.device, { labels })
      deps.log.info({ tenant, device: message.device }, 'registered a TTN device')
    } catch (err) {
      // Registered meanwhile by another call: fine.
      if (isTributaryError(err, 'REGISTRY_CONFLICT')) return undefined
      if (isTributaryError(err, 'REGISTRY_QUOTA_EXCEEDED')) return { kind: 'forbidden', detail: err.message }
      // Anything else (the registry cannot answer now: a 503) goes to the adapter's error mapping.
      throw err
    }
    return undefined
  }

  return async function handle(c) {
    const instance = c.req.path
    const request = requestSource(c)
    const refuse = ({ kind, detail }: Refusal, retryAfterMs?: number): Response => {
      deps.log.debug({ kind, detail }, 'TTN webhook call refused')
      const challenge = kind === 'unauthenticated' ? TTN_CHALLENGE : undefined
      return problemResponse(kind, detail, { instance, retryAfterMs, challenge })
    }
    if (declaredTooLarge(request.header('content-length'), deps.maxBodyBytes)) {
      return refuse({ kind: 'too-large', detail: `the body is larger than ${deps.maxBodyBytes} bytes` })
    }
    const auth = await authenticate(request)
    if ('kind' in auth) return refuse(auth)
    const { tenant, settings } = auth
    const contentType = request.header('content-type')
    if (contentType !== undefined && !isJsonType(contentType)) {
      return refuse({ kind: 'unsupported-media-type', detail: 'set the TTN webhook format to JSON' })
    }
    const read = await request.readBody(deps.maxBodyBytes)
    if (!read.ok)
      return refuse({ kind: 'too-large', detail: `the body is larger than ${deps.maxBodyBytes} bytes` })
    let json: unknown
    try {
      json = JSON.parse(read.body.toString('utf8'))
    } catch {
      return refuse({ kind: 'invalid', detail: 'the body is not valid JSON' })
    }
    const parsed = parseTtnMessage(json)
    if (!parsed.ok) return refuse({ kind: 'invalid', detail: parsed.detail })
    const message = parsed.message

    const refusal = await deviceFor(tenant.id, settings, message)
    if (refusal !== undefined) return refuse(refusal)
    const rate = await deps.limiter.take(tenant.id, message.device)
    if (!rate.allowed) {
      return refuse(
        { kind: 'rate-limited', detail: `over the message rate of ${message.device}` },
        rate.retryAfterMs,
      )
    }
    const time = new Date()
    // The network server (or a proxy before it) may name the trace of the uplink.
    const traceparent = validTraceparent(request.header('traceparent'))
    const outcome: Outcome = await deps.ingest.event(
      ttnEvent(message, { tenant: tenant.id, settings, time, traceparent }),
    )
    if (outcome.kind !== 'accepted') {
      deps.log.debug({ tenant: tenant.id, device: message.device, outcome }, 'TTN event not accepted')
      return outcomeResponse(outcome, { instance })
    }
    deps.lastSeen.seen(tenant.id, message.device, time)
    // Any accepted call brings the downlink headers (when the webhook has a downlink key); keeping
    // them lets the commands waiting for the device go out as downlinks.
    await deps.downlinks.remember(tenant.id, message, (name) => request.header(name), time)
    return new Response(null, { status: 202 })
  }
}
