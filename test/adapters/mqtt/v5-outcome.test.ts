// MQTT 5 reason codes from outcomes: every code the endpoint can put in a CONNACK, PUBACK or
// DISCONNECT is one its packet's table allows (§3.2.2.2, §3.4.2.1, §3.14.2.1).
import { describe, expect, it } from 'vitest'
import type { ConnectRefusal } from '../../../adapters/mqtt/outcome.ts'
import { connackReason, disconnectReason, pubackReason } from '../../../adapters/mqtt/v5/outcome.ts'

const CONNACK_CODES = [
  0x00, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8c, 0x90, 0x95, 0x97, 0x99, 0x9a,
  0x9b, 0x9c, 0x9d, 0x9f,
]
const PUBACK_CODES = [0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99]
const DISCONNECT_CODES = [
  0x00, 0x04, 0x80, 0x81, 0x82, 0x83, 0x87, 0x89, 0x8b, 0x8d, 0x8e, 0x8f, 0x90, 0x93, 0x94, 0x95, 0x96, 0x97,
  0x98, 0x99, 0x9a, 0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2,
]

const REFUSALS: ConnectRefusal[] = [
  'missing-credentials',
  'malformed',
  'unknown',
  'bad-secret',
  'disabled',
  'expired',
  'identity-mismatch',
  'certificate-invalid',
  'certificate-tenant-unknown',
  'certificate-tenant-ambiguous',
  'method-not-allowed',
  'connection-limit',
  'will-refused',
  'unavailable',
  'shutting-down',
]
const PUBLISH_REFUSALS = [
  'retained',
  'payload-too-large',
  'event-too-large',
  'invalid-topic',
  'reserved-topic',
  'gateway-not-allowed',
  'event-forbidden',
  'event-unauthenticated',
  'rate-limited',
  'event-rate-limited',
  'payload-format-invalid',
  'event-invalid',
  'unavailable',
  'something-new',
  undefined,
]
const CLOSE_REASONS = [
  'takeover',
  'revoked',
  'shutdown',
  'keepalive-timeout',
  'packet-too-large',
  'malformed',
  'topic-alias-invalid',
  'receive-maximum',
  'retained',
  'qos-not-supported',
  'protocol-error',
  'queue-limit',
  'slow-client',
  undefined,
]

describe('MQTT 5 reason codes', () => {
  it('keeps the 3.1.1 groups in CONNACK, with 0x97 for the connection limit', () => {
    expect(Object.fromEntries(REFUSALS.map((r) => [r, connackReason(r)]))).toMatchObject({
      'bad-secret': 0x86,
      unknown: 0x86,
      'certificate-invalid': 0x86,
      'method-not-allowed': 0x87,
      'connection-limit': 0x97,
      unavailable: 0x88,
      'shutting-down': 0x88,
    })
    for (const r of REFUSALS) expect(CONNACK_CODES, r).toContain(connackReason(r))
  })

  it('[MQTT-3.4.2-1] puts only PUBACK reason codes in a PUBACK', () => {
    expect(PUBLISH_REFUSALS.map((r) => pubackReason(r))).toEqual([
      0x80, 0x97, 0x97, 0x90, 0x90, 0x87, 0x87, 0x87, 0x97, 0x97, 0x99, 0x99, 0x83, 0x80, 0x80,
    ])
    for (const r of PUBLISH_REFUSALS) expect(PUBACK_CODES, r).toContain(pubackReason(r))
  })

  it('says why the server ends a connection with DISCONNECT codes only (0x8E takeover, 0x87 revocation, 0x8B shutdown)', () => {
    expect([disconnectReason('takeover'), disconnectReason('revoked'), disconnectReason('shutdown')]).toEqual(
      [0x8e, 0x87, 0x8b],
    )
    for (const r of CLOSE_REASONS) expect(DISCONNECT_CODES, r).toContain(disconnectReason(r))
  })
})
