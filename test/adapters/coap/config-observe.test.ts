// Observations of /v1/config against a recording notification stream, fakes at the ports (the
// registry service, the cached registry lookups, the ingest) and exchanges whose acknowledgements
// the test gives: the registration answered with the configuration, a notification per change of
// id, and the observation ended (slot back) on a reset, a device disabled, a credential revoked, or
// an event that could not be made durable.
import { describe, expect, it } from 'vitest'
import type { Outcome } from '../../../adapters/adapter.ts'
import { createConfigObservations } from '../../../adapters/coap/config-observe.ts'
import type { Fate } from '../../../adapters/coap/exchanges.ts'
import { configEtag } from '../../../adapters/coap/handler.ts'
import type { EventInput } from '../../../core/events/build.ts'
import { silentLogger } from '../../../core/log.ts'
import type { Credential, Device } from '../../../core/registry/model.ts'
import type { EffectiveConfig } from '../../../core/registry/service.ts'
import { recordingStream } from './notification-stream.ts'

const A = 'q3Jm2cH1yF8x0eZ4b7QK9w'
const B = 'RBNvo1WzZ4oRRq0W9-hknp'

const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve))
}

function setup(options: { outcome?: Outcome } = {}) {
  const events: EventInput[] = []
  const delivered: string[] = []
  let current = { configId: A, config: { led: 'on' } as Record<string, unknown> }
  const devices = new Map<string, Partial<Device>>([['d1', { id: 'd1', enabled: true, gateways: [] }]])
  let credential: Partial<Credential> | undefined = { id: 'c1', enabled: true, expiresAt: null }
  const fates = new Map<number, (fate: Fate) => void>()
  let id = 100
  const observations = createConfigObservations({
    ingest: {
      event: async (event) => {
        events.push(event)
        return options.outcome ?? { kind: 'accepted' }
      },
    },
    config: {
      getEffectiveConfig: async () => current as unknown as EffectiveConfig,
      configDelivered: async (tenant, device, configId, protocol) =>
        void delivered.push(`${tenant}/${device} ${configId} ${protocol}`),
    },
    auth: {
      findDevice: async (_t, d) => devices.get(d) as Device | undefined,
      findCredential: async () => credential as Credential | undefined,
    },
    exchanges: {
      nextId: () => ++id,
      expect: (_peer, messageId) => new Promise((resolve) => fates.set(messageId, resolve)),
    },
    log: silentLogger,
  })
  const stream = recordingStream(true)
  stream._packet.messageId = 7
  let released = 0
  const observer = {
    tenant: 't1',
    device: 'd1',
    sender: 'd1',
    credentialId: 'c1',
    release: () => void released++,
  }
  return {
    observations,
    stream,
    observer,
    events,
    delivered,
    fates,
    devices,
    released: () => released,
    change: (configId: string, config: Record<string, unknown>) => (current = { configId, config }),
    revoke: () => (credential = undefined),
  }
}

