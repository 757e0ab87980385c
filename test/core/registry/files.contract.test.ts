// The file metadata contract, on PGlite and PostgreSQL: pending uploads behind a hashed one-time
// token, completion recorded with its event in the event outbox (which survives a restart), and
// the relay that publishes those events to the bus.
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { BusMessage } from '../../../core/bus/bus.ts'
import { createEmbeddedBus } from '../../../core/bus/embedded/index.ts'
import { isTributaryError } from '../../../core/errors.ts'
import { buildFileUploadedEvent, eventTypes } from '../../../core/events/build.ts'
import { decode } from '../../../core/events/kafka-codec.ts'
import { silentLogger } from '../../../core/log.ts'
import type { BlobSweep, NewFileUpload } from '../../../core/registry/files.ts'
import { createEventOutboxRelay } from '../../../core/registry/outbox.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import { waitUntil } from '../../helpers/wait.ts'
import { deviceSpec, tenantId, tenantSpec } from './store-fixtures.ts'
import type { Engine } from './store-implementations.ts'
import { storeEngines } from './store-implementations.ts'

const engines = storeEngines()
const t0 = new Date('2026-05-01T10:00:00.000Z')
const at = (ms: number): Date => new Date(t0.getTime() + ms)
const hash = (text: string): string => createHash('sha256').update(text).digest('hex')
const fileId = (): string => randomBytes(12).toString('base64url')

function upload(tenant: string, device: string, over: Partial<NewFileUpload> = {}): NewFileUpload {
  return {
    tenant,
    id: fileId(),
    device,
    name: 'logs/boot.txt',
    size: 42,
    sha256: undefined,
    contentType: 'text/plain',
    tokenHash: hash(randomBytes(16).toString('hex')),
    createdAt: t0,
    expiresAt: at(60_000),
    ...over,
  }
}

function uploadedEvent(tenant: string, device: string, id: string) {
  return buildFileUploadedEvent({
    tenant,
    device,
    protocol: 'http',
    file: { id, name: 'logs/boot.txt', size: 42, sha256: hash('body'), contentType: 'text/plain' },
    dataref: `s3://files/${tenant}/${device}/${id}`,
    time: at(1000),
  })
}

