// Outcomes as MQTT 3.1.1 says them: CONNACK codes by refusal, and ack / drop / disconnect by QoS.
import { describe, expect, it } from 'vitest'
import type { Outcome } from '../../../adapters/adapter.ts'
import type { ConnectRefusal } from '../../../adapters/mqtt/outcome.ts'
import { connackError, connackFor, publishAction } from '../../../adapters/mqtt/outcome.ts'

describe('connackFor', () => {
  it.each<[ConnectRefusal, number]>([
    ['missing-credentials', 4],
    ['malformed', 4],
    ['unknown', 4],
    ['bad-secret', 4],
    ['disabled', 4],
    ['expired', 4],
    ['identity-mismatch', 4],
    ['certificate-invalid', 4],
    ['certificate-tenant-unknown', 4],
    ['certificate-tenant-ambiguous', 4],
    ['method-not-allowed', 5],
    ['connection-limit', 5],
    ['will-refused', 5],
    ['unavailable', 3],
    ['shutting-down', 3],
  ])('%s → %i', (reason, code) => {
    expect(connackFor(reason)).toBe(code)
    expect(connackError(reason)).toMatchObject({ returnCode: code, message: `connection refused: ${reason}` })
  })
})

describe('publishAction', () => {
  const accepted: Outcome = { kind: 'accepted' }
  const unavailable: Outcome = { kind: 'unavailable', detail: 'bus down' }
  const limited: Outcome = { kind: 'rejected', reason: 'rate-limited', detail: 'slow down' }
  const forbidden: Outcome = { kind: 'rejected', reason: 'forbidden', detail: 'reserved' }
  const invalid: Outcome = { kind: 'rejected', reason: 'invalid', detail: 'bad' }

  it.each([
    [accepted, 0, 'ack'],
    [accepted, 1, 'ack'],
    [accepted, 2, 'ack'],
    [unavailable, 0, 'drop'],
    [unavailable, 1, 'disconnect'],
    [unavailable, 2, 'disconnect'],
    [limited, 0, 'drop'],
    [limited, 1, 'disconnect'],
    [forbidden, 0, 'disconnect'],
    [forbidden, 1, 'disconnect'],
    [invalid, 0, 'disconnect'],
  ] as const)('%j at QoS %i → %s', (outcome, qos, action) => {
    expect(publishAction(outcome, qos)).toBe(action)
  })
})