describe('configuration observations', () => {
  it('answers the registration with the configuration, then notifies each change of id', async () => {
    const t = setup()
    t.observations.start('k', 'peer', t.stream, t.observer, 7)
    await settle()
    expect(t.stream.sent).toEqual([
      {
        code: '2.05',
        payload: JSON.stringify({ configId: A, config: { led: 'on' } }),
        // Piggybacked on the registration's ACK: its message id.
        messageId: 7,
        options: { 'Content-Format': ['50'], ETag: [String(configEtag(A))] },
      },
    ])
    expect(t.events.map((e) => [e.kind, e.protocol])).toEqual([['config.delivered', 'coap']])
    expect(t.delivered).toEqual([`t1/d1 ${A} coap`])

    // A change that leaves the id as it was sends nothing.
    t.observations.changed({ op: 'updated', resource: 'config', tenant: 't1', version: 2 })
    await settle()
    expect(t.stream.sent).toHaveLength(1)

    t.change(B, { led: 'off' })
    // Another tenant's change, another device's: nothing.
    t.observations.changed({ op: 'updated', resource: 'config', tenant: 't2', version: 3 })
    t.observations.changed({ op: 'updated', resource: 'config', tenant: 't1', device: 'd9', version: 3 })
    await settle()
    expect(t.stream.sent).toHaveLength(1)
    t.observations.changed({ op: 'updated', resource: 'config', tenant: 't1', device: 'd1', version: 3 })
    await settle()
    expect(t.stream.sent[1]).toEqual({
      code: '2.05',
      payload: JSON.stringify({ configId: B, config: { led: 'off' } }),
      messageId: 101,
      options: { 'Content-Format': ['50'], ETag: [String(configEtag(B))] },
    })
    t.fates.get(101)!('ack')
    await settle()
    expect(t.observations.size).toBe(1)
    expect(t.delivered).toEqual([`t1/d1 ${A} coap`, `t1/d1 ${B} coap`])
  })

  it('ends on a reset of a notification and gives the slot back', async () => {
    const t = setup()
    t.observations.start('k', 'peer', t.stream, t.observer, 7)
    await settle()
    t.change(B, {})
    t.observations.changed({ op: 'updated', resource: 'config', tenant: 't1', version: 2 })
    await settle()
    t.fates.get(101)!('reset')
    await settle()
    expect(t.observations.size).toBe(0)
    expect(t.stream.ended).toBe(true)
    expect(t.released()).toBe(1)
  })

  it('ends with a final 4.03 when the device is disabled or the credential revoked', async () => {
    for (const cut of ['disabled', 'revoked'] as const) {
      const t = setup()
      t.observations.start('k', 'peer', t.stream, t.observer, 7)
      await settle()
      if (cut === 'disabled') {
        t.devices.set('d1', { id: 'd1', enabled: false, gateways: [] })
        t.observations.changed({ op: 'updated', resource: 'device', tenant: 't1', device: 'd1', version: 2 })
      } else {
        t.revoke()
        t.observations.changed({
          op: 'deleted',
          resource: 'credential',
          tenant: 't1',
          device: 'd1',
          id: 'c1',
          version: 1,
        })
      }
      await settle()
      expect(t.stream.sent.map((s) => s.code)).toEqual(['2.05', '4.03'])
      expect(t.stream.sent[1]!.options).toEqual({})
      expect(t.stream.ended).toBe(true)
      expect(t.observations.size).toBe(0)
      expect(t.released()).toBe(1)
    }
  })

  it('takes a retransmitted registration for the first one, and a new one replaces it', async () => {
    const t = setup()
    t.observations.start('k', 'peer', t.stream, t.observer, 7)
    const again = recordingStream(true)
    t.observations.start('k', 'peer', again, t.observer, 7)
    await settle()
    expect(t.released()).toBe(1)
    expect(again.sent).toEqual([])
    expect(t.stream.sent.map((s) => s.code)).toEqual(['2.05'])
    // Answered: the same token registers anew (RFC 7641 §4.1), the old observation ends.
    const renewed = recordingStream(true)
    t.observations.start('k', 'peer', renewed, t.observer, 8)
    await settle()
    expect(t.stream.ended).toBe(true)
    expect(renewed.sent.map((s) => s.code)).toEqual(['2.05'])
    expect(t.observations.stop('k')).toBe(true)
    expect(t.observations.size).toBe(0)
    expect(t.released()).toBe(3)
  })

  it('answers 5.03 without Observe and registers nothing when the delivery event is not durable', async () => {
    const t = setup({ outcome: { kind: 'unavailable', detail: 'bus down' } })
    t.observations.start('k', 'peer', t.stream, t.observer, 7)
    await settle()
    // Nothing written: ending the stream makes the library send the code alone.
    expect(t.stream.sent).toEqual([])
    expect(t.stream.statusCode).toBe('5.03')
    expect(t.stream.ended).toBe(true)
    expect(t.delivered).toEqual([])
    expect(t.released()).toBe(1)
  })
})
