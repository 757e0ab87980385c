// TTN v3 webhook JSON ⇄ CloudEvent: an uplink becomes telemetry on the channel of its FPort with the
// raw frm_payload or the decoded_payload as data; join-accepts, downlink events and solved
// locations become their own types with TTN's object as JSON data. LoRaWAN metadata travels as
// extension attributes (docs/ttn.md); a downlink event of a command carries the command's id
// (`commandid`). TTN omits empty fields ("", 0, false): a missing f_port or
// f_cnt is 0, a missing frm_payload is an empty payload.
import type { EventInput, EventKind } from '../../../core/events/build.ts'
import { isDeviceId } from '../../../core/events/ids.ts'
import type { TtnSettings } from './config.ts'
import { channelOfPort } from './config.ts'

/** The message kinds Tributary takes, by their key in the webhook body. */
export const MESSAGE_KINDS = {
  uplink_message: 'telemetry',
  join_accept: 'ttn.join',
  downlink_ack: 'ttn.downlink.ack',
  downlink_nack: 'ttn.downlink.nack',
  downlink_sent: 'ttn.downlink.sent',
  downlink_failed: 'ttn.downlink.failed',
  downlink_queued: 'ttn.downlink.queued',
  location_solved: 'ttn.location',
} as const satisfies Record<string, EventKind>

export type MessageKey = keyof typeof MESSAGE_KINDS

export interface TtnMessage {
  readonly key: MessageKey
  /** end_device_ids.device_id: the Tributary device id. */
  readonly device: string
  readonly application: string
  /** The kind's own object (uplink_message, join_accept ...). */
  readonly body: Readonly<Record<string, unknown>>
  /** LoRaWAN identifiers and flags as extension attributes. */
  readonly extensions: Readonly<Record<string, string>>
}

export type TtnParse =
  { readonly ok: true; readonly message: TtnMessage } | { readonly ok: false; readonly detail: string }

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

const APPLICATION_ID = /^[a-z0-9](?:[-]?[a-z0-9]){0,63}$/
const EUI = /^[0-9A-Fa-f]{16}$/
const DEV_ADDR = /^[0-9A-Fa-f]{8}$/
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const KEYS = Object.keys(MESSAGE_KINDS) as MessageKey[]
const fail = (detail: string): TtnParse => ({ ok: false, detail })

/** A whole number in [0, max], or undefined when TTN left it out (its zero value). */
function counter(value: unknown, max: number): number | undefined | false {
  if (value === undefined) return undefined
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= max ? value : false
}

/** Checks the parts Tributary relies on; everything else in the body is carried as TTN sent it. */
export function parseTtnMessage(value: unknown): TtnParse {
  if (!isRecord(value)) return fail('the body is not a JSON object')
  const present = KEYS.filter((k) => value[k] !== undefined)
  if (present.length !== 1) {
    return fail(
      present.length === 0
        ? `the body holds none of ${KEYS.join(', ')}: enable only these messages in the TTN webhook`
        : `the body holds more than one message (${present.join(', ')})`,
    )
  }
  const key = present[0]!
  const body = value[key]
  if (!isRecord(body)) return fail(`${key} is not an object`)
  const ids = value['end_device_ids']
  if (!isRecord(ids)) return fail('end_device_ids is missing')
  const device = ids['device_id']
  if (typeof device !== 'string' || !isDeviceId(device)) {
    return fail('end_device_ids.device_id is missing or not a device id (1-128 of A-Z a-z 0-9 . _ : ~ -)')
  }
  const applicationIds = ids['application_ids']
  const application = isRecord(applicationIds) ? applicationIds['application_id'] : undefined
  if (typeof application !== 'string' || !APPLICATION_ID.test(application)) {
    return fail('end_device_ids.application_ids.application_id is missing or not a TTN application id')
  }
  const extensions: Record<string, string> = { ttnapp: application }
  const optional = [
    ['deveui', ids['dev_eui'], EUI],
    ['joineui', ids['join_eui'], EUI],
    ['devaddr', ids['dev_addr'], DEV_ADDR],
  ] as const
  for (const [name, v, pattern] of optional) {
    if (v === undefined) continue
    if (typeof v !== 'string' || !pattern.test(v)) return fail(`end_device_ids: ${name} is malformed`)
    extensions[name] = v.toUpperCase()
  }
  if (value['simulated'] === true) extensions['simulated'] = 'true'
  if (key.startsWith('downlink_')) {
    const command = commandIdOf(key, body, value['correlation_ids'])
    if (command !== undefined) extensions['commandid'] = command
  }
  if (key === 'uplink_message') {
    const problem = checkUplink(body)
    if (problem !== undefined) return fail(`uplink_message.${problem}`)
  }
  return { ok: true, message: { key, device, application, body, extensions } }
}

// Set on the downlinks Tributary sends for commands (downlink-send.ts); the id is any CloudEvents id.
const COMMAND_CORRELATION = /^tributary:command:([\x21-\x7e]{1,82})$/

/**
 * The id of the command a downlink event is about: from the correlation ids of the downlink (nested
 * in downlink_failed), else of the message, which TTN fills with the downlink's too.
 */
function commandIdOf(key: MessageKey, body: Record<string, unknown>, outer: unknown): string | undefined {
  const downlink = key === 'downlink_failed' ? body['downlink'] : body
  const lists = [isRecord(downlink) ? downlink['correlation_ids'] : undefined, outer]
  for (const list of lists) {
    if (!Array.isArray(list)) continue
    for (const id of list) {
      const match = typeof id === 'string' ? COMMAND_CORRELATION.exec(id) : null
      if (match !== null) return match[1]
    }
  }
  return undefined
}

