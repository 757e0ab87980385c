// Tenant topics: created on a registry `tenant created` change and ensured once per tenant.
import { describe, expect, it } from 'vitest'
import type { TopicSpec } from '../../core/bus/bus.ts'
import { topicNames } from '../../core/events/topics.ts'
import { silentLogger } from '../../core/log.ts'
import { createTenantTopics } from '../../processors/topics.ts'
import { waitUntil } from '../helpers/wait.ts'

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
})
