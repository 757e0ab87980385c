// SUBSCRIBE and UNSUBSCRIBE on the MQTT 5 endpoint: each filter checked against the Topic Filter
// rules (§4.7), then granted by the same modules as on 3.1.1 (../routes.ts), answered with one
// reason code per filter in order [MQTT-3.8.4-6] [MQTT-3.9.3-1].
import type { ISubscribePacket, IUnsubscribePacket } from 'mqtt-packet'
import { REASON } from './outcome.ts'

/** Filters one connection may hold; a SUBSCRIBE for more gets 0x97 quota exceeded for them. */
export const MAX_FILTERS = 64
/** Longest filter looked at (`gw/<device>/command/<name>/req/<id>` is well under it). */
const MAX_FILTER_LENGTH = 1024

/** Why a Topic Filter breaks §4.7, or undefined: the SUBACK says 0x8F Topic Filter invalid. */
export function filterProblem(filter: string): string | undefined {
  if (filter.length === 0) return 'an empty Topic Filter [MQTT-4.7.3-1]'
  if (filter.length > MAX_FILTER_LENGTH) return 'a Topic Filter too long'
  if (filter.includes('\u0000')) return 'a Topic Filter with U+0000 [MQTT-4.7.3-2]'
  const levels = filter.split('/')
  for (const [i, level] of levels.entries()) {
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1))
      return '`#` not alone as the last level [MQTT-4.7.1-1]'
    if (level.includes('+') && level !== '+') return '`+` not a whole level [MQTT-4.7.1-2]'
  }
  return undefined
}

/** `$share/<name>/<filter>`: a Shared Subscription (§4.8.2), which CONNACK said is not available. */
export const isShared = (filter: string): boolean => filter.startsWith('$share/')

/** What a SUBSCRIBE breaks that ends the connection (CONNACK said it is not available), else undefined. */
export function subscribeViolation(
  packet: ISubscribePacket,
): 'subscription-identifier' | 'shared-subscription' | undefined {
  // §3.2.2.3.17: Subscription Identifiers Available 0, so one is a Protocol Error, DISCONNECT 0xA1.
  if (packet.properties?.subscriptionIdentifier !== undefined) return 'subscription-identifier'
  // §3.2.2.3.18: Shared Subscription Available 0, so one is a Protocol Error, DISCONNECT 0x9E.
  if (packet.subscriptions.some((s) => isShared(s.topic))) return 'shared-subscription'
  return undefined
}

export interface SubscribeOutcome {
  /** One reason code per filter, in order: the granted QoS, or why not. */
  readonly codes: number[]
  /** The filters granted (and now held), for the commands and configuration modules. */
  readonly added: string[]
}

/**
 * Grants what `authorize` allows and records it in `held` (a filter held already is replaced
 * [MQTT-3.8.4-3]); `refused` is told of every filter not granted, with why.
 */
export async function subscribe(
  packet: ISubscribePacket,
  held: Map<string, number>,
  authorize: (filter: string, qos: number) => Promise<0 | 1 | null>,
  refused: (filter: string, detail: string) => void,
): Promise<SubscribeOutcome> {
  const codes: number[] = []
  const added: string[] = []
  for (const { topic: filter, qos } of packet.subscriptions) {
    const problem = filterProblem(filter)
    if (problem !== undefined) {
      refused(filter, problem)
      codes.push(REASON.topicFilterInvalid)
      continue
    }
    if (!held.has(filter) && held.size >= MAX_FILTERS) {
      refused(filter, `a connection holds at most ${MAX_FILTERS} filters`)
      codes.push(REASON.quotaExceeded)
      continue
    }
    const granted = await authorize(filter, qos)
    if (granted === null) {
      codes.push(REASON.notAuthorized)
      continue
    }
    held.set(filter, granted)
    added.push(filter)
    codes.push(granted)
  }
  return { codes, added }
}

/**
 * Removes the filters held exactly as written [MQTT-3.10.4-1]: one reason code each, in order
 * [MQTT-3.11.3-1], 0x00 success or 0x11 no subscription existed.
 */
export function unsubscribe(packet: IUnsubscribePacket, held: Map<string, number>): number[] {
  return packet.unsubscriptions.map((filter) =>
    held.delete(filter) ? REASON.success : REASON.noSubscriptionExisted,
  )
}
