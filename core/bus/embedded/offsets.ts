// Committed offsets of the embedded log's consumer groups: in memory, persisted per group with
// write-to-temp, fsync and rename, coalescing commits that arrive while a write is under way.
// A save that fails keeps the group dirty and is tried again on a timer as well as on the next
// commit: offsets on disk may lag (a restart redelivers), they never run ahead of what was handled.
import { createHash } from 'node:crypto'
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { replaceFile } from './files.ts'
import type { LogFiles } from './files.ts'

type Offsets = Map<string, number>

const fileName = (group: string): string => {
  const encoded = encodeURIComponent(group)
  return encoded.length <= 200
    ? `${encoded}.json`
    : `${createHash('sha256').update(group).digest('hex')}.json`
}

const RETRY_MS = 1_000

export class OffsetStore {
  readonly #files: LogFiles
  readonly #dir: string
  readonly #groups = new Map<string, Offsets>()
  readonly #dirty = new Set<string>()
  #writing: Promise<void> | undefined
  #retry: NodeJS.Timeout | undefined

  private constructor(files: LogFiles, dir: string) {
    this.#files = files
    this.#dir = dir
  }

  static async open(files: LogFiles, dir: string): Promise<OffsetStore> {
    const store = new OffsetStore(files, dir)
    await mkdir(dir, { recursive: true })
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.json')) continue
      try {
        const saved = JSON.parse(await readFile(join(dir, name), 'utf8')) as {
          group: string
          offsets: Record<string, number>
        }
        store.#groups.set(saved.group, new Map<string, number>(Object.entries(saved.offsets)))
      } catch {
        // A torn temp file never replaces a good one (rename is atomic), so this is a stray file.
      }
    }
    return store
  }

  get(group: string, topic: string, partition: number): number | undefined {
    return this.#groups.get(group)?.get(`${topic}:${partition}`)
  }

  entries(group: string, topic: string): Map<number, number> {
    const out = new Map<number, number>()
    const prefix = `${topic}:`
    for (const [key, offset] of this.#groups.get(group) ?? []) {
      if (key.startsWith(prefix) && !key.slice(prefix.length).includes(':'))
        out.set(Number(key.slice(prefix.length)), offset)
    }
    return out
  }

  commit(group: string, topic: string, partition: number, offset: number): void {
    let offsets = this.#groups.get(group)
    if (offsets === undefined) this.#groups.set(group, (offsets = new Map<string, number>()))
    offsets.set(`${topic}:${partition}`, offset)
    this.#dirty.add(group)
    void this.#schedule()
  }

  forgetTopic(topic: string): void {
    for (const [group, offsets] of this.#groups) {
      for (const key of offsets.keys()) {
        if (key.startsWith(`${topic}:`)) {
          offsets.delete(key)
          this.#dirty.add(group)
        }
      }
    }
    void this.#schedule()
  }

  /** Resolves once every commit made so far is on disk. */
  async flush(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing
    if (this.#dirty.size > 0) {
      await this.#schedule()
      if (this.#dirty.size > 0) throw new Error('could not save consumer offsets', { cause: this.lastError })
    }
  }

  /** The last failure to save offsets, cleared by the next successful save. */
  lastError: unknown

  #schedule(): Promise<void> | undefined {
    if (this.#writing !== undefined || this.#dirty.size === 0) return this.#writing
    const run = this.#persist()
    this.#writing = run
    void run.finally(() => {
      if (this.#writing === run) this.#writing = undefined
      // Commits that came in as the last write finished; after a failure, try again a little later
      // (or at the next commit), so an idle group's offsets and the health report recover too.
      if (this.lastError === undefined) void this.#schedule()
      else if (this.#retry === undefined) {
        this.#retry = setTimeout(() => {
          this.#retry = undefined
          void this.#schedule()
        }, RETRY_MS)
        this.#retry.unref()
      }
    })
    return run
  }

  /** Stops the retry timer; what is still dirty stays for flush(). */
  close(): void {
    clearTimeout(this.#retry)
    this.#retry = undefined
  }

  async #persist(): Promise<void> {
    while (this.#dirty.size > 0) {
      const groups = [...this.#dirty]
      this.#dirty.clear()
      const results = await Promise.allSettled(groups.map((g) => this.#write(g)))
      const failed = groups.filter((_, i) => results[i]!.status === 'rejected')
      if (failed.length > 0) {
        // Keep them dirty: the next commit or flush tries again. Offsets lag, nothing is lost.
        for (const g of failed) this.#dirty.add(g)
        this.lastError = (results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason
        return
      }
      this.lastError = undefined
    }
  }

  async #write(group: string): Promise<void> {
    const data = JSON.stringify({ group, offsets: Object.fromEntries(this.#groups.get(group) ?? []) })
    await replaceFile(this.#files, this.#dir, join(this.#dir, fileName(group)), data)
  }
}
