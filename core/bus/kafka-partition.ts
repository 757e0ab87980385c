// One partition a Kafka subscription owns: a bounded buffer the fetcher fills, and a worker that
// hands consecutive batches to the handler, one at a time, committing after each success and
// delivering a failed batch again after a backoff.
import type { BusMessage, SubscribeOptions } from './bus.ts'
import { DEFAULT_MAX_BATCH } from './bus.ts'
import { createBackoff, createWakeup, deliver, sleep, waitAny } from './backoff.ts'

/** Fetched bytes a partition may hold beyond one batch before it stops being fetched. */
const MAX_BUFFERED_BYTES = 1024 * 1024

export interface PartitionContext {
  readonly options: SubscribeOptions
  commit(offset: number): void
  isPaused(): boolean
  resumed(): AbortSignal
  /** Tells the fetcher this partition wants records again. */
  wantsRecords(): void
}

export interface FetchPosition {
  readonly offset: number
  /** Changes on every seek, so records fetched for an old position are dropped. */
  readonly version: number
}

const messageBytes = (m: BusMessage): number => {
  let bytes = 64 + (m.key?.length ?? 0) + (m.value?.length ?? 0)
  for (const [name, value] of m.headers) bytes += name.length + value.length
  return bytes
}

export class PartitionWorker {
  readonly topic: string
  readonly partition: number
  readonly #context: PartitionContext
  readonly #maxBatch: number
  readonly #wakeup = createWakeup()
  #buffer: BusMessage[] = []
  #bufferedBytes = 0
  #position: number
  #fetchOffset: number
  #version = 0
  #seekTo: number | undefined
  #stopped = false
  #revoked = false
  #done: Promise<void> = Promise.resolve()

  constructor(topic: string, partition: number, start: number, context: PartitionContext) {
    this.topic = topic
    this.partition = partition
    this.#position = start
    this.#fetchOffset = start
    this.#context = context
    this.#maxBatch = context.options.maxBatch ?? DEFAULT_MAX_BATCH
  }

  get key(): string {
    return `${this.topic}:${this.partition}`
  }

  start(): void {
    this.#done = this.#run()
  }

  /** What to fetch next, or undefined while paused, seeking, stopped or holding enough records. */
  fetchPosition(): FetchPosition | undefined {
    if (this.#stopped || this.#seekTo !== undefined || this.#context.isPaused()) return undefined
    if (this.#buffer.length >= this.#maxBatch || this.#bufferedBytes >= MAX_BUFFERED_BYTES) return undefined
    return { offset: this.#fetchOffset, version: this.#version }
  }

  /** Records fetched from `from`; `next` is where the following fetch starts. */
  accept(from: FetchPosition, records: readonly BusMessage[], next: number): void {
    if (this.#stopped || from.version !== this.#version || from.offset !== this.#fetchOffset) return
    for (const record of records) {
      if (record.offset < this.#fetchOffset) continue
      this.#buffer.push(record)
      this.#bufferedBytes += messageBytes(record)
    }
    this.#fetchOffset = Math.max(this.#fetchOffset, next)
    this.#wakeup.fire()
  }

  /** Repositions after the batch in flight (seek, or an offset that fell out of the log). */
  seek(offset: number, from?: FetchPosition): void {
    if (from !== undefined && from.version !== this.#version) return
    this.#seekTo = offset
    this.#wakeup.fire()
  }

  /** Wakes the worker from any wait so it looks at its state again. */
  interrupt(): void {
    this.#wakeup.fire()
  }

  /** Stops after the batch in flight, whose handler is awaited (and committed if it succeeds). */
  async stop(): Promise<void> {
    this.#stopped = true
    this.#wakeup.fire()
    await this.#done
  }

  /** The partition went to another member: deliver and commit nothing more, drop the buffer. */
  revoke(): Promise<void> {
    this.#revoked = true
    this.#buffer = []
    this.#bufferedBytes = 0
    return this.stop()
  }

  #commit(offset: number): void {
    if (!this.#revoked) this.#context.commit(offset)
  }

  #take(count: number): void {
    for (const record of this.#buffer.splice(0, count)) this.#bufferedBytes -= messageBytes(record)
    this.#context.wantsRecords()
  }

  async #run(): Promise<void> {
    const { handler } = this.#context.options
    const onError = (err: unknown, batch: readonly BusMessage[]): void => {
      try {
        this.#context.options.onError?.(err, batch)
      } catch {
        // A failing error callback must not stop delivery.
      }
    }
    const backoff = createBackoff(this.#context.options.retryBackoffMs)
    while (!this.#stopped) {
      if (this.#seekTo !== undefined) {
        this.#position = this.#fetchOffset = this.#seekTo
        this.#seekTo = undefined
        this.#version++
        this.#take(this.#buffer.length)
        this.#commit(this.#position)
        continue
      }
      if (this.#context.isPaused()) {
        await waitAny(this.#context.resumed(), this.#wakeup.signal)
        continue
      }
      const batch = this.#buffer.slice(0, this.#maxBatch)
      if (batch.length === 0) {
        await sleep(60_000, this.#wakeup.signal)
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
        this.#position = batch.at(-1)!.offset + 1
        this.#commit(this.#position)
        // A seek during the handler already replaced the buffer; only take what was delivered.
        if (this.#buffer[0] === batch[0]) this.#take(batch.length)
      }
    }
  }
}
