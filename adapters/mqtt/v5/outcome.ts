// Outcomes as MQTT 5 says them: a reason code in CONNACK for a refused connection, in PUBACK for a
// refused message (the session survives, unlike MQTT 3.1.1: ../outcome.ts), and in DISCONNECT for
// why the server ends a connection. Labels are the `reason` of tributary_mqtt_refusals_total.
import { CONNACK, connackFor } from '../outcome.ts'
import type { ConnectRefusal } from '../outcome.ts'

/** MQTT 5 reason codes (§2.4, Table 2-6) this endpoint sends. */
export const REASON = {
  success: 0x00,
  noSubscriptionExisted: 0x11,
  unspecified: 0x80,
  malformed: 0x81,
  protocolError: 0x82,
  implementationSpecific: 0x83,
  badCredentials: 0x86,
  notAuthorized: 0x87,
  serverUnavailable: 0x88,
  badAuthenticationMethod: 0x8c,
  shuttingDown: 0x8b,
  keepAliveTimeout: 0x8d,
  sessionTakenOver: 0x8e,
  topicFilterInvalid: 0x8f,
  topicNameInvalid: 0x90,
  receiveMaximumExceeded: 0x93,
  topicAliasInvalid: 0x94,
  packetTooLarge: 0x95,
  quotaExceeded: 0x97,
  payloadFormatInvalid: 0x99,
  retainNotSupported: 0x9a,
  qosNotSupported: 0x9b,
  sharedSubscriptionsNotSupported: 0x9e,
  subscriptionIdentifiersNotSupported: 0xa1,
} as const

/**
 * CONNACK reason code of a refused CONNECT (§3.2.2.2): the 3.1.1 groups kept, with the finer codes
 * MQTT 5 has for the tenant's limits. Unknown, wrong, disabled and expired credentials still share
 * one code, so a client cannot tell an unknown device from a wrong password.
 */
export function connackReason(reason: ConnectRefusal): number {
  if (reason === 'connection-limit') return REASON.quotaExceeded
  switch (connackFor(reason)) {
    case CONNACK.badCredentials:
      return REASON.badCredentials
    case CONNACK.notAuthorized:
      return REASON.notAuthorized
    case CONNACK.serverUnavailable:
      return REASON.serverUnavailable
  }
}

/** Refusals whose label may be told to the client as a reason string (none that names a credential's state). */
export function connackReasonString(reason: ConnectRefusal): string | undefined {
  return connackReason(reason) === REASON.badCredentials ? undefined : reason
}

/**
 * PUBACK reason code of a refused PUBLISH, from the refusal label of ../publish.ts or ./publish.ts.
 * PUBACK may carry only the codes of §3.4.2.1 [MQTT-3.4.2-1]: 0x95 is not one of them, so a payload
 * over the limit inside a packet under the Maximum Packet Size is 0x97 (an administrative limit);
 * a packet over the Maximum Packet Size ends the connection with DISCONNECT 0x95.
 */
export function pubackReason(refused: string | undefined): number {
  switch (refused) {
    case 'invalid-topic':
    case 'reserved-topic':
    case 'invalid-files-request':
      return REASON.topicNameInvalid
    case 'gateway-not-allowed':
    case 'event-forbidden':
    case 'event-unauthenticated':
      return REASON.notAuthorized
    case 'rate-limited':
    case 'event-rate-limited':
    case 'payload-too-large':
    case 'event-too-large':
      return REASON.quotaExceeded
    case 'payload-format-invalid':
    case 'event-invalid':
    case 'invalid-config-request':
    case 'invalid-config-report':
      return REASON.payloadFormatInvalid
    case 'unavailable':
      return REASON.implementationSpecific
    case undefined:
    default:
      return REASON.unspecified
  }
}

/** DISCONNECT reason code the server sends when it ends a connection for `reason` (§3.14.2.1). */
export function disconnectReason(reason: string | undefined): number {
  switch (reason) {
    case 'takeover':
      return REASON.sessionTakenOver // [MQTT-3.1.4-3]
    case 'revoked':
      return REASON.notAuthorized
    case 'shutdown':
      return REASON.shuttingDown
    case 'keepalive-timeout':
      return REASON.keepAliveTimeout
    case 'packet-too-large':
      return REASON.packetTooLarge
    case 'malformed':
      return REASON.malformed
    case 'topic-alias-invalid':
      return REASON.topicAliasInvalid
    case 'receive-maximum':
      return REASON.receiveMaximumExceeded
    case 'retained':
      return REASON.retainNotSupported
    case 'qos-not-supported':
      return REASON.qosNotSupported
    case 'shared-subscription':
      return REASON.sharedSubscriptionsNotSupported
    case 'subscription-identifier':
      return REASON.subscriptionIdentifiersNotSupported
    case 'protocol-error':
    case 'queue-limit':
      return REASON.protocolError
    case undefined:
    default:
      return REASON.unspecified
  }
}
