// The embedded EventBus: a file-backed, partitioned log in the data dir for one-process use.
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { TributaryError } from '../../errors.ts'
import type { Logger } from '../../log.ts'
import { silentLogger } from '../../log.ts'
import type { EventBus, OutgoingRecord, PublishAck, Subscription } from '../bus.ts'
import { DEFAULT_MAX_MESSAGE_BYTES } from '../bus.ts'
import { partitionFor } from '../partitioner.ts'
import { nodeFiles, replaceFile } from './files.ts'
import type { LogFiles } from './files.ts'
import { GroupCoordinator } from './groups.ts'
import { acquireLock } from './lock.ts'
import { OffsetStore } from './offsets.ts'
import type { AppendInput, PartitionLog } from './partition-log.ts'
import { encodedSize } from './record-format.ts'
import { createMember } from './subscription.ts'
import { TopicStore } from './topics.ts'

export interface EmbeddedBusOptions {
  /** The log lives in `<dataDir>/bus`. */
  readonly dataDir: string
  readonly segmentBytes?: number | undefined
  readonly retentionMs?: number | undefined
  readonly retentionBytes?: number | undefined
  readonly maxMessageBytes?: number | undefined
  /** How often retention runs (default one minute). */
  readonly retentionIntervalMs?: number | undefined
  /** Bound on waiting for in-flight batches when closing (default 10 s). */
  readonly drainTimeoutMs?: number | undefined
  readonly log?: Logger | undefined
  /** The file layer (node:fs by default; tests pass one that fails on demand). */
  readonly files?: LogFiles | undefined
}

export interface EmbeddedBus extends EventBus {
  readonly kind: 'embedded'
  /** Applies retention now (it also runs on a timer); returns the number of segments deleted. */
  applyRetention(now?: number): Promise<number>
}

const EMPTY_HEADERS = new Map<string, Buffer>()

