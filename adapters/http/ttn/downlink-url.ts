// The downlink URLs TTN sends with every webhook call (X-Downlink-Push, X-Downlink-Replace), checked
// before they are kept. The tenant's webhook chooses what these headers say, and Tributary sends the
// TTN API key to them, so they must name a downlink queue of the very device and application the
// message is for, over https, on a host that is not loopback, private or special (core/outbound.ts,
// as for every tenant-chosen URL). A host name is checked again on the address actually dialled
// when a downlink is sent (downlink-send.ts).
import { targetHostProblem } from '../../../core/outbound.ts'

export interface DownlinkIds {
  /** end_device_ids.application_ids.application_id of the message. */
  readonly application: string
  /** end_device_ids.device_id of the message. */
  readonly device: string
}

export type DownlinkUrlCheck =
  | { readonly ok: true; readonly push: string; readonly replace: string }
  | { readonly ok: false; readonly reason: string }

export const MAX_URL_LENGTH = 2048

// The Things Stack's webhook downlink queue operations (docs: Integrations → Webhooks → Scheduling
// Downlinks): /api/v3/as/applications/{application_id}/webhooks/{webhook_id}/devices/{device_id}/down/push
// and .../down/replace.
const DOWN_PATH =
  /^\/api\/v3\/as\/applications\/([^/]+)\/webhooks\/([^/]+)\/devices\/([^/]+)\/down\/(push|replace)$/
// The Things Stack identifiers: lowercase letters and digits, single dashes between them, at most 36.
const TTN_ID = /^[a-z0-9](?:-?[a-z0-9]){0,35}$/

/** True when a host may be sent to without resolving it: a public IP or a name (checked on connect). */
export function hostAllowed(hostname: string, allowPrivate: boolean): boolean {
  return allowPrivate || targetHostProblem(hostname) === undefined
}

type Parsed = { url: URL; webhook: string; op: string } | string

function parse(value: string | undefined, name: string, ids: DownlinkIds, allowPrivate: boolean): Parsed {
  if (value === undefined || value === '') return `${name} is missing`
  if (value.length > MAX_URL_LENGTH) return `${name} is longer than ${MAX_URL_LENGTH} characters`
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return `${name} is not a URL`
  }
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) return `${name} is not https`
  if (url.username !== '' || url.password !== '') return `${name} carries a user or password`
  if (url.search !== '' || value.includes('#')) return `${name} has a query or fragment`
  const hostProblem = allowPrivate ? undefined : targetHostProblem(url.hostname)
  if (hostProblem !== undefined) return `${name} ${hostProblem}`
  const match = DOWN_PATH.exec(url.pathname)
  if (match === null) return `${name} is not a TTN downlink queue path`
  const [, application, webhook, device, op] = match
  if (application !== ids.application) return `${name} is for another application`
  if (device !== ids.device) return `${name} is for another device`
  if (!TTN_ID.test(webhook!)) return `${name} has an invalid webhook id`
  return { url, webhook: webhook!, op: op! }
}

/** Checks both URLs for the message's application and device; the reason never repeats a URL. */
export function checkDownlinkUrls(
  push: string | undefined,
  replace: string | undefined,
  ids: DownlinkIds,
  allowPrivate: boolean,
): DownlinkUrlCheck {
  const p = parse(push, 'X-Downlink-Push', ids, allowPrivate)
  if (typeof p === 'string') return { ok: false, reason: p }
  const r = parse(replace, 'X-Downlink-Replace', ids, allowPrivate)
  if (typeof r === 'string') return { ok: false, reason: r }
  if (p.op !== 'push' || r.op !== 'replace')
    return { ok: false, reason: 'X-Downlink-Push and X-Downlink-Replace are swapped' }
  if (p.url.origin !== r.url.origin || p.webhook !== r.webhook) {
    return { ok: false, reason: 'X-Downlink-Push and X-Downlink-Replace name different webhooks' }
  }
  return { ok: true, push: p.url.href, replace: r.url.href }
}