describe.each(engines)('FileStore: $name', ({ make }) => {
  let engine: Engine
  let store: RegistryStore
  let tenant: string

  beforeAll(async () => {
    engine = make()
    store = await engine.open()
    tenant = tenantId()
    await store.createTenant(tenant, tenantSpec())
    await store.createDevice(tenant, 'd1', deviceSpec())
  })

  afterAll(async () => {
    await store.close()
    await engine.destroy()
  })

  async function drain(): Promise<void> {
    const pending = await store.files.pendingEvents(1000)
    const last = pending.at(-1)
    if (last !== undefined) await store.files.markEventsPublished(last.seq)
  }

  it('records a pending upload of an existing device only', async () => {
    const pending = await store.files.createUpload(upload(tenant, 'd1', { sha256: hash('x') }))
    expect(pending).toMatchObject({ state: 'pending', size: 42, sha256: hash('x'), uploadedAt: undefined })
    expect(await store.files.get(tenant, pending.id)).toEqual(pending)
    const err = await store.files.createUpload(upload(tenant, 'nobody')).catch((e: unknown) => e)
    expect(isTributaryError(err, 'REGISTRY_NOT_FOUND')).toBe(true)
  })

  it('gives a token its upload once, never after it lapsed, and to one of two racing claims', async () => {
    const fresh = upload(tenant, 'd1')
    await store.files.createUpload(fresh)
    expect(await store.files.claimUpload(hash('unknown'), fresh.id, at(1))).toBeUndefined()
    // The token of another upload: refused, and the token stays good for its own.
    expect(await store.files.claimUpload(fresh.tokenHash, fileId(), at(1))).toBeUndefined()
    expect((await store.files.claimUpload(fresh.tokenHash, fresh.id, at(1)))?.id).toBe(fresh.id)
    expect(await store.files.claimUpload(fresh.tokenHash, fresh.id, at(2))).toBeUndefined()

    const lapsed = upload(tenant, 'd1')
    await store.files.createUpload(lapsed)
    expect(await store.files.claimUpload(lapsed.tokenHash, lapsed.id, at(60_000))).toBeUndefined()

    const raced = upload(tenant, 'd1')
    await store.files.createUpload(raced)
    const claims = await Promise.all(
      [1, 2, 3].map(() => store.files.claimUpload(raced.tokenHash, raced.id, at(1))),
    )
    expect(claims.filter((claim) => claim !== undefined)).toHaveLength(1)
  })

  it('completes a claimed upload together with its event, and only a claimed one', async () => {
    await drain()
    const unclaimed = upload(tenant, 'd1')
    await store.files.createUpload(unclaimed)
    const early = await store.files
      .completeUpload(
        tenant,
        unclaimed.id,
        { sha256: hash('body'), uploadedAt: at(1000) },
        uploadedEvent(tenant, 'd1', unclaimed.id),
      )
      .catch((e: unknown) => e)
    expect(isTributaryError(early, 'REGISTRY_NOT_FOUND')).toBe(true)
    expect(await store.files.pendingEvents(10)).toEqual([])

    await store.files.claimUpload(unclaimed.tokenHash, unclaimed.id, at(1))
    const event = uploadedEvent(tenant, 'd1', unclaimed.id)
    const done = await store.files.completeUpload(
      tenant,
      unclaimed.id,
      { sha256: hash('body'), uploadedAt: at(1000) },
      event,
    )
    expect(done).toMatchObject({
      state: 'uploaded',
      sha256: hash('body'),
      uploadedAt: at(1000),
      expiresAt: undefined,
    })
    const [entry, ...rest] = await store.files.pendingEvents(10)
    expect(rest).toEqual([])
    expect(entry?.event).toEqual(event)
    expect(entry?.event.attributes['dataref']).toBe(`s3://files/${tenant}/d1/${unclaimed.id}`)
  })

  it("drops a tenant's lapsed pending uploads, spent or not, in batches, and nothing else", async () => {
    const swept = tenantId()
    await store.createTenant(swept, tenantSpec())
    await store.createDevice(swept, 'd1', deviceSpec())
    const lapsed = [upload(swept, 'd1'), upload(swept, 'd1'), upload(swept, 'd1')]
    for (const file of lapsed) await store.files.createUpload(file)
    await store.files.claimUpload(lapsed[0]!.tokenHash, lapsed[0]!.id, at(1))
    const fresh = upload(swept, 'd1', { expiresAt: at(600_000) })
    await store.files.createUpload(fresh)
    const done = upload(swept, 'd1')
    await store.files.createUpload(done)
    await store.files.claimUpload(done.tokenHash, done.id, at(1))
    await store.files.completeUpload(
      swept,
      done.id,
      { sha256: hash('body'), uploadedAt: at(2) },
      uploadedEvent(swept, 'd1', done.id),
    )
    const elsewhere = upload(tenant, 'd1')
    await store.files.createUpload(elsewhere)

    const first = await store.files.dropLapsedUploads(swept, at(120_000), 2)
    const second = await store.files.dropLapsedUploads(swept, at(120_000), 2)
    expect([...first, ...second].map((f) => f.id).sort()).toEqual(lapsed.map((f) => f.id).sort())
    expect(first).toHaveLength(2)
    expect(await store.files.dropLapsedUploads(swept, at(120_000), 2)).toEqual([])
    expect((await store.files.get(swept, fresh.id))?.state).toBe('pending')
    expect((await store.files.get(swept, done.id))?.state).toBe('uploaded')
    expect((await store.files.get(tenant, elsewhere.id))?.state).toBe('pending')
  })

  it('forgets an abandoned pending upload but never an uploaded file', async () => {
    const abandoned = upload(tenant, 'd1')
    await store.files.createUpload(abandoned)
    await store.files.claimUpload(abandoned.tokenHash, abandoned.id, at(1))
    await store.files.abandonUpload(tenant, abandoned.id)
    expect(await store.files.get(tenant, abandoned.id)).toBeUndefined()

    const kept = upload(tenant, 'd1')
    await store.files.createUpload(kept)
    await store.files.claimUpload(kept.tokenHash, kept.id, at(1))
    await store.files.completeUpload(
      tenant,
      kept.id,
      { sha256: hash('body'), uploadedAt: at(1000) },
      uploadedEvent(tenant, 'd1', kept.id),
    )
    await store.files.abandonUpload(tenant, kept.id)
    expect((await store.files.get(tenant, kept.id))?.state).toBe('uploaded')
  })

  it('lists uploaded files page by page, by device and name prefix, and removes one', async () => {
    const listed = tenantId()
    await store.createTenant(listed, tenantSpec())
    await store.createDevice(listed, 'd1', deviceSpec())
    await store.createDevice(listed, 'd2', deviceSpec())
    const ids: string[] = []
    for (const [device, name] of [
      ['d1', 'logs/a.txt'],
      ['d1', 'logs/b.txt'],
      ['d2', 'logs/c.txt'],
      ['d2', 'images/d.jpg'],
    ] as const) {
      const file = upload(listed, device, { name })
      await store.files.createUpload(file)
      await store.files.claimUpload(file.tokenHash, file.id, at(1))
      await store.files.completeUpload(
        listed,
        file.id,
        { sha256: hash('body'), uploadedAt: at(2) },
        uploadedEvent(listed, device, file.id),
      )
      ids.push(file.id)
    }
    await store.files.createUpload(upload(listed, 'd1', { name: 'logs/pending.txt' }))
    const sorted = [...ids].sort()

    const first = await store.files.list(listed, { limit: 3 })
    expect(first.items.map((f) => f.id)).toEqual(sorted.slice(0, 3))
    const second = await store.files.list(listed, { limit: 3, after: first.next! })
    expect(second.items.map((f) => f.id)).toEqual(sorted.slice(3))
    expect(second.next).toBeNull()
    expect((await store.files.list(listed, { device: 'd2' })).items.map((f) => f.name).sort()).toEqual([
      'images/d.jpg',
      'logs/c.txt',
    ])
    expect((await store.files.list(listed, { namePrefix: 'logs/' })).items).toHaveLength(3)
    expect((await store.files.list(listed, { namePrefix: 'logs/_' })).items).toHaveLength(0)
    expect((await store.files.list(tenant, { namePrefix: 'images/' })).items).toHaveLength(0)

    expect((await store.files.remove(listed, ids[0]!))?.id).toBe(ids[0])
    expect(await store.files.remove(listed, ids[0]!)).toBeUndefined()
    expect(await store.files.get(listed, ids[0]!)).toBeUndefined()
    expect((await store.files.list(listed)).items).toHaveLength(3)
  })

  it('keeps unpublished events across a restart, and its relay publishes them to the bus', async () => {
    await drain()
    const file = upload(tenant, 'd1')
    await store.files.createUpload(file)
    await store.files.claimUpload(file.tokenHash, file.id, at(1))
    const event = uploadedEvent(tenant, 'd1', file.id)
    await store.files.completeUpload(tenant, file.id, { sha256: hash('body'), uploadedAt: at(1000) }, event)

    // A crash before the relay ran: the event is still in the outbox when the store opens again.
    await store.close()
    store = await engine.open()
    expect((await store.files.pendingEvents(10)).map((entry) => entry.event)).toEqual([event])

    const bus = await createEmbeddedBus({ dataDir: mkdtempSync(join(tmpdir(), 'tributary-bus-')) })
    await bus.admin.createTopics([{ name: 'ingress', partitions: 1 }])
    const relay = createEventOutboxRelay({ files: store.files, bus, topic: 'ingress', log: silentLogger })
    const received: BusMessage[] = []
    const subscription = await bus.subscribe({
      group: 'files-test',
      topics: ['ingress'],
      from: 'earliest',
      handler: async (batch) => {
        received.push(...batch)
      },
    })
    try {
      await relay.start()
      await relay.flush()
      await waitUntil(() => received.length === 1)
      const published = decode({
        key: received[0]!.key === undefined ? undefined : Buffer.from(received[0]!.key),
        value: received[0]!.value,
        headers: received[0]!.headers,
      })
      expect(published.attributes).toMatchObject({
        type: eventTypes['file.uploaded'],
        id: event.attributes.id,
        dataref: event.attributes['dataref'],
        partitionkey: `${tenant}/d1`,
      })
      expect(JSON.parse(published.data!.toString())).toEqual({
        id: file.id,
        name: 'logs/boot.txt',
        size: 42,
        sha256: hash('body'),
        contentType: 'text/plain',
      })
      expect(await store.files.pendingEvents(10)).toEqual([])
    } finally {
      await relay.stop()
      await subscription.close()
      await bus.close()
    }
  })
  it('leaves every removed file a sweep of its object: leased to one caller, retried after a failure', async () => {
    const sweeper = tenantId()
    await store.createTenant(sweeper, tenantSpec())
    await store.createDevice(sweeper, 'gone', deviceSpec())
    await store.createDevice(sweeper, 'stays', deviceSpec())
    const gone = [upload(sweeper, 'gone'), upload(sweeper, 'gone')]
    const stays = upload(sweeper, 'stays')
    for (const file of [...gone, stays]) await store.files.createUpload(file)
    // Sweeps are stamped with the database's clock: look from a minute ahead of it.
    const now = new Date(Date.now() + 60_000)
    const mine = async (from: Date, lease: number) =>
      (await store.files.claimSweeps(from, new Date(from.getTime() + lease), 100)).filter(
        (s) => s.tenant === sweeper,
      )

    await store.deleteDevice(sweeper, 'gone')
    const leased = await mine(now, 10_000)
    expect(leased.map((s) => s.id).sort()).toEqual(gone.map((f) => f.id).sort())
    expect(leased.every((s) => s.device === 'gone' && s.attempts === 0)).toBe(true)
    // Leased: nobody else gets them until the lease ends.
    expect(await mine(now, 10_000)).toEqual([])
    const [failed, done] = leased as [BlobSweep, BlobSweep]
    await store.files.sweepDone(done.tenant, done.id)
    await store.files.sweepFailed(failed.tenant, failed.id, new Date(now.getTime() + 60_000))
    expect(await mine(new Date(now.getTime() + 30_000), 10_000)).toEqual([])
    expect(await mine(new Date(now.getTime() + 60_000), 10_000)).toEqual([{ ...failed, attempts: 1 }])

    // A removed file leaves one too; the file of the device that stays is never swept with the other.
    await store.files.abandonUpload(sweeper, stays.id)
    expect((await mine(new Date(now.getTime() + 120_000), 10_000)).map((s) => s.id).sort()).toEqual(
      [failed.id, stays.id].sort(),
    )
  })
})
