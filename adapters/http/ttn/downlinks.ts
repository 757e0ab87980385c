// Where to send a TTN device its downlinks: the X-Downlink-Push / X-Downlink-Replace URLs and the
// X-Downlink-Apikey that TTN sends with every webhook call, remembered per device for the commands
// issue. Kept in this process's memory only (bounded, least recently seen dropped first): the next
// uplink brings them again, and the API key is never logged nor written anywhere.

export interface DownlinkTarget {
  readonly push: string
  readonly replace: string
  /** The TTN API key to send as `Authorization: Bearer`; secret. */
  readonly apiKey: string
  readonly seenAt: Date
}

export interface DownlinkTargets {
  /** Remembers the headers of a call for the device; ignores incomplete or malformed ones. */
  remember(tenant: string, device: string, headers: (name: string) => string | undefined, at: Date): boolean
  get(tenant: string, device: string): DownlinkTarget | undefined
  readonly size: number
}

export const PUSH_HEADER = 'x-downlink-push'
export const REPLACE_HEADER = 'x-downlink-replace'
export const API_KEY_HEADER = 'x-downlink-apikey'

const MAX_URL_LENGTH = 2048
const MAX_KEY_LENGTH = 1024
// TTN API keys are `NNSXS.` and base32-ish; any visible ASCII without spaces is accepted.
const API_KEY = /^[\x21-\x7e]+$/

function httpUrl(value: string | undefined): string | undefined {
  if (value === undefined || value.length > MAX_URL_LENGTH) return undefined
  try {
    const url = new URL(value)
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : undefined
  } catch {
    return undefined
  }
}

export function createDownlinkTargets(options: { maxEntries?: number | undefined } = {}): DownlinkTargets {
  const maxEntries = options.maxEntries ?? 100_000
  const targets = new Map<string, DownlinkTarget>()
  return {
    remember(tenant, device, header, at) {
      const push = httpUrl(header(PUSH_HEADER))
      const replace = httpUrl(header(REPLACE_HEADER))
      const apiKey = header(API_KEY_HEADER)
      if (push === undefined || replace === undefined) return false
      if (apiKey === undefined || apiKey.length > MAX_KEY_LENGTH || !API_KEY.test(apiKey)) return false
      const key = `${tenant}/${device}`
      // Re-inserting moves the device to the end: the Map's order is least recently seen first.
      targets.delete(key)
      targets.set(key, { push, replace, apiKey, seenAt: at })
      if (targets.size > maxEntries) targets.delete(targets.keys().next().value!)
      return true
    },
    get: (tenant, device) => targets.get(`${tenant}/${device}`),
    get size() {
      return targets.size
    },
  }
}
