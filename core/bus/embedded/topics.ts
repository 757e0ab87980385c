// Topics of the embedded log: a directory per topic with its settings in topic.json and a
// directory per partition. A topic exists once topic.json is in place, so a crash mid-create
// leaves nothing half made.
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { TributaryError } from '../../errors.ts'
import type { TopicDescription, TopicSettings, TopicSpec } from '../bus.ts'
import { replaceFile, syncDirectory } from './files.ts'
import type { LogFiles } from './files.ts'
import { PartitionLog } from './partition-log.ts'
import type { RecoveryReport } from './segment.ts'

export const TOPIC_NAME = /^[A-Za-z0-9._-]{1,249}$/

export interface TopicDefaults {
  readonly retentionMs: number
  readonly retentionBytes: number
  readonly maxMessageBytes: number
  readonly segmentBytes: number
}

export interface Topic {
  readonly name: string
  readonly config: TopicSettings
  readonly partitions: readonly PartitionLog[]
}

export interface PartitionEvents {
  recovered(segment: string, report: RecoveryReport): void
  rollFailed(partition: string, err: unknown): void
}

export function assertTopicName(name: string): void {
  if (!TOPIC_NAME.test(name) || name === '.' || name === '..') {
    throw new TributaryError(
      'BUS_INVALID_TOPIC',
      `topic name ${JSON.stringify(name)} must be 1-249 of A-Z a-z 0-9 . _ -`,
    )
  }
}

export class TopicStore {
  readonly #files: LogFiles
  readonly #root: string
  readonly #defaults: TopicDefaults
  readonly #events: PartitionEvents
  readonly #topics = new Map<string, Topic>()

  private constructor(files: LogFiles, root: string, defaults: TopicDefaults, events: PartitionEvents) {
    this.#files = files
    this.#root = root
    this.#defaults = defaults
    this.#events = events
  }

  static async open(
    files: LogFiles,
    root: string,
    defaults: TopicDefaults,
    events: PartitionEvents,
  ): Promise<TopicStore> {
    const store = new TopicStore(files, root, defaults, events)
    await mkdir(root, { recursive: true })
    for (const entry of await readdir(root, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue
      const dir = join(root, entry.name)
      const meta = await readMeta(dir)
      if (meta === undefined || !TOPIC_NAME.test(entry.name)) {
        // Unfinished create or delete: nothing acknowledged can live here.
        await rm(dir, { recursive: true, force: true })
        continue
      }
      await store.#load(entry.name, meta)
    }
    return store
  }

  get(name: string): Topic | undefined {
    return this.#topics.get(name)
  }

  list(): string[] {
    return [...this.#topics.keys()].sort()
  }

  all(): Iterable<Topic> {
    return this.#topics.values()
  }

  describe(name: string): TopicDescription | undefined {
    const topic = this.#topics.get(name)
    return topic === undefined
      ? undefined
      : { name, partitions: topic.partitions.length, config: topic.config }
  }

  async create(spec: TopicSpec): Promise<void> {
    assertTopicName(spec.name)
    if (!Number.isInteger(spec.partitions) || spec.partitions < 1 || spec.partitions > 10_000) {
      throw new TributaryError(
        'BUS_INVALID_TOPIC',
        `topic ${spec.name}: partitions must be an integer from 1 to 10000`,
      )
    }
    if (this.#topics.has(spec.name)) return
    const config: TopicSettings = {
      retentionMs: spec.config?.retentionMs ?? this.#defaults.retentionMs,
      retentionBytes: spec.config?.retentionBytes ?? this.#defaults.retentionBytes,
      maxMessageBytes: spec.config?.maxMessageBytes ?? this.#defaults.maxMessageBytes,
    }
    const dir = join(this.#root, spec.name)
    await rm(dir, { recursive: true, force: true })
    await mkdir(dir, { recursive: true })
    const meta = { partitions: spec.partitions, ...config }
    // The partitions exist (their directories and first segments synced) before topic.json names
    // the topic; both directory entries are synced so a power cut cannot lose an acknowledged topic.
    await this.#load(spec.name, meta)
    try {
      await replaceFile(this.#files, dir, join(dir, 'topic.json'), JSON.stringify(meta))
      await syncDirectory(this.#files, this.#root)
    } catch (err) {
      const topic = this.#topics.get(spec.name)
      this.#topics.delete(spec.name)
      for (const p of topic?.partitions ?? []) await p.close().catch(() => undefined)
      await rm(dir, { recursive: true, force: true }).catch(() => undefined)
      throw err
    }
  }

  async delete(name: string): Promise<Topic | undefined> {
    const topic = this.#topics.get(name)
    if (topic === undefined) return undefined
    this.#topics.delete(name)
    for (const p of topic.partitions) await p.close()
    // Rename first so a crash during the recursive delete cannot resurrect a half-deleted topic.
    const doomed = join(this.#root, `.deleted-${Date.now()}-${name}`)
    await rename(join(this.#root, name), doomed)
    await rm(doomed, { recursive: true, force: true })
    return topic
  }

  async close(): Promise<void> {
    for (const topic of this.#topics.values()) for (const p of topic.partitions) await p.close()
    this.#topics.clear()
  }

  async #load(name: string, meta: TopicMeta): Promise<void> {
    const config: TopicSettings = {
      retentionMs: meta.retentionMs,
      retentionBytes: meta.retentionBytes,
      maxMessageBytes: meta.maxMessageBytes,
    }
    const settings = {
      segmentBytes: this.#defaults.segmentBytes,
      retentionMs: config.retentionMs,
      retentionBytes: config.retentionBytes,
    }
    const partitions: PartitionLog[] = []
    for (let p = 0; p < meta.partitions; p++) {
      partitions.push(
        await PartitionLog.open(
          this.#files,
          name,
          p,
          join(this.#root, name, String(p)),
          settings,
          (segment, report) => this.#events.recovered(segment, report),
          (err) => this.#events.rollFailed(`${name}:${p}`, err),
        ),
      )
    }
    this.#topics.set(name, { name, config, partitions })
  }
}

interface TopicMeta {
  readonly partitions: number
  readonly retentionMs: number
  readonly retentionBytes: number
  readonly maxMessageBytes: number
}

async function readMeta(dir: string): Promise<TopicMeta | undefined> {
  try {
    const meta = JSON.parse(await readFile(join(dir, 'topic.json'), 'utf8')) as Partial<TopicMeta>
    if (typeof meta.partitions !== 'number' || typeof meta.retentionMs !== 'number') return undefined
    if (typeof meta.retentionBytes !== 'number' || typeof meta.maxMessageBytes !== 'number') return undefined
    return meta as TopicMeta
  } catch {
    return undefined
  }
}
