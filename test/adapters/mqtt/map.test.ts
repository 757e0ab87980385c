// Topic → channel mapping: plain channels, the gateway form, reserved first levels and the
// channel rules (levels, charset, length).
import { describe, expect, it } from 'vitest'
import { deviceMessage, routeTopic } from '../../../adapters/mqtt/map.ts'
import { RESERVED_LEVELS } from '../../../core/events/channels.ts'

describe('routeTopic', () => {
  it.each([
    ['temperature', undefined, 'temperature'],
    ['sensors/room-1/temp_C.~', undefined, 'sensors/room-1/temp_C.~'],
    ['a/b/c/d/e/f/g/h', undefined, 'a/b/c/d/e/f/g/h'],
    ['gw/child-1/temp', 'child-1', 'temp'],
    ['gw/dev:1.a~b/x/y', 'dev:1.a~b', 'x/y'],
    ['commands/x', undefined, 'commands/x'],
  ])('routes %s to device %s, channel %s', (topic, device, channel) => {
    expect(routeTopic(topic)).toEqual({ ok: true, device, channel })
  })

  // `gw/x` is the gateway form without a channel: invalid rather than reserved (below).
  const reserved = [...RESERVED_LEVELS].flatMap((level) => [level, `${level}/x`, `gw/child/${level}/x`])
  it.each(reserved.filter((t) => t !== 'gw/x'))('refuses the reserved topic %s', (topic) => {
    expect(routeTopic(topic)).toMatchObject({ ok: false, reason: 'reserved-topic' })
  })

  it.each([
    'a/b/c/d/e/f/g/h/i',
    'a//b',
    '/a',
    'a/',
    'with space',
    'ünïcode',
    '$SYS/broker',
    `x${'y'.repeat(256)}`,
    'gw/',
    'gw/x',
    'gw/child',
    'gw/bad@device/x',
    'gw/child/',
    'gw/child/a/b/c/d/e/f/g/h/i',
  ])('refuses the invalid topic %j', (topic) => {
    expect(routeTopic(topic)).toMatchObject({ ok: false, reason: 'invalid-topic' })
  })
})

describe('deviceMessage', () => {
  const at = new Date('2026-01-01T00:00:00Z')

  it('is the connected device’s own message without a sender', () => {
    expect(deviceMessage('t', 'd', { device: undefined, channel: 'c' }, Buffer.from('x'), at)).toEqual({
      tenant: 't',
      device: 'd',
      sender: undefined,
      protocol: 'mqtt',
      channel: 'c',
      payload: Buffer.from('x'),
      time: at,
    })
  })

  it('names the gateway as sender when it publishes for another device, and not for itself', () => {
    expect(deviceMessage('t', 'gw', { device: 'child', channel: 'c' }, Buffer.alloc(0), at)).toMatchObject({
      device: 'child',
      sender: 'gw',
    })
    expect(
      deviceMessage('t', 'gw', { device: 'gw', channel: 'c' }, Buffer.alloc(0), at).sender,
    ).toBeUndefined()
  })
})
