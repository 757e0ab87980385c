// A tenant's TTN webhook settings (tenant settings key `ttn`), checked whenever they are read: the
// registry stores tenant settings free-form and leaves their meaning to the feature that reads them.
// The webhook secret is kept only as its SHA-256 (the secret is 256 random bits, so no salt or slow
// hash is needed, as for device tokens).
import { createHash, randomBytes } from 'node:crypto'
import { reservedLevel } from '../../../core/events/channels.ts'
import { isChannel } from '../../../core/events/ids.ts'

export const TTN_SETTINGS_KEY = 'ttn'
/** Headers the TTN webhook is set up to send (docs/ttn.md); lowercase, as Headers hands them out. */
export const TENANT_HEADER = 'x-tributary-tenant'
export const SECRET_HEADER = 'x-tributary-webhook-secret'

export type PayloadMode = 'raw' | 'decoded'

export interface TtnSettings {
  /** SHA-256 of the webhook secret, lowercase hex. */
  readonly webhookSecretSha256: string
  /** raw: frm_payload bytes (application/octet-stream); decoded: decoded_payload (application/json). */
  readonly payload: PayloadMode
  /** Register a device TTN sends for that the tenant does not have yet (else refuse it). */
  readonly autoRegister: boolean
  /** Channel of each FPort ("1".."255"); others go to `lorawan/<fport>`. */
  readonly fPortChannels: Readonly<Record<string, string>>
}

export type TtnSettingsRead =
  | { readonly ok: true; readonly settings: TtnSettings }
  /** No usable secret: nobody can be this tenant's webhook. */
  | { readonly ok: false; readonly reason: 'no-secret'; readonly detail: string }
  /** A secret, but other settings are wrong: told to a caller who proved the secret. */
  | { readonly ok: false; readonly reason: 'invalid'; readonly secretSha256: string; readonly detail: string }

const SHA256_HEX = /^[0-9a-f]{64}$/
const FPORT = /^(?:0|[1-9]\d{0,2})$/
const KEYS = new Set(['webhookSecretSha256', 'payload', 'autoRegister', 'fPortChannels'])

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

function checkChannels(value: unknown): Record<string, string> | string {
  if (value === undefined) return {}
  if (!isRecord(value)) return 'fPortChannels must be an object of "<fport>": "<channel>"'
  const out: Record<string, string> = {}
  for (const [port, channel] of Object.entries(value)) {
    if (!FPORT.test(port) || Number(port) > 255) return `fPortChannels: "${port}" is not an FPort (0-255)`
    if (typeof channel !== 'string' || !isChannel(channel) || reservedLevel(channel) !== undefined) {
      return `fPortChannels["${port}"] is not a channel (1-8 levels of A-Z a-z 0-9 . _ ~ -, not command/config/files/gw)`
    }
    out[port] = channel
  }
  return out
}

/** Reads settings.ttn of a tenant; never throws. */
export function readTtnSettings(settings: Readonly<Record<string, unknown>>): TtnSettingsRead {
  const ttn = settings[TTN_SETTINGS_KEY]
  if (!isRecord(ttn)) return { ok: false, reason: 'no-secret', detail: 'the tenant has no TTN settings' }
  const hash = ttn['webhookSecretSha256']
  if (typeof hash !== 'string' || !SHA256_HEX.test(hash)) {
    return {
      ok: false,
      reason: 'no-secret',
      detail: 'settings.ttn.webhookSecretSha256 is not 64 lowercase hex digits',
    }
  }
  const invalid = (detail: string): TtnSettingsRead => ({
    ok: false,
    reason: 'invalid',
    secretSha256: hash,
    detail: `the tenant's TTN settings are invalid: settings.ttn.${detail}`,
  })
  const unknown = Object.keys(ttn).find((k) => !KEYS.has(k))
  if (unknown !== undefined) return invalid(`${unknown} is not a TTN setting`)
  const payload = ttn['payload'] ?? 'raw'
  if (payload !== 'raw' && payload !== 'decoded') return invalid('payload must be "raw" or "decoded"')
  const autoRegister = ttn['autoRegister'] ?? false
  if (typeof autoRegister !== 'boolean') return invalid('autoRegister must be true or false')
  const channels = checkChannels(ttn['fPortChannels'])
  if (typeof channels === 'string') return invalid(channels)
  return { ok: true, settings: { webhookSecretSha256: hash, payload, autoRegister, fPortChannels: channels } }
}

/** SHA-256 of a presented secret, lowercase hex: what the settings hold. */
export function webhookSecretHash(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex')
}

/** A new webhook secret: `tws_` and 256 random bits, base64url. */
export function generateWebhookSecret(): string {
  return `tws_${randomBytes(32).toString('base64url')}`
}

/** The channel of an FPort: the tenant's mapping, else `lorawan/<fport>`. */
export function channelOfPort(settings: Pick<TtnSettings, 'fPortChannels'>, fPort: number): string {
  return settings.fPortChannels[String(fPort)] ?? `lorawan/${fPort}`
}
