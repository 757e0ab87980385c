// The one-shot sink of a long poll (HTTP `?ct=`/GET /v1/command, CoAP `?ct=`), against the fake
// outlet and a fake clock: the first command ends the wait and is settled by the adapter, a second
// finds the sink used, time running out or the client leaving detaches it and leaves commands queued.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { DELIVERED, GONE, waitForCommand } from '../../adapters/command-wait.ts'
import type { CommandSink } from '../../commands/outlet.ts'
import { command, createFakeOutlet } from './http/fake-outlet.ts'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe.each(['http', 'coap'] as const)('waitForCommand (%s)', (protocol) => {
  const base = { protocol, tenant: 't1', device: 'd1', waitMs: 30_000, settleMs: 5_000 }

  it('hands over the first command; the delivery ends with what the adapter settles, detached first', async () => {
    const outlet = createFakeOutlet()
    const waiting = waitForCommand({ ...base, commands: outlet })
    expect(outlet.attached('t1', 'd1')).toBe(1)
    const first = command({ tenant: 't1', device: 'd1' })
    outlet.send(first)
    const handover = await waiting
    expect(handover?.command).toBe(first)
    expect(outlet.results).toEqual([])
    handover!.settle(DELIVERED)
    await outlet.whenResults(1)
    expect(outlet.results).toEqual([{ id: first.id, result: DELIVERED }])
    expect(outlet.attached('t1', 'd1')).toBe(0)
    // Later settles are ignored.
    handover!.settle(GONE)
    expect(outlet.results).toHaveLength(1)
  })

  it('delivers a command queued before the wait at once', async () => {
    const outlet = createFakeOutlet()
    const queued = command({ tenant: 't1', device: 'd1' })
    outlet.send(queued)
    const handover = await waitForCommand({ ...base, commands: outlet })
    expect(handover?.command.id).toBe(queued.id)
    handover!.settle(GONE)
    await outlet.whenResults(1)
    // Not delivered: it stays queued for the next poll.
    expect(outlet.queued('t1', 'd1').map((c) => c.id)).toEqual([queued.id])
  })

  it('answers a second deliver on the same sink gone, so the command stays queued', async () => {
    let sink: CommandSink | undefined
    const waiting = waitForCommand({
      ...base,
      commands: {
        attach: (_t, _d, s) => {
          sink = s
          return () => undefined
        },
      },
    })
    const one = sink!.deliver(command({ tenant: 't1', device: 'd1' }))
    expect(await sink!.deliver(command({ tenant: 't1', device: 'd1' }))).toEqual(GONE)
    ;(await waiting)!.settle(DELIVERED)
    expect(await one).toEqual(DELIVERED)
  })

  it('ends without a command when the time is up, and detaches', async () => {
    const outlet = createFakeOutlet()
    const waiting = waitForCommand({ ...base, commands: outlet })
    await vi.advanceTimersByTimeAsync(29_999)
    expect(outlet.attached('t1', 'd1')).toBe(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(await waiting).toBeUndefined()
    expect(outlet.attached('t1', 'd1')).toBe(0)
    const later = command({ tenant: 't1', device: 'd1' })
    outlet.send(later)
    expect(outlet.queued('t1', 'd1')).toEqual([later])
  })

  it('ends at once when the client goes away, and does not attach when it is gone already', async () => {
    const outlet = createFakeOutlet()
    const controller = new AbortController()
    const waiting = waitForCommand({ ...base, commands: outlet, signal: controller.signal })
    expect(outlet.attached('t1', 'd1')).toBe(1)
    controller.abort()
    expect(await waiting).toBeUndefined()
    expect(outlet.attached('t1', 'd1')).toBe(0)
    expect(await waitForCommand({ ...base, commands: outlet, signal: controller.signal })).toBeUndefined()
    expect(outlet.attached('t1', 'd1')).toBe(0)
  })

  it('counts a handover nobody settles as gone after settleMs', async () => {
    const outlet = createFakeOutlet()
    const waiting = waitForCommand({ ...base, commands: outlet })
    outlet.send(command({ tenant: 't1', device: 'd1' }))
    expect(await waiting).toBeDefined()
    await vi.advanceTimersByTimeAsync(5_000)
    expect(outlet.results.map((r) => r.result)).toEqual([GONE])
    expect(outlet.attached('t1', 'd1')).toBe(0)
  })

  it('copes with a sink that is delivered to while it is being attached', async () => {
    const item = command({ tenant: 't1', device: 'd1' })
    let detached = 0
    let result: Promise<unknown> | undefined
    const handover = await waitForCommand({
      ...base,
      commands: {
        attach: (_t, _d, sink) => {
          result = sink.deliver(item)
          return () => void detached++
        },
      },
    })
    expect(handover?.command).toBe(item)
    handover!.settle(DELIVERED)
    expect(await result).toEqual(DELIVERED)
    expect(detached).toBe(1)
  })
})
