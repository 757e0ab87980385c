// The protocol-neutral configuration steps every adapter calls (adapters/device-config.ts), with
// doubles at their two ports (the ingest and the registry service): the order of event, write and
// record, and what is left undone when a step fails.
import { describe, expect, it } from 'vitest'
import type { EventInput } from '../../core/events/build.ts'
import type { Outcome } from '../../adapters/adapter.ts'
import { deliverConfig, reportConfigApplied } from '../../adapters/device-config.ts'
import { TributaryError } from '../../core/errors.ts'

const who = { tenant: 't1', device: 'd1', sender: 'gw1', protocol: 'mqtt' as const }

function doubles(eventOutcome: Outcome = { kind: 'accepted' }) {
  const steps: string[] = []
  const events: EventInput[] = []
  return {
    steps,
    events,
    ingest: {
      event: async (input: EventInput): Promise<Outcome> => {
        steps.push(`event ${input.kind}`)
        events.push(input)
        return eventOutcome
      },
    },
    config: {
      configDelivered: async (_t: string, _d: string, id: string) => void steps.push(`record ${id}`),
      configApplied: async (_t: string, _d: string, body: unknown) => {
        const { configId } = body as { configId?: unknown }
        if (typeof configId !== 'string')
          throw new TributaryError('REGISTRY_INVALID', 'configId must be a string')
        steps.push(`applied ${configId}`)
        return { configId, statusCode: 200, reasonPhrase: null }
      },
    },
  }
}

describe('deliverConfig', () => {
  it('writes between the event and the record when the adapter pushes', async () => {
    const d = doubles()
    const outcome = await deliverConfig(d, who, 'c1', async () => {
      d.steps.push('write')
      return true
    })
    expect(outcome).toEqual({ kind: 'accepted' })
    expect(d.steps).toEqual(['event config.delivered', 'write', 'record c1'])
    expect(d.events[0]).toMatchObject({ tenant: 't1', device: 'd1', sender: 'gw1', protocol: 'mqtt' })
  })

  it('records nothing and answers unavailable when the write fails', async () => {
    const d = doubles()
    const outcome = await deliverConfig(d, who, 'c1', async () => false)
    expect(outcome.kind).toBe('unavailable')
    expect(d.steps).toEqual(['event config.delivered'])
  })

  it('neither writes nor records when the event is not taken', async () => {
    const refused: Outcome = { kind: 'unavailable', detail: 'bus down' }
    const d = doubles(refused)
    let wrote = false
    const outcome = await deliverConfig(d, who, 'c1', async () => (wrote = true))
    expect(outcome).toEqual(refused)
    expect(wrote).toBe(false)
    expect(d.steps).toEqual(['event config.delivered'])
  })

  it('records right after the event when the adapter answers a request (no write step)', async () => {
    const d = doubles()
    expect(await deliverConfig(d, { ...who, sender: 'd1' }, 'c2')).toEqual({ kind: 'accepted' })
    expect(d.steps).toEqual(['event config.delivered', 'record c2'])
    expect(d.events[0]?.sender).toBeUndefined()
  })
})

describe('reportConfigApplied', () => {
  it('records the report, then publishes config.applied', async () => {
    const d = doubles()
    expect(await reportConfigApplied(d, who, { configId: 'c1' })).toEqual({ kind: 'accepted' })
    expect(d.steps).toEqual(['applied c1', 'event config.applied'])
  })

  it('answers rejected/invalid for a malformed report and publishes nothing', async () => {
    const d = doubles()
    const outcome = await reportConfigApplied(d, who, { configId: 7 })
    expect(outcome).toEqual({ kind: 'rejected', reason: 'invalid', detail: 'configId must be a string' })
    expect(d.steps).toEqual([])
  })
})
