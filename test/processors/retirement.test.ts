// Retiring deleted tenants' topics: after the grace period, every topic of the tenant (its events
// topic and copy topics) is deleted and the tombstone dropped; live tenants and other tenants'
// topics are never touched.
import { describe, expect, it } from 'vitest'
import { topicNames } from '../../core/events/topics.ts'
import { silentLogger } from '../../core/log.ts'
import type { Tenant, TenantTombstone } from '../../core/registry/model.ts'
import { createTopicRetirement } from '../../processors/retirement.ts'

const HOUR = 3_600_000
const NOW = new Date('2026-11-01T12:00:00.000Z')

function world(tombstones: TenantTombstone[], live: string[] = []) {
  const topics = new Set([
    'tb.ingress',
    'tb.events.gone',
    'tb.events.gone.alerts',
    'tb.events.gone-too',
    'tb.events.recent',
    'tb.events.back',
  ])
  const asked: Date[] = []
  const deleted: string[][] = []
  const store = {
    tenantTombstones: async (before: Date, limit: number) => {
      asked.push(before)
      return tombstones.filter((t) => new Date(t.deletedAt) <= before).slice(0, limit)
    },
    dropTenantTombstone: async (tenant: string) => {
      tombstones.splice(
        tombstones.findIndex((t) => t.tenant === tenant),
        1,
      )
    },
    getTenant: async (id: string) => (live.includes(id) ? ({ id } as Tenant) : undefined),
  }
  const admin = {
    listTopics: async () => [...topics],
    deleteTopics: async (names: readonly string[]) => {
      deleted.push([...names])
      for (const n of names) topics.delete(n)
    },
  }
  const retirement = createTopicRetirement(
    { topics: topicNames('tb'), graceMs: 24 * HOUR },
    { admin, store, log: silentLogger, now: () => NOW },
  )
  return { retirement, topics, asked, deleted, tombstones }
}

describe('topic retirement', () => {
  it('deletes the topics of tenants deleted longer ago than the grace period', async () => {
    const w = world([
      { tenant: 'gone', deletedAt: new Date(NOW.getTime() - 25 * HOUR).toISOString() },
      { tenant: 'recent', deletedAt: new Date(NOW.getTime() - 1 * HOUR).toISOString() },
    ])
    expect(await w.retirement.sweep()).toEqual(['gone'])
    expect(w.asked).toEqual([new Date(NOW.getTime() - 24 * HOUR)])
    // `gone-too` is another tenant whose id merely starts alike.
    expect(w.deleted).toEqual([['tb.events.gone', 'tb.events.gone.alerts']])
    expect([...w.topics].sort()).toEqual([
      'tb.events.back',
      'tb.events.gone-too',
      'tb.events.recent',
      'tb.ingress',
    ])
    expect(w.tombstones.map((t) => t.tenant)).toEqual(['recent'])
    expect(await w.retirement.sweep()).toEqual([])
  })

  it('keeps the topics of a tenant created again and drops its stale tombstone', async () => {
    const w = world(
      [{ tenant: 'back', deletedAt: new Date(NOW.getTime() - 48 * HOUR).toISOString() }],
      ['back'],
    )
    expect(await w.retirement.sweep()).toEqual([])
    expect(w.deleted).toEqual([])
    expect(w.topics.has('tb.events.back')).toBe(true)
    expect(w.tombstones).toEqual([])
  })

  it('drops the tombstone of a tenant that never had a topic', async () => {
    const w = world([{ tenant: 'never', deletedAt: new Date(NOW.getTime() - 48 * HOUR).toISOString() }])
    expect(await w.retirement.sweep()).toEqual(['never'])
    expect(w.deleted).toEqual([])
    expect(w.tombstones).toEqual([])
  })
})
