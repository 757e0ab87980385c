// Reserved channels, one table for every protocol: the shared rule (core/events/channels.ts), how
// each adapter's mapping reads the same channels (HTTP and CoAP paths, MQTT topics), and the seam's
// own guard that keeps a reserved channel off the bus whichever adapter passes it on.
import { describe, expect, it } from 'vitest'
import { createIngest } from '../../adapters/adapter.ts'
import { targetOf as coapTarget } from '../../adapters/coap/map.ts'
import { targetOf as httpTarget } from '../../adapters/http/map.ts'
import { routeTopic } from '../../adapters/mqtt/map.ts'
import type { EventBus } from '../../core/bus/bus.ts'
import { RESERVED_LEVELS, readTarget, reservedLevel } from '../../core/events/channels.ts'
import { topicNames } from '../../core/events/topics.ts'
import { silentLogger } from '../../core/log.ts'
import { RESERVED_CASES, RESPONSE_CHANNEL } from '../fixtures/reserved-channels.ts'

const segments = (channel: string): Buffer[] => ['v1', ...channel.split('/')].map((s) => Buffer.from(s))

describe('reserved channels: the shared rule', () => {
  it('reserves command, config, files and gw, and nothing else', () => {
    expect([...RESERVED_LEVELS].sort()).toEqual(['command', 'config', 'files', 'gw'])
    expect(reservedLevel('config/x')).toBe('config')
    expect(reservedLevel('gw')).toBe('gw')
    for (const free of ['commands/x', 'configs', 'file', 'gws/a', 'x/config', 'sensors/gw']) {
      expect(reservedLevel(free), free).toBeUndefined()
    }
  })

  it.each(RESERVED_CASES.map((c) => c.channel))('refuses %s as reserved', (channel) => {
    expect(readTarget(channel)).toMatchObject({ ok: false, reason: 'reserved' })
  })

  it('keeps the command response channel open, and reads other channels as telemetry', () => {
    expect(readTarget(RESPONSE_CHANNEL)).toEqual({
      ok: true,
      target: { kind: 'response', requestId: 'r-1', status: 200 },
    })
    expect(readTarget('sensors/t')).toEqual({ ok: true, target: { kind: 'telemetry', channel: 'sensors/t' } })
    expect(readTarget('a b')).toMatchObject({ ok: false, reason: 'invalid' })
  })
})

describe('reserved channels: every adapter reads them by the shared rule', () => {
  it.each(RESERVED_CASES)('$channel: HTTP 403, CoAP 4.03, MQTT $mqtt', ({ channel, mqtt }) => {
    expect(httpTarget(`/v1/${channel}`), 'HTTP').toMatchObject({ ok: false, reserved: true })
    expect(coapTarget(segments(channel)), 'CoAP').toMatchObject({ ok: false, reserved: true })
    const route = routeTopic(channel)
    if (mqtt === 'reserved') {
      expect(route, 'MQTT').toMatchObject({ ok: false, reason: 'reserved-topic' })
    } else {
      // The gateway form: the publish handler then checks that the device lists the sender.
      expect(route, 'MQTT').toEqual({
        ok: true,
        device: 'other',
        channel: channel.split('/').slice(2).join('/'),
      })
    }
  })

  it('reads the command response channel as a response on HTTP and CoAP', () => {
    const response = { kind: 'response', requestId: 'r-1', status: 200 }
    expect(httpTarget(`/v1/${RESPONSE_CHANNEL}`)).toEqual({ ok: true, value: response })
    expect(coapTarget(segments(RESPONSE_CHANNEL))).toEqual({ ok: true, target: response })
  })
})

describe('reserved channels: the adapter seam', () => {
  it.each(RESERVED_CASES.map((c) => c.channel))(
    'does not put telemetry on %s on the bus',
    async (channel) => {
      const published: unknown[] = []
      const bus: Pick<EventBus, 'publish'> = {
        publish: async (records) => {
          published.push(...records)
          return records.map((r, i) => ({ topic: r.topic, partition: 0, offset: i }))
        },
      }
      const ingest = createIngest({ bus, topics: topicNames('test'), log: silentLogger })
      const outcome = await ingest.publish({
        tenant: 'acme',
        device: 'd1',
        protocol: 'http',
        channel,
        payload: Buffer.from('x'),
      })
      expect(outcome).toMatchObject({ kind: 'rejected', reason: 'forbidden' })
      expect(published).toEqual([])
    },
  )
})
