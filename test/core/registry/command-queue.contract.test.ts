// The command queue contract, on PGlite and PostgreSQL: routing order per device, idempotent
// enqueue, a bound per device, claims with a lease that keep two holders apart and lapse, expiry
// claims, release and completion.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_QUEUED_PER_DEVICE } from '../../../core/registry/command-queue.ts'
import type { Command } from '../../../core/events/commands.ts'
import { uuidv7 } from '../../../core/events/ids.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import type { Engine } from './store-implementations.ts'
import { storeEngines } from './store-implementations.ts'
import { tenantId } from './store-fixtures.ts'

const engines = storeEngines()
const t0 = new Date('2026-05-01T10:00:00.000Z')
const at = (ms: number): Date => new Date(t0.getTime() + ms)

function command(tenant: string, device: string, over: Partial<Command> = {}): Command {
  return {
    id: uuidv7(),
    tenant,
    device,
    name: 'reboot',
    payload: Buffer.from([0, 1, 2, 255]),
    contentType: 'application/octet-stream',
    time: t0,
    expiresAt: at(60_000),
    origin: 'api',
    ...over,
  }
}

describe.each(engines)('CommandQueue: $name', ({ make }) => {
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

  it('keeps every field and hands a device its commands in routing order, once per id', async () => {
    const tenant = tenantId()
    const first = command(tenant, 'd1', {
      requestId: 'r-1',
      fport: 7,
      downlink: 'replace',
      traceparent: '00-' + 'a'.repeat(32) + '-' + 'b'.repeat(16) + '-01',
    })
    const second = command(tenant, 'd1', { name: 'second', contentType: undefined })
    const other = command(tenant, 'd2')
    for (const c of [first, second, other, first]) expect(await store.commands.enqueue(c)).toBe('queued')
    const claimed = await store.commands.claim(tenant, 'd1', 'a', at(1), 30_000, 10)
    expect(claimed.map((c) => c.id)).toEqual([first.id, second.id])
    const { seq: _seq, ...read } = claimed[0]!
    expect(read).toEqual({ ...first, contentType: 'application/octet-stream' })
    expect(claimed[1]!.contentType).toBeUndefined()
    expect(claimed[0]!.seq).toBeLessThan(claimed[1]!.seq)
    expect(await store.commands.pendingDevices(tenant, 10)).toEqual(['d1', 'd2'])
  })

  it('keeps a second holder off a device while a claim is live, and lets it in once the lease lapsed', async () => {
    const tenant = tenantId()
    const [c1, c2] = [command(tenant, 'd'), command(tenant, 'd')]
    await store.commands.enqueue(c1)
    await store.commands.enqueue(c2)
    expect((await store.commands.claim(tenant, 'd', 'a', at(0), 1_000, 1)).map((c) => c.id)).toEqual([c1.id])
    expect(await store.commands.claim(tenant, 'd', 'b', at(500), 1_000, 10)).toEqual([])
    // The holder itself may claim on (the rest of the device's queue).
    expect((await store.commands.claim(tenant, 'd', 'a', at(600), 1_000, 10)).map((c) => c.id)).toEqual([
      c1.id,
      c2.id,
    ])
    const later = await store.commands.claim(tenant, 'd', 'b', at(5_000), 1_000, 10)
    expect(later.map((c) => c.id)).toEqual([c1.id, c2.id])
  })

  it('gives back released commands and forgets completed ones', async () => {
    const tenant = tenantId()
    const [c1, c2] = [command(tenant, 'd'), command(tenant, 'd')]
    await store.commands.enqueue(c1)
    await store.commands.enqueue(c2)
    await store.commands.claim(tenant, 'd', 'a', at(0), 60_000, 10)
    await store.commands.complete([c1.id])
    // A release by someone else changes nothing.
    await store.commands.release('b', [c2.id])
    expect(await store.commands.claim(tenant, 'd', 'b', at(1), 60_000, 10)).toEqual([])
    await store.commands.release('a', [c2.id])
    expect((await store.commands.claim(tenant, 'd', 'b', at(2), 60_000, 10)).map((c) => c.id)).toEqual([
      c2.id,
    ])
    await store.commands.complete([c2.id])
    expect(await store.commands.pendingDevices(tenant, 10)).toEqual([])
  })

  it('never claims an expired command for delivery, and claims it once for expiry', async () => {
    const tenant = tenantId()
    const soon = command(tenant, 'd', { expiresAt: at(1_000) })
    const late = command(tenant, 'd', { expiresAt: at(100_000) })
    await store.commands.enqueue(soon)
    await store.commands.enqueue(late)
    expect((await store.commands.claim(tenant, 'd', 'a', at(2_000), 1_000, 10)).map((c) => c.id)).toEqual([
      late.id,
    ])
    await store.commands.release('a', [late.id])
    const expired = await store.commands.claimExpired('sweeper', at(2_000), 1_000, 1000)
    expect(expired.map((c) => c.id)).toContain(soon.id)
    expect(expired.map((c) => c.id)).not.toContain(late.id)
    expect(
      (await store.commands.claimExpired('other', at(2_500), 1_000, 1000)).map((c) => c.id),
    ).not.toContain(soon.id)
    await store.commands.complete([soon.id])
  })

  it(`refuses more than ${MAX_QUEUED_PER_DEVICE} waiting commands for one device`, async () => {
    const tenant = tenantId()
    const all = Array.from({ length: MAX_QUEUED_PER_DEVICE }, () => command(tenant, 'd'))
    for (const c of all) await store.commands.enqueue(c)
    expect(await store.commands.enqueue(command(tenant, 'd'))).toBe('full')
    // A redelivered known one is still reported queued, and other devices are not affected.
    expect(await store.commands.enqueue(all[0]!)).toBe('queued')
    expect(await store.commands.enqueue(command(tenant, 'other'))).toBe('queued')
    expect(await store.commands.depth()).toBeGreaterThanOrEqual(MAX_QUEUED_PER_DEVICE + 1)
    await store.commands.complete(all.map((c) => c.id))
  })

  it('refuses batch sizes and leases out of bounds', async () => {
    await expect(store.commands.claim('t', 'd', 'a', t0, 0, 1)).rejects.toMatchObject({
      code: 'REGISTRY_INVALID',
    })
    await expect(store.commands.claimExpired('a', t0, 1000, 0)).rejects.toMatchObject({
      code: 'REGISTRY_INVALID',
    })
  })
})
