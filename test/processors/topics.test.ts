// Tenant topics: created on a registry `tenant created` change and ensured once per tenant.
import { describe, expect, it } from 'vitest'
import type { TopicSpec } from '../../core/bus/bus.ts'
import { topicNames } from '../../core/events/topics.ts'
import { silentLogger } from '../../core/log.ts'
import type { Tenant } from '../../core/registry/model.ts'
import { tenantTopicSpec } from '../../core/events/topics.ts'
import { createTenantTopics } from '../../processors/topics.ts'
import { waitUntil } from '../helpers/wait.ts'
import { tenantRow } from './fixtures.ts'

function admin() {
  const created: TopicSpec[] = []
  return { created, createTopics: async (specs: readonly TopicSpec[]) => void created.push(...specs) }
}

describe('tenant topics', () => {
  it('creates the topic with the configured partitions once, however often ensured', async () => {
    const a = admin()
    const topics = createTenantTopics(
      { topics: topicNames('tb'), partitions: 4 },
      { admin: a, log: silentLogger },
    )
    await Promise.all([topics.ensure('acme'), topics.ensure('acme')])
    await topics.ensure('acme')
    expect(a.created).toEqual([{ name: 'tb.events.acme', partitions: 4 }])
  })

  it('creates the topic when the registry says a tenant was created, and again after a delete', async () => {
    const a = admin()
    const topics = createTenantTopics(
      { topics: topicNames('tb'), partitions: 2 },
      { admin: a, log: silentLogger },
    )
    topics.onChange({ op: 'created', resource: 'tenant', tenant: 'acme', version: 1 })
    topics.onChange({ op: 'created', resource: 'device', tenant: 'other', device: 'd', version: 1 })
    await waitUntil(() => a.created.length === 1)
    topics.onChange({ op: 'deleted', resource: 'tenant', tenant: 'acme', version: 1 })
    await topics.ensure('acme')
    expect(a.created.map((s) => s.name)).toEqual(['tb.events.acme', 'tb.events.acme'])
  })

  it('retries creation after a failure', async () => {
    let fail = true
    const created: string[] = []
    const topics = createTenantTopics(
      { topics: topicNames('tb'), partitions: 1 },
      {
        admin: {
          createTopics: async (specs) => {
            if (fail) throw new Error('bus down')
            created.push(...specs.map((s) => s.name))
          },
        },
        log: silentLogger,
      },
    )
    await expect(topics.ensure('acme')).rejects.toThrow('bus down')
    fail = false
    await topics.ensure('acme')
    expect(created).toEqual(['tb.events.acme'])
  })

  it('takes partitions and retention from the tenant settings, and names copy topics after the tenant', async () => {
    const a = admin()
    const tenants: Record<string, Tenant> = {
      big: tenantRow('big', { settings: { topicPartitions: 12, topicRetentionMs: 86_400_000 } }),
      plain: tenantRow('plain', { settings: {} }),
    }
    const topics = createTenantTopics(
      { topics: topicNames('tb'), partitions: 3 },
      { admin: a, tenant: async (id) => tenants[id], log: silentLogger },
    )
    await topics.ensure('big')
    await topics.ensure('big', 'alerts')
    await topics.ensure('plain')
    await topics.ensure('big', 'alerts')
    expect(a.created).toEqual([
      { name: 'tb.events.big', partitions: 12, config: { retentionMs: 86_400_000 } },
      { name: 'tb.events.big.alerts', partitions: 12, config: { retentionMs: 86_400_000 } },
      { name: 'tb.events.plain', partitions: 3 },
    ])
  })

  it('forgets a deleted tenant’s copy topics too, so they are ensured again', async () => {
    const a = admin()
    const topics = createTenantTopics(
      { topics: topicNames('tb'), partitions: 1 },
      { admin: a, log: silentLogger },
    )
    await topics.ensure('acme', 'alerts')
    await topics.ensure('other', 'alerts')
    topics.onChange({ op: 'deleted', resource: 'tenant', tenant: 'acme', version: 3 })
    await topics.ensure('acme', 'alerts')
    await topics.ensure('other', 'alerts')
    expect(a.created.map((s) => s.name)).toEqual([
      'tb.events.acme.alerts',
      'tb.events.other.alerts',
      'tb.events.acme.alerts',
    ])
  })
})

describe('tenant topic specs', () => {
  it('ignores settings that are not whole numbers', () => {
    const spec = tenantTopicSpec('t', { topicPartitions: '4', topicRetentionMs: 1.5 }, 2)
    expect(spec).toEqual({ name: 't', partitions: 2 })
  })
})
