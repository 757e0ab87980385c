// Observations of /v1/commands against a recording notification stream, a fake outlet and
// exchanges whose acknowledgements the test gives: the registration answer, one notification per
// command with its options, delivered on ACK, and the observation ended (sink detached, slot back)
// on a reset, a missing ACK, a deregistration or the library ending the stream.
import { describe, expect, it } from 'vitest'
import type { Fate } from '../../../adapters/coap/exchanges.ts'
import { createExchanges } from '../../../adapters/coap/exchanges.ts'
import {
  MAX_NOTIFICATION_PAYLOAD,
  createObservations,
  observationKey,
} from '../../../adapters/coap/observe.ts'
import { silentLogger } from '../../../core/log.ts'
import { command, createFakeOutlet } from '../http/fake-outlet.ts'
import { recordingStream } from './notification-stream.ts'

function setup(confirmable = true) {
  const outlet = createFakeOutlet()
  const fates = new Map<number, (fate: Fate) => void>()
  let id = 100
  const observations = createObservations({
    commands: outlet,
    exchanges: {
      nextId: () => ++id,
      expect: (_peer, messageId) => new Promise((resolve) => fates.set(messageId, resolve)),
    },
    log: silentLogger,
  })
  const stream = recordingStream(confirmable)
  let released = 0
  const observer = { tenant: 't1', device: 'd1', receiver: 'd1', release: () => void released++ }
  return { outlet, fates, observations, stream, observer, released: () => released }
}

describe('command observations', () => {
  it('answers the registration at once, then notifies each command in order, delivered on ACK', async () => {
    const { outlet, fates, observations, stream, observer } = setup()
    observations.start('k1', '127.0.0.1:9', stream, observer)
    expect(stream.sent).toEqual([{ code: '2.05', payload: '', messageId: undefined, options: {} }])
    expect(outlet.attached('t1', 'd1')).toBe(1)
    const first = command({ tenant: 't1', device: 'd1', name: 'open', requestId: 'r1' })
    const second = command({ tenant: 't1', device: 'd1', name: 'close', contentType: undefined })
    outlet.send(first)
    outlet.send(second)
    await new Promise((resolve) => setImmediate(resolve))
    // One at a time: the second waits for the first one's ACK.
    expect(stream.sent).toHaveLength(2)
    expect(stream.sent[1]).toEqual({
      code: '2.05',
      payload: first.payload.toString(),
      messageId: 101,
      options: { 'Content-Format': ['50'], 'Location-Query': ['command=open', 'request=r1'] },
    })
    fates.get(101)!('ack')
    await outlet.whenResults(1)
    await new Promise((resolve) => setImmediate(resolve))
    expect(stream.sent[2]).toEqual({
      code: '2.05',
      payload: second.payload.toString(),
      messageId: 102,
      options: { 'Location-Query': ['command=close'] },
    })
    fates.get(102)!('ack')
    await outlet.whenResults(2)
    expect(outlet.results.map((r) => [r.id, r.result.kind])).toEqual([
      [first.id, 'delivered'],
      [second.id, 'delivered'],
    ])
    expect(observations.size).toBe(1)
  })

  it('counts a NON notification delivered once sent', async () => {
    const { outlet, observations, stream, observer } = setup(false)
    observations.start('k1', '127.0.0.1:9', stream, observer)
    const item = command({ tenant: 't1', device: 'd1' })
    outlet.send(item)
    await outlet.whenResults(1)
    expect(outlet.results).toEqual([{ id: item.id, result: { kind: 'delivered' } }])
  })

  for (const fate of ['reset', 'timeout'] as const) {
    it(`ends the observation on a ${fate}: gone, detached, slot back, stream ended`, async () => {
      const { outlet, fates, observations, stream, observer, released } = setup()
      observations.start('k1', '127.0.0.1:9', stream, observer)
      const item = command({ tenant: 't1', device: 'd1' })
      outlet.send(item)
      await new Promise((resolve) => setImmediate(resolve))
      fates.get(101)!(fate)
      await outlet.whenResults(1)
      expect(outlet.results).toEqual([{ id: item.id, result: { kind: 'gone' } }])
      expect(outlet.attached('t1', 'd1')).toBe(0)
      expect(released()).toBe(1)
      expect(stream.ended).toBe(true)
      expect(observations.size).toBe(0)
      expect(outlet.queued('t1', 'd1')).toEqual([item])
    })
  }

  it('ends on deregistration and when the library ends the stream, once', () => {
    const { outlet, observations, stream, observer, released } = setup()
    observations.start('k1', 'p', stream, observer)
    expect(observations.stop('k1')).toBe(true)
    expect(observations.stop('k1')).toBe(false)
    expect(outlet.attached('t1', 'd1')).toBe(0)
    expect(released()).toBe(1)
    const other = recordingStream(true)
    observations.start('k2', 'p', other, observer)
    other.end()
    expect(observations.size).toBe(0)
    expect(released()).toBe(2)
  })

  it('replaces an observation registered again with the same key, and closes all on stop', () => {
    const { outlet, observations, stream, observer, released } = setup()
    observations.start('k1', 'p', stream, observer)
    const again = recordingStream(true)
    observations.start('k1', 'p', again, observer)
    expect(stream.ended).toBe(true)
    expect(outlet.attached('t1', 'd1')).toBe(1)
    observations.start('k2', 'p', recordingStream(true), observer)
    observations.close()
    expect(outlet.attached('t1', 'd1')).toBe(0)
    expect(released()).toBe(3)
  })

  it('fails a command too large for one notification', async () => {
    const { outlet, observations, stream, observer } = setup()
    observations.start('k1', 'p', stream, observer)
    const big = command({ tenant: 't1', device: 'd1', payload: Buffer.alloc(MAX_NOTIFICATION_PAYLOAD + 1) })
    outlet.send(big)
    await outlet.whenResults(1)
    expect(outlet.results[0]!.result).toEqual({ kind: 'failed', reason: 'too-large-for-coap-notification' })
    expect(stream.sent).toHaveLength(1)
  })

  it('keys observations by peer and token', () => {
    expect(observationKey('10.0.0.1:5683', Buffer.from([1, 2]))).toBe('10.0.0.1:5683#0102')
  })
})

describe('exchanges', () => {
  it('resolves an expected message on its ACK or RST from that peer only, and on clear', async () => {
    const exchanges = createExchanges()
    const a = exchanges.nextId()
    const b = exchanges.nextId()
    expect(b).not.toBe(a)
    const acked = exchanges.expect('p1', a, 60_000)
    const reset = exchanges.expect('p1', b, 60_000)
    const cleared = exchanges.expect('p2', a, 60_000)
    exchanges.answered('p3', a, false)
    expect(exchanges.pending).toBe(3)
    exchanges.answered('p1', a, false)
    exchanges.answered('p1', b, true)
    expect(await acked).toBe('ack')
    expect(await reset).toBe('reset')
    exchanges.clear()
    expect(await cleared).toBe('timeout')
    expect(exchanges.pending).toBe(0)
  })
})
