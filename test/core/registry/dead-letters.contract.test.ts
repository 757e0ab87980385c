// The dead-letter part of the RegistryStore contract, on PGlite and PostgreSQL: letters of existing
// tenants only, each (partition, offset) once, newest first with cursors and filters, trimmed to the
// newest N, gone with their tenant, and every field held to its limit.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { DeadLetter } from '../../../core/registry/model.ts'
import { DEAD_LETTER_DATA_MAX_BYTES, DEAD_LETTER_FIELD_MAX } from '../../../core/registry/sql/dead-letters.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import type { Engine } from './store-implementations.ts'
import { storeEngines } from './store-implementations.ts'
import { failsWith, tenantId, tenantSpec } from './store-fixtures.ts'

const engines = storeEngines()

const base = Date.parse('2026-03-01T10:00:00.000Z')
const at = (seconds: number): string => new Date(base + seconds * 1000).toISOString()

function letter(
  tenant: string,
  partition: number,
  offset: number,
  over: Partial<DeadLetter> = {},
): DeadLetter {
  return {
    tenant,
    id: `ev-${partition}-${offset}`,
    partition,
    offset,
    device: 'd1',
    type: 'io.tributary.telemetry.v1',
    subject: 'temp',
    step: 'authorize',
    reason: 'device-disabled',
    detail: null,
    firstFailure: at(offset),
    deadLetteredAt: at(offset),
    contentType: 'application/json',
    data: Buffer.from(JSON.stringify({ offset })).toString('base64'),
    subscription: null,
    ...over,
  }
}

/** Every page of a listing, `limit` at a time. */
async function walk(
  store: RegistryStore,
  tenant: string,
  options: { limit: number; device?: string; reason?: string; subscription?: string },
): Promise<{ letters: DeadLetter[]; pages: number }> {
  const letters: DeadLetter[] = []
  let after: string | undefined
  let pages = 0
  for (;;) {
    const page = await store.listDeadLetters(tenant, { ...options, after })
    pages++
    letters.push(...page.items)
    if (page.next === null) return { letters, pages }
    expect(page.items).toHaveLength(options.limit)
    after = page.next
  }
}

const positions = (letters: readonly DeadLetter[]): string[] =>
  letters.map((l) => `${l.partition}:${l.offset}`)

