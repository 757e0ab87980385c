// The command topics of the device broker: which SUBSCRIBE filters a device may hold (its own
// `command/…`, and `gw/<device>/command/…` as a gateway), the topic each command goes out on, the
// QoS it goes at, and the response topics devices answer on. Pure functions; docs/commands-mqtt.md.
import type { DeviceCommand } from '../../commands/outlet.ts'
import { parseResponseChannel } from '../../core/events/commands.ts'
import { isDeviceId } from '../../core/events/ids.ts'

const COMMAND = 'command'
const GATEWAY = 'gw'
/** A literal topic level of a command filter: what names, request ids and `req` are made of. */
const LEVEL = /^[A-Za-z0-9._~-]{1,64}$/
/** Levels after `command/`: `<name>/req/<request id>` at most, or three levels and a final `#`. */
const MAX_LEVELS_AFTER_COMMAND = 3
/** `gw/` + the longest device id + `/command/` + room for `<name>/req/<request id>`. */
export const MAX_FILTER_LENGTH = 400
/** Commands go out at QoS 1 at most (MQTT 3.1.1 QoS 2 buys nothing over the durable queue). */
export const MAX_COMMAND_QOS = 1

export type FilterCheck =
  | {
      readonly ok: true
      /** The device named in `gw/<device>/command/…`, for the gateway check; undefined otherwise. */
      readonly gatewayFor: string | undefined
    }
  | { readonly ok: false; readonly detail: string }

const refused = (detail: string): FilterCheck => ({ ok: false, detail })

function checkCommandLevels(levels: readonly string[]): string | undefined {
  const last = levels.length - 1
  const limit = levels[last] === '#' ? MAX_LEVELS_AFTER_COMMAND + 1 : MAX_LEVELS_AFTER_COMMAND
  if (levels.length === 0 || levels.length > limit)
    return `after "command/" a filter has 1-${MAX_LEVELS_AFTER_COMMAND} levels (<name>/req/<request id>)`
  for (const [i, level] of levels.entries()) {
    // [MQTT-4.7.1-2] `#` only as the last level; [MQTT-4.7.1-3] `+` a whole level.
    if (level === '#' && i === last) continue
    if (level === '+') continue
    if (!LEVEL.test(level)) return `level ${JSON.stringify(level.slice(0, 70))} is not allowed`
  }
  return undefined
}

/**
 * Whether a device may hold this SUBSCRIBE filter: `command/…` (its own commands) or
 * `gw/<device|+>/command/…` (commands for devices it is the gateway of). A literal `<device>` still
 * needs the gateway check (does it list the subscriber?), which the caller makes with the registry.
 * Everything else — `#`, `+/…`, telemetry topics, other devices' data — is refused.
 */
export function checkCommandFilter(filter: string, self: string): FilterCheck {
  if (filter.length > MAX_FILTER_LENGTH) return refused('the filter is too long')
  const levels = filter.split('/')
  if (levels[0] === COMMAND) {
    const problem = checkCommandLevels(levels.slice(1))
    return problem === undefined ? { ok: true, gatewayFor: undefined } : refused(problem)
  }
  if (levels[0] !== GATEWAY || levels[2] !== COMMAND)
    return refused('devices may subscribe to command/… and gw/<device>/command/… only')
  const device = levels[1]!
  if (device !== '+' && (!isDeviceId(device) || device === self))
    return refused('gw/<device>/command/… names another device, or +')
  const problem = checkCommandLevels(levels.slice(3))
  if (problem !== undefined) return refused(problem)
  return { ok: true, gatewayFor: device === '+' ? undefined : device }
}

/** Whether a filter is one of the command filters above (granted ones are; nothing else is granted). */
export function isCommandFilter(filter: string): boolean {
  const levels = filter.split('/')
  return levels[0] === COMMAND || (levels[0] === GATEWAY && levels[2] === COMMAND)
}

/**
 * The topic a command goes out on to the device `self` is connected as: `command/<name>` or
 * `command/<name>/req/<request id>`, under `gw/<device>/` when it is for a device `self` serves.
 * Names, request ids and device ids hold no `/`, `+` or `#` (core/events), so this is one topic.
 */
export function commandTopic(
  command: Pick<DeviceCommand, 'device' | 'name' | 'requestId'>,
  self: string,
): string {
  const own =
    command.requestId === undefined
      ? `${COMMAND}/${command.name}`
      : `${COMMAND}/${command.name}/req/${command.requestId}`
  return command.device === self ? own : `${GATEWAY}/${command.device}/${own}`
}

/** The status a device answers with when it publishes to the Response Topic as given. */
export const RESPONSE_TOPIC_STATUS = 200

/**
 * The MQTT 5 Response Topic of a request-style command: `command/res/<request id>/200` (under
 * `gw/<device>/` as commandTopic), the topic a 3.1.1 device answers on; another status replaces
 * the last level.
 */
export function responseTopic(
  command: Pick<DeviceCommand, 'device' | 'requestId'>,
  self: string,
): string | undefined {
  if (command.requestId === undefined) return undefined
  const own = `${COMMAND}/res/${command.requestId}/${RESPONSE_TOPIC_STATUS}`
  return command.device === self ? own : `${GATEWAY}/${command.device}/${own}`
}

/** MQTT topic matching [MQTT-4.7.1]: `+` one level, a final `#` the parent and every level below. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    const level = f[i]
    if (level === '#') return i === f.length - 1
    if (i >= t.length) return false
    if (level !== '+' && level !== t[i]) return false
  }
  return f.length === t.length
}

/**
 * The QoS a command on `topic` goes at: the highest granted QoS of the matching command filters,
 * capped at 1; undefined when none matches (the device did not ask for it).
 */
export function deliveryQos(
  subscriptions: Iterable<readonly [string, number]>,
  topic: string,
): number | undefined {
  let qos: number | undefined
  for (const [filter, granted] of subscriptions) {
    if (!isCommandFilter(filter) || !topicMatches(filter, topic)) continue
    qos = Math.max(qos ?? 0, Math.min(granted, MAX_COMMAND_QOS))
  }
  return qos
}

export interface ResponseRoute {
  /** The device answering for, when a gateway answers on `gw/<device>/command/res/…`. */
  readonly device: string | undefined
  readonly requestId: string
  readonly status: number
}

/** `command/res/<request id>/<status>` or `gw/<device>/command/res/<request id>/<status>`; else undefined. */
export function responseRoute(topic: string): ResponseRoute | undefined {
  let device: string | undefined
  let channel = topic
  if (topic.startsWith(`${GATEWAY}/`)) {
    const slash = topic.indexOf('/', GATEWAY.length + 1)
    if (slash < 0) return undefined
    device = topic.slice(GATEWAY.length + 1, slash)
    if (!isDeviceId(device)) return undefined
    channel = topic.slice(slash + 1)
  }
  const parsed = parseResponseChannel(channel)
  return parsed === undefined ? undefined : { device, ...parsed }
}
