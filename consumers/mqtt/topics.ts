// The application broker's topic space: `app/<tenant>` carries every event of a tenant and
// `app/<tenant>/<channel>` the events of one channel (the event's subject); applications publish
// commands on `command/<tenant>/<device>/<name>[/<request id>]`. This module is the only place that
// spells those topics and decides which topic filters a tenant may subscribe to.
import { REQUEST_ID_PATTERN, isCommandName } from '../../core/events/commands.ts'
import { CHANNEL_MAX_LENGTH, isChannel, isDeviceId, isTenantId } from '../../core/events/ids.ts'

export const APP_ROOT = 'app'
/** A channel has at most eight levels (core/events/ids.ts); a filter may not reach deeper. */
const MAX_CHANNEL_LEVELS = 8
const LEVEL = /^[A-Za-z0-9._~-]+$/
/** `app/` + the longest tenant id + `/` + the longest channel. */
export const MAX_FILTER_LENGTH = APP_ROOT.length + 1 + 63 + 1 + CHANNEL_MAX_LENGTH

/** Why a topic filter is refused; also the `reason` label of the refusals counter. */
export type FilterRefusal = 'other-tenant' | 'bad-filter'

/** The topic an event of `tenant` is published on: its channel under the tenant, or the tenant root. */
export function eventTopic(tenant: string, subject: string | undefined): string {
  // Subjects are channels once processed; anything else is not split into topic levels.
  if (subject === undefined || !isChannel(subject)) return `${APP_ROOT}/${tenant}`
  return `${APP_ROOT}/${tenant}/${subject}`
}

/**
 * Checks a SUBSCRIBE topic filter of a client of `tenant`: `app/<tenant>` followed by channel levels,
 * `+` (one level) or a final `#` [MQTT-4.7.1-2]. The tenant level is always literal, so that no
 * filter can match another tenant's topics.
 */
export function checkFilter(filter: string, tenant: string): FilterRefusal | undefined {
  if (filter.length > MAX_FILTER_LENGTH) return 'bad-filter'
  const levels = filter.split('/')
  if (levels[0] !== APP_ROOT || levels.length < 2) return 'bad-filter'
  const owner = levels[1]!
  if (owner !== tenant)
    return isTenantId(owner) || owner === '+' || owner === '#' ? 'other-tenant' : 'bad-filter'
  const rest = levels.slice(2)
  if (rest.length > MAX_CHANNEL_LEVELS) return 'bad-filter'
  for (const [i, level] of rest.entries()) {
    if (level === '#') {
      if (i !== rest.length - 1) return 'bad-filter'
    } else if (level !== '+' && !LEVEL.test(level)) return 'bad-filter'
  }
  return undefined
}

export const COMMAND_ROOT = 'command'

export interface CommandTopic {
  readonly tenant: string
  readonly device: string
  readonly name: string
  /** Set for request-style commands: the response event carries it as `requestid`. */
  readonly requestId: string | undefined
}

/**
 * A PUBLISH topic of an application: `command/<tenant>/<device>/<name>` (one-way) or
 * `command/<tenant>/<device>/<name>/<request id>` (request-style). Undefined for anything else,
 * including identifiers that are not valid (a name `res` or `req`, a device id with spaces).
 */
export function parseCommandTopic(topic: string): CommandTopic | undefined {
  const levels = topic.split('/')
  if (levels[0] !== COMMAND_ROOT || levels.length < 4 || levels.length > 5) return undefined
  const [, tenant, device, name, requestId] = levels as [string, string, string, string, string | undefined]
  if (!isTenantId(tenant) || !isDeviceId(device) || !isCommandName(name)) return undefined
  if (requestId !== undefined && !REQUEST_ID_PATTERN.test(requestId)) return undefined
  return { tenant, device, name, requestId }
}