export async function createEmbeddedBus(options: EmbeddedBusOptions): Promise<EmbeddedBus> {
  const log = options.log ?? silentLogger
  const files = options.files ?? nodeFiles
  const root = join(options.dataDir, 'bus')
  await mkdir(root, { recursive: true })
  const lock = await acquireLock(join(root, 'LOCK'))
  let topics: TopicStore
  let offsets: OffsetStore
  try {
    topics = await TopicStore.open(
      files,
      join(root, 'topics'),
      {
        segmentBytes: options.segmentBytes ?? 64 * 1024 * 1024,
        retentionMs: options.retentionMs ?? 7 * 24 * 3_600_000,
        retentionBytes: options.retentionBytes ?? -1,
        maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      },
      {
        recovered: (segment, report) =>
          log.warn({ segment, ...report }, 'embedded log: cut a torn tail after an unclean stop'),
        rollFailed: (partition, err) =>
          log.warn({ err, partition }, 'embedded log: could not start a new segment; will try again'),
      },
    )
    offsets = await OffsetStore.open(files, join(root, 'groups'))
  } catch (err) {
    await lock.release()
    throw err
  }
  const groups = new GroupCoordinator(topics)
  const pending = new Set<Promise<unknown>>()
  let closing: Promise<void> | undefined
  let lastWriteError: unknown

  const retentionTimer = setInterval(() => {
    applyRetention(Date.now()).catch((err: unknown) => log.error({ err }, 'embedded log: retention failed'))
  }, options.retentionIntervalMs ?? 60_000)
  retentionTimer.unref()

  /** Writes and syncs a small file beside the log: true when the disk takes writes again. */
  async function probeDisk(): Promise<boolean> {
    try {
      await replaceFile(files, root, join(root, 'probe'), Buffer.alloc(4096))
      return true
    } catch {
      return false
    }
  }

  async function applyRetention(now: number): Promise<number> {
    let deleted = 0
    for (const topic of topics.all()) for (const p of topic.partitions) deleted += await p.applyRetention(now)
    return deleted
  }

  function publish(records: readonly OutgoingRecord[]): Promise<PublishAck[]> {
    if (closing !== undefined)
      return Promise.reject(new TributaryError('BUS_CLOSED', 'the event bus is closing'))
    // Validate the whole call before appending anything (STYLE.md 10).
    const targets: PartitionLog[] = []
    for (const r of records) {
      const topic = topics.get(r.topic)
      if (topic === undefined) {
        return Promise.reject(
          new TributaryError('BUS_UNKNOWN_TOPIC', `topic ${JSON.stringify(r.topic)} does not exist`),
        )
      }
      const size = encodedSize(r.key === undefined ? undefined : Buffer.from(r.key), r.value, r.headers)
      if (size > topic.config.maxMessageBytes) {
        return Promise.reject(
          new TributaryError(
            'BUS_RECORD_TOO_LARGE',
            `record of ${size} bytes exceeds the ${topic.config.maxMessageBytes}-byte limit of topic ${r.topic}`,
            { details: { size, limit: topic.config.maxMessageBytes, topic: r.topic } },
          ),
        )
      }
      const partition = r.partition ?? partitionFor(r.key, topic.partitions.length)
      const target = topic.partitions[partition]
      if (target === undefined) {
        return Promise.reject(
          new TributaryError('BUS_UNKNOWN_TOPIC', `topic ${r.topic} has no partition ${partition}`),
        )
      }
      targets.push(target)
    }
    const now = Date.now()
    const byPartition = new Map<PartitionLog, { inputs: AppendInput[]; indexes: number[] }>()
    records.forEach((r, i) => {
      const target = targets[i]!
      let entry = byPartition.get(target)
      if (entry === undefined) byPartition.set(target, (entry = { inputs: [], indexes: [] }))
      entry.inputs.push({
        key: r.key === undefined ? undefined : Buffer.from(r.key),
        value: r.value,
        headers: r.headers ?? EMPTY_HEADERS,
        timestamp: r.timestamp ?? now,
      })
      entry.indexes.push(i)
    })
    const acks = new Array<PublishAck>(records.length)
    const durable: Array<Promise<void>> = []
    for (const [target, { inputs, indexes }] of byPartition) {
      durable.push(
        target.append(inputs).then((assigned) => {
          indexes.forEach((index, j) => {
            acks[index] = { topic: target.topic, partition: target.partition, offset: assigned[j]! }
          })
        }),
      )
    }
    const result = Promise.all(durable).then(
      () => {
        lastWriteError = undefined
        return acks
      },
      (cause: unknown) => {
        lastWriteError = cause
        throw new TributaryError('BUS_UNAVAILABLE', 'the embedded event log could not write to disk', {
          cause,
        })
      },
    )
    pending.add(result)
    void result.finally(() => pending.delete(result)).catch(() => undefined)
    return result
  }

  async function subscribe(subscribeOptions: Parameters<EventBus['subscribe']>[0]): Promise<Subscription> {
    if (closing !== undefined) throw new TributaryError('BUS_CLOSED', 'the event bus is closing')
    for (const name of subscribeOptions.topics) {
      if (topics.get(name) === undefined) {
        throw new TributaryError(
          'BUS_UNKNOWN_TOPIC',
          `cannot subscribe to ${JSON.stringify(name)}: the topic does not exist`,
        )
      }
    }
    const member = createMember(subscribeOptions, offsets, { leave: (m) => groups.leave(m) })
    await groups.join(member)
    return member
  }

  async function close(): Promise<void> {
    closing ??= (async () => {
      clearInterval(retentionTimer)
      await Promise.allSettled([...pending])
      const drain = Promise.allSettled(groups.members().map((m) => m.close()))
      const deadline = options.drainTimeoutMs ?? 10_000
      let timer: NodeJS.Timeout | undefined
      const timedOut = await Promise.race([
        drain.then(() => false),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), deadline))),
      ])
      clearTimeout(timer)
      if (timedOut)
        log.warn({ deadlineMs: deadline }, 'embedded log: closing before every in-flight batch finished')
      offsets.close()
      await offsets
        .flush()
        .catch((err: unknown) => log.error({ err }, 'embedded log: could not save offsets'))
      await topics.close()
      await lock.release()
    })()
    return closing
  }

  return {
    kind: 'embedded',
    publish,
    subscribe,
    applyRetention: (now = Date.now()) => applyRetention(now),
    admin: {
      async createTopics(specs) {
        for (const spec of specs) await topics.create(spec)
      },
      async deleteTopics(names) {
        for (const name of names) {
          if ((await topics.delete(name)) !== undefined) {
            offsets.forgetTopic(name)
            await groups.topicRemoved(name)
          }
        }
      },
      listTopics: async () => topics.list(),
      describeTopic: async (name) => topics.describe(name),
      async offsets(name) {
        const topic = topics.get(name)
        if (topic === undefined)
          throw new TributaryError('BUS_UNKNOWN_TOPIC', `topic ${JSON.stringify(name)} does not exist`)
        return topic.partitions.map((p) => ({
          partition: p.partition,
          earliest: p.logStartOffset,
          next: p.highWatermark,
        }))
      },
      committed: async (group, topic) => offsets.entries(group, topic),
    },
    async health() {
      if (closing !== undefined) return { ok: false, reason: 'the embedded event log is closing' }
      // After a failed write, health probes the disk itself: otherwise a process that refuses
      // publishes while unhealthy would never publish again to find out that space came back.
      if (lastWriteError !== undefined && (await probeDisk())) lastWriteError = undefined
      if (lastWriteError !== undefined) {
        return {
          ok: false,
          reason: `the embedded event log cannot write: ${(lastWriteError as Error).message}`,
        }
      }
      if (offsets.lastError !== undefined) {
        return {
          ok: false,
          reason: `consumer offsets cannot be saved: ${(offsets.lastError as Error).message}`,
        }
      }
      return { ok: true }
    },
    close,
  }
}
