// The re-drive part of the RegistryStore contract, on PGlite and PostgreSQL: a request marks one
// subscription's webhook letters (all, or by id) and records a change of the subscription; engines
// claim them oldest first under a lease, each letter once; finishing hides, gives back or drops.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DeadLetter, RedriveClaim } from '../../../core/registry/model.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import { waitUntil } from '../../helpers/wait.ts'
import type { Engine } from './store-implementations.ts'
import { storeEngines } from './store-implementations.ts'
import { failsWith, tenantId, tenantSpec } from './store-fixtures.ts'
import { subscription } from './store-subscription-cases.ts'

const engines = storeEngines()

const base = Date.parse('2026-03-01T10:00:00.000Z')
const at = (seconds: number): string => new Date(base + seconds * 1000).toISOString()

function letter(
  tenant: string,
  sub: string | null,
  offset: number,
  over: Partial<DeadLetter> = {},
): DeadLetter {
  return {
    tenant,
    id: `ev-${offset}`,
    partition: offset % 2,
    offset,
    device: 'd1',
    type: 'io.tributary.telemetry.v1',
    subject: 'temp',
    step: sub === null ? 'authorize' : 'webhook',
    reason: sub === null ? 'device-disabled' : 'retries-exhausted',
    detail: null,
    firstFailure: at(offset),
    deadLetteredAt: at(offset),
    contentType: 'application/json',
    data: null,
    subscription: sub,
    ...over,
  }
}

const offsets = (items: ReadonlyArray<{ offset: number }>): number[] => items.map((l) => l.offset)

