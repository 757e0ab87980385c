// A member of an embedded consumer group: one worker per owned partition, each delivering one
// batch at a time and committing after the handler resolves; a failed batch is delivered again
// after a growing backoff.
import type { BusMessage, StartPosition, SubscribeOptions, Subscription } from '../bus.ts'
import { DEFAULT_MAX_BATCH } from '../bus.ts'
import { createBackoff, createWakeup, deliver, sleep, waitAny } from '../backoff.ts'
import type { OffsetStore } from './offsets.ts'
import type { PartitionLog } from './partition-log.ts'

const MAX_BATCH_BYTES = 4 * 1024 * 1024

export const partitionKeyOf = (log: PartitionLog): string => `${log.topic}:${log.partition}`

export interface MemberHooks {
  leave(member: Member): Promise<void>
}

export interface Member extends Subscription {
  readonly id: number
  readonly group: string
  readonly topics: readonly string[]
  readonly owned: ReadonlyMap<string, PartitionWorker>
  acquire(log: PartitionLog): void
  release(key: string): Promise<void>
}

let nextMemberId = 1

export async function resolvePosition(log: PartitionLog, from: StartPosition): Promise<number> {
  if (from === 'earliest') return log.logStartOffset
  if (from === 'latest') return log.highWatermark
  if ('time' in from) return log.offsetForTime(from.time)
  const given = from.offsets.find((o) => o.topic === log.topic && o.partition === log.partition)
  return given === undefined
    ? log.highWatermark
    : Math.max(log.logStartOffset, Math.min(given.offset, log.highWatermark))
}

export function createMember(options: SubscribeOptions, offsets: OffsetStore, hooks: MemberHooks): Member {
  const owned = new Map<string, PartitionWorker>()
  const from = options.from ?? 'latest'
  let paused = false
  const resumed = createWakeup()
  let closed: Promise<void> | undefined

  const member: Member = {
    id: nextMemberId++,
    group: options.group,
    topics: [...options.topics],
    owned,
    get paused() {
      return paused
    },
    pause() {
      paused = true
    },
    resume() {
      paused = false
      resumed.fire()
      for (const w of owned.values()) w.interrupt()
    },
    assignments: () => [...owned.keys()].sort(),
    async seek(position) {
      await Promise.all([...owned.values()].map(async (w) => w.seek(await resolvePosition(w.log, position))))
    },
    acquire(log) {
      const key = partitionKeyOf(log)
      if (owned.has(key)) return
      const committed =
        options.reset === true ? undefined : offsets.get(options.group, log.topic, log.partition)
      const worker = new PartitionWorker(log, options, offsets, {
        start: async () => {
          if (committed !== undefined) return committed
          // Record where we start, so the next owner of this partition continues from here.
          const position = await resolvePosition(log, from)
          if (options.commit !== false) offsets.commit(options.group, log.topic, log.partition, position)
          return position
        },
        isPaused: () => paused,
        resumed: () => resumed.signal,
      })
      owned.set(key, worker)
      worker.start()
    },
    async release(key) {
      const worker = owned.get(key)
      if (worker === undefined) return
      owned.delete(key)
      await worker.stop()
    },
    close() {
      closed ??= (async () => {
        await hooks.leave(member)
        await offsets.flush()
      })()
      return closed
    },
  }
  return member
}

interface WorkerContext {
  start(): Promise<number>
  isPaused(): boolean
  resumed(): AbortSignal
}

export class PartitionWorker {
  readonly log: PartitionLog
  readonly #options: SubscribeOptions
  readonly #offsets: OffsetStore
  readonly #context: WorkerContext
  readonly #wakeup = createWakeup()
  #stopped = false
  #seekTo: number | undefined
  #done: Promise<void> = Promise.resolve()

  constructor(log: PartitionLog, options: SubscribeOptions, offsets: OffsetStore, context: WorkerContext) {
    this.log = log
    this.#options = options
    this.#offsets = offsets
    this.#context = context
  }

  start(): void {
    this.#done = this.#run()
  }

  /** Wakes the worker from any wait so it looks at its state again. */
  interrupt(): void {
    this.#wakeup.fire()
  }

  seek(offset: number): void {
    this.#seekTo = offset
    this.interrupt()
  }

  /** Stops after the batch in flight, whose handler is awaited (and committed if it succeeds). */
  async stop(): Promise<void> {
    this.#stopped = true
    this.interrupt()
    await this.#done
  }

  #commit(offset: number): void {
    if (this.#options.commit === false) return
    this.#offsets.commit(this.#options.group, this.log.topic, this.log.partition, offset)
  }

  async #run(): Promise<void> {
    const { handler } = this.#options
    const onError = (err: unknown, batch: readonly BusMessage[]): void => {
      try {
        this.#options.onError?.(err, batch)
      } catch {
        // A failing error callback must not stop delivery.
      }
    }
    const maxBatch = this.#options.maxBatch ?? DEFAULT_MAX_BATCH
    const backoff = createBackoff(this.#options.retryBackoffMs)
    let position = await this.#context.start()
    while (!this.#stopped) {
      if (this.#seekTo !== undefined) {
        position = this.#seekTo
        this.#seekTo = undefined
        this.#commit(position)
      }
      if (this.#context.isPaused()) {
        await waitAny(this.#context.resumed(), this.#wakeup.signal)
        continue
      }
      let batch: BusMessage[]
      try {
        batch = await this.log.read(position, maxBatch, MAX_BATCH_BYTES)
      } catch (err) {
        onError(err, [])
        await sleep(backoff.next(), this.#wakeup.signal)
        continue
      }
      if (batch.length === 0) {
        // Re-check before waiting: a stop, seek or pause during the read fired a wakeup nobody heard.
        if (this.#stopped || this.#seekTo !== undefined || this.#context.isPaused()) continue
        await this.log.waitFor(position, this.#wakeup.signal)
        continue
      }
      const delivered = await deliver(batch, {
        handler,
        onError,
        backoff,
        interrupted: () => this.#stopped || this.#seekTo !== undefined,
        wakeup: () => this.#wakeup.signal,
      })
      if (delivered) {
        position = batch.at(-1)!.offset + 1
        this.#commit(position)
      }
    }
  }
}