function checkUplink(uplink: Record<string, unknown>): string | undefined {
  if (counter(uplink['f_port'], 255) === false) return 'f_port is not a whole number from 0 to 255'
  if (counter(uplink['f_cnt'], 0xffff_ffff) === false) return 'f_cnt is not a 32-bit counter'
  const payload = uplink['frm_payload']
  if (payload !== undefined && (typeof payload !== 'string' || !BASE64.test(payload))) {
    return 'frm_payload is not base64'
  }
  if (uplink['rx_metadata'] !== undefined && !Array.isArray(uplink['rx_metadata']))
    return 'rx_metadata is not a list'
  if (uplink['settings'] !== undefined && !isRecord(uplink['settings'])) return 'settings is not an object'
  return undefined
}

const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v)

/** The radio summary: the strongest gateway's RSSI, SNR and id, how many heard it, data rate, frequency, airtime. */
export function radioExtensions(uplink: Readonly<Record<string, unknown>>): Record<string, string> {
  const out: Record<string, string> = {}
  const rx = Array.isArray(uplink['rx_metadata']) ? uplink['rx_metadata'].filter(isRecord) : []
  if (rx.length > 0) out['gateways'] = String(rx.length)
  let best: Record<string, unknown> | undefined
  let bestRssi = -Infinity
  for (const entry of rx) {
    const rssi = finite(entry['rssi']) ? entry['rssi'] : entry['channel_rssi']
    if (finite(rssi) && rssi > bestRssi) {
      bestRssi = rssi
      best = entry
    }
  }
  if (best !== undefined) {
    out['rssi'] = String(bestRssi)
    if (finite(best['snr'])) out['snr'] = String(best['snr'])
    const gateway = isRecord(best['gateway_ids']) ? best['gateway_ids']['gateway_id'] : undefined
    if (typeof gateway === 'string' && APPLICATION_ID.test(gateway)) out['gateway'] = gateway
  }
  const settings = isRecord(uplink['settings']) ? uplink['settings'] : {}
  const lora = isRecord(settings['data_rate']) ? settings['data_rate']['lora'] : undefined
  if (isRecord(lora) && finite(lora['spreading_factor']) && finite(lora['bandwidth'])) {
    out['datarate'] = `SF${lora['spreading_factor']}BW${lora['bandwidth'] / 1000}`
  }
  // A uint64 in TTN's JSON, hence usually a string.
  const frequency = settings['frequency']
  if ((typeof frequency === 'string' && /^\d{1,12}$/.test(frequency)) || finite(frequency)) {
    out['frequency'] = String(frequency)
  }
  const airtime = uplink['consumed_airtime']
  if (typeof airtime === 'string' && /^\d{1,6}(?:\.\d{1,9})?s$/.test(airtime)) out['airtime'] = airtime
  return out
}

/** The FPort of a downlink event, if it names one (downlink_failed nests the downlink). */
function downlinkPort(message: TtnMessage): number | undefined {
  const downlink = message.key === 'downlink_failed' ? message.body['downlink'] : message.body
  if (!isRecord(downlink)) return undefined
  const port = counter(downlink['f_port'], 255)
  return typeof port === 'number' ? port : undefined
}

export interface EventContext {
  readonly tenant: string
  readonly settings: Pick<TtnSettings, 'payload' | 'fPortChannels'>
  readonly time: Date
  /** The `traceparent` header of the webhook request, when well formed. */
  readonly traceparent?: string | undefined
}

/** The event of a checked message. */
export function ttnEvent(message: TtnMessage, context: EventContext): EventInput {
  const base = {
    tenant: context.tenant,
    device: message.device,
    protocol: 'ttn' as const,
    time: context.time,
    traceparent: context.traceparent,
  }
  if (message.key !== 'uplink_message') {
    const port = message.key.startsWith('downlink_') ? downlinkPort(message) : undefined
    return {
      ...base,
      kind: MESSAGE_KINDS[message.key],
      subject: port === undefined ? undefined : channelOfPort(context.settings, port),
      data: Buffer.from(JSON.stringify(message.body)),
      datacontenttype: 'application/json',
      extensions: message.extensions,
    }
  }
  const uplink = message.body
  const fPort = counter(uplink['f_port'], 255) || 0
  const fCnt = counter(uplink['f_cnt'], 0xffff_ffff) || 0
  const extensions = {
    ...message.extensions,
    ...radioExtensions(uplink),
    fport: String(fPort),
    fcnt: String(fCnt),
  }
  const decoded = uplink['decoded_payload']
  // Without a payload formatter (or when it failed) there is no decoded_payload: the raw bytes go instead.
  const data =
    context.settings.payload === 'decoded' && decoded !== undefined
      ? { data: Buffer.from(JSON.stringify(decoded)), datacontenttype: 'application/json' }
      : rawData(uplink['frm_payload'])
  return { ...base, kind: 'telemetry', subject: channelOfPort(context.settings, fPort), ...data, extensions }
}

function rawData(frmPayload: unknown): { data?: Buffer; datacontenttype?: string } {
  const bytes = typeof frmPayload === 'string' ? Buffer.from(frmPayload, 'base64') : Buffer.alloc(0)
  return bytes.length === 0 ? {} : { data: bytes, datacontenttype: 'application/octet-stream' }
}
