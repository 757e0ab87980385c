// The channels a device may send on: one rule for every protocol (DESIGN.md). The first levels
// `command`, `config`, `files` and `gw` are Tributary's own; the one channel under them a device
// sends on is its answer to a command, `command/res/<request id>/<status>`. MQTT reads its gateway
// form `gw/<device>/` off the topic before this rule sees the rest; HTTP and CoAP name the device
// with `?as=` instead, so to them `gw/...` is reserved like the others.
import { parseResponseChannel } from './commands.ts'
import { CHANNEL_MAX_LENGTH, isChannel } from './ids.ts'

export const RESERVED_LEVELS: ReadonlySet<string> = new Set(['command', 'config', 'files', 'gw'])

export const CHANNEL_RULE = `a channel is 1-8 levels of A-Z a-z 0-9 . _ ~ - separated by /, at most ${CHANNEL_MAX_LENGTH} characters`

/** What a device sends on: telemetry on a channel, or its answer to a request-style command. */
export type DeviceTarget =
  | { readonly kind: 'telemetry'; readonly channel: string }
  | { readonly kind: 'response'; readonly requestId: string; readonly status: number }

export type TargetRead =
  | { readonly ok: true; readonly target: DeviceTarget }
  | { readonly ok: false; readonly reason: 'reserved' | 'invalid'; readonly detail: string }

/** The reserved first level of a channel, or undefined when its first level is free. */
export function reservedLevel(channel: string): string | undefined {
  const slash = channel.indexOf('/')
  const first = slash < 0 ? channel : channel.slice(0, slash)
  return RESERVED_LEVELS.has(first) ? first : undefined
}

/**
 * Reads what a device sends on, the same for every protocol: a well-formed command response, else
 * refused when its first level is reserved (before its syntax: a reserved level is never a
 * channel, however it is spelled), else a telemetry channel when it keeps the channel rule.
 */
export function readTarget(channel: string): TargetRead {
  const response = parseResponseChannel(channel)
  if (response !== undefined) return { ok: true, target: { kind: 'response', ...response } }
  const level = reservedLevel(channel)
  if (level !== undefined) {
    const hint =
      level === 'command' ? ': a device answers a command on command/res/<request id>/<status 200-599>' : ''
    return { ok: false, reason: 'reserved', detail: `the first channel level "${level}" is reserved${hint}` }
  }
  if (!isChannel(channel)) return { ok: false, reason: 'invalid', detail: CHANNEL_RULE }
  return { ok: true, target: { kind: 'telemetry', channel } }
}
