// The credential cache: LRU bound, TTLs, invalidation by tag, one load per key, and no caching of
// a load that overlapped an invalidation.
import { describe, expect, it } from 'vitest'
import { createAuthCache, found } from '../../../core/registry/auth-cache.ts'
import { deferred } from '../../helpers/wait.ts'

function setup(options: { maxEntries?: number } = {}) {
  let clock = 0
  const cache = createAuthCache({
    maxEntries: options.maxEntries ?? 100,
    ttlMs: 1_000,
    negativeTtlMs: 100,
    now: () => clock,
  })
  let loads = 0
  const load =
    (value: string | undefined, tags: string[] = ['t:acme']) =>
    async () => {
      loads++
      return found(value, tags)
    }
  return {
    cache,
    load,
    get loads() {
      return loads
    },
    advance(ms: number) {
      clock += ms
    },
  }
}

describe('auth cache', () => {
  it('serves a hit without loading until the TTL passes', async () => {
    const s = setup()
    expect(await s.cache.get('k', s.load('v1'))).toBe('v1')
    expect(await s.cache.get('k', s.load('v2'))).toBe('v1')
    expect(s.loads).toBe(1)
    expect(s.cache.hits).toBe(1)
    s.advance(1_000)
    expect(await s.cache.get('k', s.load('v2'))).toBe('v2')
    expect(s.loads).toBe(2)
  })

  it('keeps negative results only for the short negative TTL', async () => {
    const s = setup()
    expect(await s.cache.get('k', s.load(undefined))).toBeUndefined()
    s.advance(99)
    expect(await s.cache.get('k', s.load('late'))).toBeUndefined()
    s.advance(1)
    expect(await s.cache.get('k', s.load('late'))).toBe('late')
  })

  it('evicts the least recently used entry past maxEntries', async () => {
    const s = setup({ maxEntries: 2 })
    await s.cache.get('a', s.load('A'))
    await s.cache.get('b', s.load('B'))
    await s.cache.get('a', s.load('A2')) // a is now the most recent
    await s.cache.get('c', s.load('C'))
    expect(s.cache.size).toBe(2)
    expect(await s.cache.get('a', s.load('A3'))).toBe('A')
    expect(await s.cache.get('b', s.load('B2'))).toBe('B2')
  })

  it('drops exactly the entries carrying an invalidated tag', async () => {
    const s = setup()
    await s.cache.get('dev1', s.load('1', ['t:acme', 'd:acme/1']))
    await s.cache.get('dev2', s.load('2', ['t:acme', 'd:acme/2']))
    await s.cache.get('other', s.load('3', ['t:other', 'd:other/1']))
    s.cache.invalidate(['d:acme/1'])
    expect(s.cache.size).toBe(2)
    expect(await s.cache.get('dev1', s.load('1b'))).toBe('1b')
    s.cache.invalidate(['t:acme'])
    expect(await s.cache.get('dev2', s.load('2b'))).toBe('2b')
    expect(await s.cache.get('other', s.load('3b'))).toBe('3')
  })

  it('runs one load per key for concurrent callers', async () => {
    const s = setup()
    const gate = deferred()
    let loads = 0
    const slow = async () => {
      loads++
      await gate.promise
      return found('v', ['t:acme'])
    }
    const all = Promise.all([s.cache.get('k', slow), s.cache.get('k', slow), s.cache.get('k', slow)])
    gate.resolve()
    expect(await all).toEqual(['v', 'v', 'v'])
    expect(loads).toBe(1)
  })

  it('does not cache a load that an invalidation overtook, and starts a fresh one for later callers', async () => {
    const s = setup()
    const gate = deferred()
    const stale = s.cache.get('k', async () => {
      await gate.promise
      return found('old', ['t:acme'])
    })
    s.cache.invalidate(['t:acme'])
    const fresh = s.cache.get('k', s.load('new'))
    gate.resolve()
    expect(await stale).toBe('old')
    expect(await fresh).toBe('new')
    expect(await s.cache.get('k', s.load('newer'))).toBe('new')
  })

  it('does not cache failed loads', async () => {
    const s = setup()
    await expect(
      s.cache.get('k', async () => {
        throw new Error('database down')
      }),
    ).rejects.toThrow('database down')
    expect(await s.cache.get('k', s.load('v'))).toBe('v')
    s.cache.clear()
    expect(s.cache.size).toBe(0)
  })
})