describe.each(engines)('RegistryStore dead-letter re-drive: $name', ({ make }) => {
  let engine: Engine
  let store: RegistryStore

  beforeAll(async () => {
    engine = make()
    store = await engine.open()
  })

  afterAll(async () => {
    await store.close()
    await engine.destroy()
  })

  /** A tenant with two subscriptions: letters 1-4 of `id`, 5 of `other`, 6 of the processors. */
  async function setup(): Promise<{ tenant: string; id: string; other: string }> {
    const tenant = tenantId()
    await store.createTenant(tenant, tenantSpec())
    const { id } = await store.createSubscription(subscription(tenant))
    const { id: other } = await store.createSubscription(subscription(tenant))
    await store.recordDeadLetters([
      letter(tenant, id, 1),
      letter(tenant, id, 2),
      letter(tenant, id, 3),
      letter(tenant, id, 4, { id: 'ev-twice' }),
      letter(tenant, other, 5),
      letter(tenant, null, 6),
    ])
    return { tenant, id, other }
  }

  const drain = async (): Promise<void> => {
    const last = (await store.pendingChanges(10_000)).at(-1)
    if (last !== undefined) await store.markPublished(last.seq)
  }

  const claimAll = (tenant: string, id: string, lease = 60_000): Promise<RedriveClaim[]> =>
    store.claimRedrives(tenant, id, 100, lease)

  it('marks every letter of the subscription and records a change of it at its version', async () => {
    const { tenant, id } = await setup()
    await store.setSubscriptionState(tenant, id, 'paused')
    await drain()
    expect(await store.requestRedrive(tenant, id)).toBe(4)
    expect((await store.pendingChanges(100)).map((e) => e.change)).toEqual([
      { op: 'updated', resource: 'subscription', tenant, id, version: 2 },
    ])
    // The request is no new version of the subscription.
    expect((await store.getSubscription(tenant, id))?.version).toBe(2)
    expect(await store.pendingRedrives()).toContainEqual({ tenant, subscription: id })
  })

  it('marks only the letters of the given ids, and none of other subscriptions or steps', async () => {
    const { tenant, id } = await setup()
    expect(await store.requestRedrive(tenant, id, ['ev-2', 'ev-twice', 'ev-5', 'ev-6', 'nope'])).toBe(2)
    expect(offsets(await claimAll(tenant, id))).toEqual([2, 4])
    expect(await store.requestRedrive(tenant, id, [])).toBe(0)
  })

  it('refuses an unknown subscription (404) and a disabled one (409), writing no change', async () => {
    const { tenant, id } = await setup()
    await store.setSubscriptionState(tenant, id, 'disabled')
    await drain()
    await failsWith(store.requestRedrive(tenant, 'no-such-subscription'), 'REGISTRY_NOT_FOUND')
    await failsWith(store.requestRedrive(tenant, id), 'REGISTRY_CONFLICT')
    expect(await store.pendingChanges(100)).toEqual([])
    expect(await claimAll(tenant, id)).toEqual([])
  })

  it('hands each requested letter to one claimer, oldest first, in batches of the limit', async () => {
    const { tenant, id } = await setup()
    await store.requestRedrive(tenant, id)
    const first = await store.claimRedrives(tenant, id, 3, 60_000)
    expect(first).toEqual(
      [1, 2, 3].map((n) => ({ tenant, subscription: id, id: `ev-${n}`, partition: n % 2, offset: n })),
    )
    expect(offsets(await claimAll(tenant, id))).toEqual([4])
    expect(await claimAll(tenant, id)).toEqual([])
    // Every letter is held: nothing is pending for a sweep.
    expect(await store.pendingRedrives()).not.toContainEqual({ tenant, subscription: id })
    // Asked again while held: the claims stand (and the count says what is not re-driven yet).
    expect(await store.requestRedrive(tenant, id)).toBe(4)
    expect(await claimAll(tenant, id)).toEqual([])
  })

  it('claims at once from engines racing: every letter exactly once', async () => {
    const { tenant, id } = await setup()
    await store.requestRedrive(tenant, id)
    const claimed = await Promise.all([1, 2, 3, 4].map(() => store.claimRedrives(tenant, id, 1, 60_000)))
    expect(offsets(claimed.flat()).sort()).toEqual([1, 2, 3, 4])
  })

  it('takes over a letter whose lease ran out', async () => {
    const { tenant, id } = await setup()
    await store.requestRedrive(tenant, id, ['ev-1'])
    expect(offsets(await claimAll(tenant, id, 1))).toEqual([1])
    let again: RedriveClaim[] = []
    await waitUntil(async () => (again = await claimAll(tenant, id)).length === 1, {
      message: () => 'the expired claim taken again',
    })
    expect(offsets(again)).toEqual([1])
  })

  it('hides delivered and dead-lettered letters, gives released ones back, keeps expired ones listed', async () => {
    const { tenant, id } = await setup()
    await store.requestRedrive(tenant, id)
    const [one, two, three, four] = await claimAll(tenant, id)
    await store.finishRedrive(one!, 'delivered')
    await store.finishRedrive(two!, 'dead-lettered')
    await store.finishRedrive(three!, 'released')
    await store.finishRedrive(four!, 'expired')
    const listed = await store.listDeadLetters(tenant, { subscription: id })
    expect(offsets(listed.items)).toEqual([4, 3])
    expect(offsets((await store.listDeadLetters(tenant)).items)).toEqual([6, 5, 4, 3])
    // The released letter is claimable again; the expired one only after a new request.
    expect(offsets(await claimAll(tenant, id))).toEqual([3])
    expect(await store.requestRedrive(tenant, id)).toBe(2)
    expect(offsets(await claimAll(tenant, id))).toEqual([4])
    // A re-driven letter stays re-driven: finishing it again or asking again changes nothing.
    await store.finishRedrive(one!, 'released')
    expect(offsets((await store.listDeadLetters(tenant, { subscription: id })).items)).toEqual([4, 3])
  })

  it('keeps a re-driven letter hidden when the index records its position again', async () => {
    const { tenant, id } = await setup()
    await store.requestRedrive(tenant, id, ['ev-1'])
    const [claim] = await claimAll(tenant, id)
    await store.finishRedrive(claim!, 'delivered')
    await store.recordDeadLetters([letter(tenant, id, 1)])
    expect(offsets((await store.listDeadLetters(tenant, { subscription: id })).items)).toEqual([4, 3, 2])
  })

  it('refuses a claim limit or lease that is not a positive whole number', async () => {
    const { tenant, id } = await setup()
    await failsWith(store.claimRedrives(tenant, id, 0, 1000), 'REGISTRY_INVALID')
    await failsWith(store.claimRedrives(tenant, id, 1, 1.5), 'REGISTRY_INVALID')
  })
})