describe.each(engines)('RegistryStore dead letters: $name', ({ make }) => {
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

  async function newTenant(): Promise<string> {
    const id = tenantId()
    await store.createTenant(id, tenantSpec())
    return id
  }

  it('records a letter and lists it back field for field', async () => {
    const tenant = await newTenant()
    const written = letter(tenant, 2, 40, {
      detail: '[{"path":"/t","message":"must be number"}]',
      firstFailure: '2026-02-28T09:00:00.000Z',
    })
    await store.recordDeadLetters([written])
    const page = await store.listDeadLetters(tenant)
    expect(page.next).toBeNull()
    expect(page.items).toEqual([written])
  })

  it('keeps nulls and an empty value apart', async () => {
    const tenant = await newTenant()
    await store.recordDeadLetters([
      letter(tenant, 0, 1, { device: null, type: null, subject: null, contentType: null, data: null }),
      letter(tenant, 0, 2, { data: '' }),
    ])
    const { items } = await store.listDeadLetters(tenant)
    expect(items.map((l) => l.data)).toEqual(['', null])
    expect(items[1]).toMatchObject({ device: null, type: null, subject: null, contentType: null })
  })

  it('keeps a (partition, offset) once: a redelivered batch changes nothing', async () => {
    const tenant = await newTenant()
    await store.recordDeadLetters([letter(tenant, 1, 5), letter(tenant, 1, 6)])
    await store.recordDeadLetters([
      letter(tenant, 1, 5, { reason: 'replayed', id: 'other' }),
      letter(tenant, 1, 6),
      letter(tenant, 1, 7),
      letter(tenant, 1, 7, { reason: 'twice-in-one-batch' }),
    ])
    const { items } = await store.listDeadLetters(tenant)
    expect(positions(items)).toEqual(['1:7', '1:6', '1:5'])
    expect(items.find((l) => l.offset === 5)).toMatchObject({ id: 'ev-1-5', reason: 'device-disabled' })
    expect(items.find((l) => l.offset === 7)?.reason).toBe('device-disabled')
  })

  it('skips letters of tenants that do not exist, keeping the rest of the batch', async () => {
    const tenant = await newTenant()
    const ghost = tenantId()
    await store.recordDeadLetters([letter(ghost, 0, 1), letter(tenant, 0, 2), letter(ghost, 0, 3)])
    expect(positions((await store.listDeadLetters(tenant)).items)).toEqual(['0:2'])
    expect((await store.listDeadLetters(ghost)).items).toEqual([])
    await store.recordDeadLetters([letter(ghost, 0, 4)])
    await store.recordDeadLetters([])
    expect((await store.listDeadLetters(ghost)).items).toEqual([])
  })

  it("lists one tenant's letters only, newest first, ties broken by partition and offset", async () => {
    const [a, b] = [await newTenant(), await newTenant()]
    const same = at(100)
    await store.recordDeadLetters([
      letter(a, 0, 1, { deadLetteredAt: at(5) }),
      letter(a, 1, 9, { deadLetteredAt: same }),
      letter(a, 0, 3, { deadLetteredAt: same }),
      letter(a, 0, 4, { deadLetteredAt: same }),
      letter(a, 2, 0, { deadLetteredAt: at(50) }),
      letter(b, 0, 2, { deadLetteredAt: at(500) }),
    ])
    expect(positions((await store.listDeadLetters(a)).items)).toEqual(['1:9', '0:4', '0:3', '2:0', '0:1'])
    expect(positions((await store.listDeadLetters(b)).items)).toEqual(['0:2'])
  })

  it('pages with an opaque cursor, every letter once, even across equal times', async () => {
    const tenant = await newTenant()
    const letters: DeadLetter[] = []
    for (let i = 0; i < 23; i++) {
      letters.push(letter(tenant, i % 3, i, { deadLetteredAt: at(Math.floor(i / 4)) }))
    }
    await store.recordDeadLetters(letters)
    const all = (await store.listDeadLetters(tenant, { limit: 1000 })).items
    expect(all).toHaveLength(23)
    const { letters: paged, pages } = await walk(store, tenant, { limit: 5 })
    expect(pages).toBe(5)
    expect(positions(paged)).toEqual(positions(all))
    const first = await store.listDeadLetters(tenant, { limit: 5 })
    expect(first.next).toMatch(/^[A-Za-z0-9_-]+$/)
    const exact = await store.listDeadLetters(tenant, { limit: 23 })
    expect(exact.next).toBeNull()
  })

  it('refuses a cursor it did not make, and a limit out of range', async () => {
    const tenant = await newTenant()
    for (const after of [
      '',
      'not a cursor',
      Buffer.from('2026 1 2').toString('base64url'),
      'x'.repeat(2000),
    ]) {
      await failsWith(store.listDeadLetters(tenant, { after }), 'REGISTRY_INVALID')
    }
    const deviceCursor = Buffer.from('sensor-1').toString('base64url')
    await failsWith(store.listDeadLetters(tenant, { after: deviceCursor }), 'REGISTRY_INVALID')
    for (const limit of [0, 1001, 2.5]) {
      await failsWith(store.listDeadLetters(tenant, { limit }), 'REGISTRY_INVALID')
    }
  })

  it('filters by device and by reason, alone, together and across pages', async () => {
    const tenant = await newTenant()
    const letters: DeadLetter[] = []
    for (let i = 0; i < 12; i++) {
      letters.push(
        letter(tenant, 0, i, {
          device: i % 2 === 0 ? 'even' : 'odd',
          reason: i % 3 === 0 ? 'schema-invalid' : 'device-disabled',
        }),
      )
    }
    await store.recordDeadLetters(letters)
    const even = await walk(store, tenant, { limit: 2, device: 'even' })
    expect(even.letters.map((l) => l.offset)).toEqual([10, 8, 6, 4, 2, 0])
    const invalid = await walk(store, tenant, { limit: 3, reason: 'schema-invalid' })
    expect(invalid.letters.map((l) => l.offset)).toEqual([9, 6, 3, 0])
    const both = await store.listDeadLetters(tenant, { device: 'even', reason: 'schema-invalid' })
    expect(both.items.map((l) => l.offset)).toEqual([6, 0])
    expect((await store.listDeadLetters(tenant, { device: 'nobody' })).items).toEqual([])
  })

  it("keeps a webhook letter's subscription and filters by it, alone, with others and across pages", async () => {
    const [tenant, other] = [await newTenant(), await newTenant()]
    const letters: DeadLetter[] = []
    for (let i = 0; i < 9; i++) {
      letters.push(
        letter(tenant, 0, i, {
          step: i % 3 === 2 ? 'validate' : 'webhook',
          reason: i % 2 === 0 ? 'retries-exhausted' : 'rejected',
          subscription: i % 3 === 0 ? 'sub-a' : i % 3 === 1 ? 'sub-b' : null,
        }),
      )
    }
    letters.push(letter(other, 0, 0, { step: 'webhook', subscription: 'sub-a' }))
    await store.recordDeadLetters(letters)
    const a = await walk(store, tenant, { limit: 2, subscription: 'sub-a' })
    expect(a.letters.map((l) => l.offset)).toEqual([6, 3, 0])
    expect(a.letters.every((l) => l.tenant === tenant && l.subscription === 'sub-a')).toBe(true)
    const b = await store.listDeadLetters(tenant, { subscription: 'sub-b', reason: 'rejected' })
    expect(b.items.map((l) => l.offset)).toEqual([7, 1])
    expect((await store.listDeadLetters(tenant, { subscription: 'sub-c' })).items).toEqual([])
    const all = await store.listDeadLetters(tenant)
    expect(all.items.filter((l) => l.subscription === null).map((l) => l.offset)).toEqual([8, 5, 2])
    expect((await store.listDeadLetters(other, { subscription: 'sub-a' })).items).toHaveLength(1)
  })

  it('trims to the newest N of one tenant, leaving other tenants alone', async () => {
    const [tenant, other] = [await newTenant(), await newTenant()]
    const letters: DeadLetter[] = []
    for (let i = 0; i < 10; i++) letters.push(letter(tenant, i % 2, i), letter(other, 0, i))
    await store.recordDeadLetters(letters)
    await store.trimDeadLetters(tenant, 4)
    expect(positions((await store.listDeadLetters(tenant)).items)).toEqual(['1:9', '0:8', '1:7', '0:6'])
    await store.trimDeadLetters(tenant, 4)
    await store.trimDeadLetters(tenant, 100)
    expect((await store.listDeadLetters(tenant)).items).toHaveLength(4)
    expect((await store.listDeadLetters(other)).items).toHaveLength(10)
    await store.trimDeadLetters(tenant, 0)
    expect((await store.listDeadLetters(tenant)).items).toEqual([])
    await store.trimDeadLetters(tenantId(), 1)
    for (const keep of [-1, 1.5, Number.NaN]) {
      await failsWith(store.trimDeadLetters(tenant, keep), 'REGISTRY_INVALID')
    }
  })

  it('deletes the letters with their tenant: a tenant created again starts empty', async () => {
    const tenant = await newTenant()
    await store.recordDeadLetters([letter(tenant, 0, 1), letter(tenant, 0, 2)])
    expect((await store.listDeadLetters(tenant)).items).toHaveLength(2)
    await store.deleteTenant(tenant)
    expect((await store.listDeadLetters(tenant)).items).toEqual([])
    await store.createTenant(tenant, tenantSpec())
    expect((await store.listDeadLetters(tenant)).items).toEqual([])
    await store.recordDeadLetters([letter(tenant, 0, 1)])
    expect(positions((await store.listDeadLetters(tenant)).items)).toEqual(['0:1'])
  })

  it('holds every field to its limit and stores a value over 64 KiB as null', async () => {
    const tenant = await newTenant()
    const long = (n: number) => 'x'.repeat(n + 10)
    const max = DEAD_LETTER_FIELD_MAX
    await store.recordDeadLetters([
      letter(tenant, 0, 1, {
        id: long(max.id),
        device: long(max.device),
        type: long(max.type),
        subject: long(max.subject),
        step: long(max.step),
        reason: long(max.reason),
        detail: long(max.detail),
        contentType: long(max.contentType),
        subscription: long(max.subscription),
        data: Buffer.alloc(DEAD_LETTER_DATA_MAX_BYTES, 7).toString('base64'),
      }),
      letter(tenant, 0, 2, { data: Buffer.alloc(DEAD_LETTER_DATA_MAX_BYTES + 1).toString('base64') }),
      letter(tenant, 0, 3, { device: 'nul\0byte', detail: 'lone \ud800 surrogate', subject: 'ünï' }),
    ])
    const items = (await store.listDeadLetters(tenant)).items
    const [nul, tooBig, full] = items
    expect(full).toMatchObject({
      id: 'x'.repeat(max.id),
      device: 'x'.repeat(max.device),
      type: 'x'.repeat(max.type),
      subject: 'x'.repeat(max.subject),
      step: 'x'.repeat(max.step),
      reason: 'x'.repeat(max.reason),
      detail: 'x'.repeat(max.detail),
      contentType: 'x'.repeat(max.contentType),
      subscription: 'x'.repeat(max.subscription),
    })
    expect(Buffer.from(full!.data!, 'base64')).toEqual(Buffer.alloc(DEAD_LETTER_DATA_MAX_BYTES, 7))
    expect(tooBig?.data).toBeNull()
    expect(nul).toMatchObject({ device: 'nul\uFFFDbyte', detail: 'lone \uFFFD surrogate', subject: 'ünï' })
  })

  it('keeps times to the millisecond and refuses a letter whose time is not one', async () => {
    const tenant = await newTenant()
    await store.recordDeadLetters([
      letter(tenant, 0, 1, {
        firstFailure: '2026-03-01T11:00:00.123456+01:00',
        deadLetteredAt: '2026-03-01T10:00:00.987654Z',
      }),
    ])
    const [got] = (await store.listDeadLetters(tenant)).items
    expect(got).toMatchObject({
      firstFailure: '2026-03-01T10:00:00.123Z',
      deadLetteredAt: '2026-03-01T10:00:00.987Z',
    })
    await failsWith(
      store.recordDeadLetters([letter(tenant, 0, 2, { firstFailure: 'yesterday' })]),
      'REGISTRY_INVALID',
    )
    await failsWith(store.recordDeadLetters([letter(tenant, -1, 2)]), 'REGISTRY_INVALID')
    expect((await store.listDeadLetters(tenant)).items).toHaveLength(1)
  })
})
