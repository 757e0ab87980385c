// A command as a TTN downlink: the request to The Things Stack's downlink queue (push, or replace
// when the command asks for it) and the sender that POSTs it with the device's downlink API key,
// a timeout, no redirects, and the address it connects to checked by the policy of every
// tenant-chosen URL (core/outbound.ts), then turns TTN's answer into the dispatcher's delivery result.
import type { LookupAddress } from 'node:dns'
import type { Agent as HttpAgent, IncomingMessage } from 'node:http'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { createTargetAgents, targetRefusal } from '../../../core/outbound.ts'
import type { DeliveryResult, DeviceCommand } from '../../../commands/outlet.ts'
import { hostAllowed } from './downlink-url.ts'

/** The downlink queue URLs and key of one device (downlinks.ts). */
export interface DownlinkTarget {
  readonly push: string
  readonly replace: string
  /** The TTN API key sent as `Authorization: Bearer`; secret. */
  readonly apiKey: string
  readonly seenAt: Date
}

export interface DownlinkRequest {
  readonly url: string
  readonly headers: Readonly<Record<string, string>>
  readonly body: Buffer
}

/** The port the sink sends through; the real one is createDownlinkSender. */
export interface DownlinkSender {
  send(request: DownlinkRequest): Promise<DeliveryResult>
  close(): void
}

export const DEFAULT_FPORT = 1
/** LoRaWAN Regional Parameters (RP002): 242 bytes is the largest application payload (N) of any data rate. */
export const MAX_DOWNLINK_BYTES = 242
export const CORRELATION_PREFIX = 'tributary:command:'
// The Things Stack refuses correlation ids longer than 100 characters.
const MAX_CORRELATION_LENGTH = 100
export const SEND_TIMEOUT_MS = 10_000

/** The request of a command, or why it can never be a downlink. */
export function downlinkRequest(
  target: DownlinkTarget,
  command: Pick<DeviceCommand, 'id' | 'payload' | 'fport' | 'downlink'>,
): DownlinkRequest | { readonly kind: 'failed'; readonly reason: string } {
  if (command.payload.length > MAX_DOWNLINK_BYTES) return { kind: 'failed', reason: 'payload-too-large' }
  const correlation = `${CORRELATION_PREFIX}${command.id}`
  const downlink: Record<string, unknown> = {
    f_port: command.fport ?? DEFAULT_FPORT,
    frm_payload: command.payload.toString('base64'),
    priority: 'NORMAL',
  }
  // A command id too long for TTN still goes out, only without the way back to it.
  if (correlation.length <= MAX_CORRELATION_LENGTH) downlink['correlation_ids'] = [correlation]
  return {
    url: command.downlink === 'replace' ? target.replace : target.push,
    headers: {
      authorization: `Bearer ${target.apiKey}`,
      'content-type': 'application/json',
      'user-agent': 'Tributary',
    },
    body: Buffer.from(JSON.stringify({ downlinks: [downlink] })),
  }
}

/**
 * TTN's answer → delivery: 2xx delivered (on the device's queue in TTN); 408, 429 and 5xx gone (the
 * command stays queued for the next uplink); any other status failed — a revoked key, a device or
 * webhook that no longer exists, or a downlink TTN refuses would fail again the same way.
 */
export function deliveryOf(status: number): DeliveryResult {
  if (status >= 200 && status < 300) return { kind: 'delivered' }
  // 429 is TTN's rate limit and 408 its request timeout: waiting helps, unlike other 4xx.
  if (status === 408 || status === 429 || status >= 500) return { kind: 'gone' }
  return { kind: 'failed', reason: `ttn-${status}` }
}

export interface SenderOptions {
  /** TRIBUTARY_WEBHOOK_ALLOW_PRIVATE: loopback and private addresses allowed (tests, closed setups). */
  readonly allowPrivate: boolean
  readonly timeoutMs?: number | undefined
  /** Name resolution (tests answer for made-up names); dns.lookup of every address by default. */
  readonly resolve?: ((hostname: string) => Promise<LookupAddress[]>) | undefined
}

export function createDownlinkSender(options: SenderOptions): DownlinkSender {
  const { allowPrivate } = options
  const timeoutMs = options.timeoutMs ?? SEND_TIMEOUT_MS
  const agents = createTargetAgents({ allowPrivate, resolve: options.resolve, maxSockets: 8 })

  return {
    async send(request) {
      // Checked again here: the value came back from shared state, and literal addresses are never looked up.
      const url = URL.parse(request.url)
      const secure = url?.protocol === 'https:'
      if (url === null || (!secure && !(allowPrivate && url.protocol === 'http:'))) {
        return { kind: 'failed', reason: 'ttn-url-refused' }
      }
      if (!hostAllowed(url.hostname, allowPrivate)) return { kind: 'failed', reason: 'ttn-url-refused' }
      try {
        const status = await post(url, request, agents.for(url), timeoutMs)
        return deliveryOf(status)
      } catch (err) {
        return targetRefusal(err) !== undefined
          ? { kind: 'failed', reason: 'ttn-url-refused' }
          : { kind: 'gone' }
      }
    },
    close() {
      agents.destroy()
    },
  }
}

/** The status of the answer; its body is drained unread (at most a few KiB), redirects are not followed. */
function post(url: URL, request: DownlinkRequest, agent: HttpAgent, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest
    const req = send(url, {
      method: 'POST',
      agent,
      headers: { ...request.headers, 'content-length': String(request.body.length) },
      signal: AbortSignal.timeout(timeoutMs),
    })
    req.on('error', reject)
    req.on('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0
      let read = 0
      res.on('data', (chunk: Buffer) => {
        read += chunk.length
        if (read > 16 * 1024) res.destroy()
      })
      res.on('end', () => resolve(status))
      res.on('close', () => resolve(status))
      res.on('error', () => resolve(status))
    })
    req.end(request.body)
  })
}
