// The API's command sender: whether a device exists comes from the registry's cache, but a "not
// found" there (kept for a while) is confirmed with the store, so a device created a moment ago,
// whose change event has not reached the cache yet, can be sent a command at once.
import { describe, expect, it } from 'vitest'
import { silentLogger } from '../../core/log.ts'
import { createCommandService } from '../../commands/service.ts'

function service(cached: Set<string>, stored: Set<string>) {
  const reads: string[] = []
  const sender = createCommandService({
    bus: { publish: async () => [] },
    topic: 'tributary.commands',
    cluster: {
      instance: 'test',
      setValue: async () => undefined,
      onMessage: () => () => undefined,
    },
    findDevice: async (t, d) => (cached.has(`${t}/${d}`) ? {} : undefined),
    readDevice: async (t, d) => {
      reads.push(`${t}/${d}`)
      return stored.has(`${t}/${d}`) ? {} : undefined
    },
    defaultTtlMs: 60_000,
    maxWaitMs: 300_000,
    log: silentLogger,
  })
  return { sender, reads }
}

describe('command sender: does the device exist', () => {
  it('answers from the cache when the cache knows the device, without reading the store', async () => {
    const { sender, reads } = service(new Set(['acme/d1']), new Set(['acme/d1']))
    expect(await sender.deviceExists('acme', 'd1')).toBe(true)
    expect(reads).toEqual([])
  })

  it('confirms a cached "not found" with the store: a device created a moment ago exists', async () => {
    const { sender, reads } = service(new Set(), new Set(['acme/new']))
    expect(await sender.deviceExists('acme', 'new')).toBe(true)
    expect(reads).toEqual(['acme/new'])
  })

  it('says no when neither the cache nor the store has the device', async () => {
    const { sender } = service(new Set(), new Set())
    expect(await sender.deviceExists('acme', 'ghost')).toBe(false)
  })
})
