// The in-process cache in front of registry lookups: bounded LRU with a TTL, entries tagged by the
// tenant and device they depend on so a registry change drops exactly those, and one load per key
// at a time. A load that overlaps an invalidation is returned but not cached (it may be stale).

export interface Loaded<T> {
  readonly value: T
  /** Tags whose invalidation drops this entry (e.g. `t:<tenant>`, `d:<tenant>/<device>`). */
  readonly tags: readonly string[]
  /** Negative results (nothing found) live only briefly. */
  readonly negative?: boolean | undefined
}

/** A lookup result: positive with `tags`, or negative (nothing found) with `negativeTags`. */
export function found<T>(
  value: T | undefined,
  tags: readonly string[],
  negativeTags = tags,
): Loaded<T | undefined> {
  return value === undefined ? { value, tags: negativeTags, negative: true } : { value, tags }
}

export interface AuthCacheOptions {
  readonly maxEntries: number
  readonly ttlMs: number
  /** TTL of negative results; blunts floods of lookups for devices that do not exist. */
  readonly negativeTtlMs: number
  readonly now?: (() => number) | undefined
}

export interface AuthCache {
  get<T>(key: string, load: () => Promise<Loaded<T>>): Promise<T>
  /** Drops every entry carrying one of the tags. */
  invalidate(tags: readonly string[]): void
  clear(): void
  readonly size: number
  readonly hits: number
  readonly misses: number
}

interface Entry {
  readonly value: unknown
  readonly expiresAt: number
  readonly tags: readonly string[]
}

export function createAuthCache(options: AuthCacheOptions): AuthCache {
  const now = options.now ?? Date.now
  const entries = new Map<string, Entry>()
  const byTag = new Map<string, Set<string>>()
  const loading = new Map<string, Promise<unknown>>()
  let epoch = 0
  let hits = 0
  let misses = 0

  function remove(key: string): void {
    const entry = entries.get(key)
    if (entry === undefined) return
    entries.delete(key)
    for (const tag of entry.tags) {
      const keys = byTag.get(tag)
      keys?.delete(key)
      if (keys?.size === 0) byTag.delete(tag)
    }
  }

  function put(key: string, loaded: Loaded<unknown>): void {
    remove(key)
    const ttl = loaded.negative === true ? options.negativeTtlMs : options.ttlMs
    entries.set(key, { value: loaded.value, expiresAt: now() + ttl, tags: loaded.tags })
    for (const tag of loaded.tags) {
      let keys = byTag.get(tag)
      if (keys === undefined) byTag.set(tag, (keys = new Set()))
      keys.add(key)
    }
    // Map iteration order is insertion order: the first key is the least recently used.
    while (entries.size > options.maxEntries) remove(entries.keys().next().value!)
  }

  async function load(key: string, loader: () => Promise<Loaded<unknown>>): Promise<unknown> {
    const started = epoch
    try {
      const loaded = await loader()
      if (epoch === started) put(key, loaded)
      return loaded.value
    } finally {
      if (epoch === started) loading.delete(key)
    }
  }

  return {
    async get<T>(key: string, loader: () => Promise<Loaded<T>>): Promise<T> {
      const entry = entries.get(key)
      if (entry !== undefined) {
        if (entry.expiresAt > now()) {
          hits++
          // Re-insert to mark it most recently used.
          entries.delete(key)
          entries.set(key, entry)
          return entry.value as T
        }
        remove(key)
      }
      misses++
      let pending = loading.get(key)
      if (pending === undefined) {
        pending = load(key, loader)
        loading.set(key, pending)
      }
      return (await pending) as T
    },
    invalidate(tags) {
      epoch++
      // Loads in flight may have read the old rows: later callers must not join them.
      loading.clear()
      for (const tag of tags) for (const key of [...(byTag.get(tag) ?? [])]) remove(key)
    },
    clear() {
      epoch++
      loading.clear()
      entries.clear()
      byTag.clear()
    },
    get size() {
      return entries.size
    },
    get hits() {
      return hits
    },
    get misses() {
      return misses
    },
  }
}
