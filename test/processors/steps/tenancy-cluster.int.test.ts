// The tenancy step's quota holds across processes: two steps, each with its own Redis connection
// and instance (as two processor processes have), share one tenant bucket; each alone would let a
// full burst through.
import { afterAll, describe, expect, it } from 'vitest'
import { inject } from 'vitest'
import type { Tenant } from '../../../core/registry/model.ts'
import { runSteps } from '../../../processors/step.ts'
import { createTenancy } from '../../../processors/steps/tenancy.ts'
import { redisHarness } from '../../core/cluster/implementations.ts'
import { event, noQuotas, versioned } from './events.ts'

const RATE = 50
const EVENTS = 400

const tenant: Tenant = {
  id: 'acme',
  enabled: true,
  oidc: null,
  quotas: { ...noQuotas, maxEventsPerSecond: RATE },
  authMethods: ['password'],
  trustAnchors: [],
  settings: {},
  ...versioned,
}

describe('tenancy quota across processes (Redis)', () => {
  const harness = redisHarness(inject('redisUrl'))
  afterAll(() => harness.destroy())

  it('lets one burst plus what refilled through, however the events are spread over processes', async () => {
    const [a, b] = [await harness.open(), await harness.open()]
    const steps = [a, b].map((cluster) => [
      {
        name: 'tenancy',
        run: createTenancy({
          tenant: async () => tenant,
          take: (k, r, burst, c) => cluster.take(k, r, burst, c),
        }),
      },
    ])
    const begin = performance.now()
    let accepted = 0
    for (let n = 0; n < EVENTS; n++) {
      const verdict = await runSteps(steps[n % 2]!, event(), { bytes: 8, now: new Date() })
      if (verdict.kind === 'accept') accepted++
      else expect(verdict).toMatchObject({ kind: 'reject', step: 'tenancy', reason: 'quota-events' })
    }
    const seconds = (performance.now() - begin) / 1000
    // The bucket starts full (RATE) and refills at RATE per second; two separate buckets would
    // have let 2 × RATE through at once.
    expect(accepted).toBeGreaterThanOrEqual(RATE)
    expect(accepted).toBeLessThanOrEqual(RATE + Math.ceil(RATE * seconds) + 1)
  })
})
