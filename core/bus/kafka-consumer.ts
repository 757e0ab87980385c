// A Kafka subscription: one consumer-group member (classic protocol, eager round-robin) per
// subscribe() call, with its own fetch loop, partition workers and committer.
//
// Rebalances (eager): the client rejoins by itself when a heartbeat reports one. While it does, no
// new batch starts and commits wait (kafka-commits.ts). When the join completes, partitions that
// went elsewhere are revoked — nothing of theirs is delivered or committed any more and their
// buffers are dropped — and new ones start at the group's committed offset, or at `from`
// (committed at once, as the embedded bus does), before they are fetched.
import type { ConnectionOptions, ConsumerGroupJoinPayload, GroupAssignment } from '@platformatic/kafka'
import { ConnectionPool, Consumer } from '@platformatic/kafka'
import type { Logger } from '../log.ts'
import { createBackoff, createWakeup, sleep } from './backoff.ts'
import type { SubscribeOptions, Subscription } from './bus.ts'
import type { ClientOptions } from './kafka-client.ts'
import { createCommitter } from './kafka-commits.ts'
import { unavailable } from './kafka-errors.ts'
import { startFetcher } from './kafka-fetcher.ts'
import { PartitionWorker } from './kafka-partition.ts'
import { committedOffsets, outOfRangePosition, resolvePositions } from './kafka-positions.ts'

const STARTUP_TIMEOUT_MS = 30_000

export interface SubscriptionContext {
  readonly client: ClientOptions
  readonly connection: ConnectionOptions
  readonly sessionTimeoutMs: number
  readonly heartbeatIntervalMs: number
  readonly drainTimeoutMs: number
  partitionMaxBytes(topic: string): number
  readonly log: Logger
  /** Called once the subscription has closed. */
  onClosed(subscription: Subscription): void
}

export async function openSubscription(
  options: SubscribeOptions,
  context: SubscriptionContext,
): Promise<Subscription> {
  const { log } = context
  const from = options.from ?? 'latest'
  // A JoinGroup may be held until every member rejoined, up to the rebalance timeout: requests on
  // the group connection must be allowed to wait that long.
  const group = {
    sessionTimeout: context.sessionTimeoutMs,
    heartbeatInterval: context.heartbeatIntervalMs,
    rebalanceTimeout: context.sessionTimeoutMs * 2,
  }
  const consumer = new Consumer<Buffer, Buffer, Buffer, Buffer>({
    ...context.client,
    ...group,
    requestTimeout: group.rebalanceTimeout + 5000,
    groupId: options.group,
    autocommit: false,
  })
  const pool = new ConnectionPool(context.client.clientId, context.connection)
  const owned = new Map<string, PartitionWorker>()
  const retiring = new Set<Promise<void>>()
  const resumed = createWakeup()
  const rejoinBackoff = createBackoff(1000)
  let paused = false
  let closing: Promise<void> | undefined
  let memberId: string | null = null
  let reconciling: Promise<void> = Promise.resolve()
  const stopping = new AbortController()
  // subscribe() gives up when the first partitions cannot be started within this.
  const startupDeadline = performance.now() + STARTUP_TIMEOUT_MS
  let started = false
  let startupError: unknown

  const committer = createCommitter(consumer, (key) => owned.has(key), log)
  const fetcher = startFetcher({
    consumer,
    pool,
    topics: options.topics,
    workers: () => owned.values(),
    partitionMaxBytes: (topic) => context.partitionMaxBytes(topic),
    outOfRange: (topic, partition, requested) => outOfRangePosition(consumer, topic, partition, requested),
    log,
  })

  function worker(topic: string, partition: number, start: number): PartitionWorker {
    return new PartitionWorker(topic, partition, start, {
      options,
      commit: (offset) => {
        if (options.commit !== false) committer.set(topic, partition, offset)
      },
      // A member that is rejoining may be about to lose the partition: start no batch until it knows.
      isPaused: () => paused || !consumer.isActive(),
      resumed: () => resumed.signal,
      wantsRecords: () => fetcher.wake(),
    })
  }

  function retire(key: string, w: PartitionWorker): void {
    owned.delete(key)
    committer.drop(key)
    const done = w.revoke()
    retiring.add(done)
    void done.finally(() => retiring.delete(done))
  }

  /** Start offsets of newly assigned partitions, retried until they resolve or a newer join wins. */
  async function startOffsets(topic: string, partitions: number[], generation: number) {
    const backoff = createBackoff(250)
    for (;;) {
      try {
        const committed =
          options.reset === true
            ? new Map<number, number>()
            : await committedOffsets(consumer, topic, partitions)
        const missing = partitions.filter((p) => !committed.has(p))
        const resolved =
          missing.length === 0
            ? new Map<number, number>()
            : await resolvePositions(consumer, topic, missing, from)
        return partitions.map((p) => ({
          partition: p,
          offset: committed.get(p) ?? resolved.get(p)!,
          fromCommit: committed.has(p),
        }))
      } catch (err) {
        if (closing !== undefined || consumer.generationId !== generation) return undefined
        if (!started && performance.now() > startupDeadline) throw err
        log.warn({ err, topic, group: options.group }, 'kafka bus: cannot resolve start offsets; retrying')
        await sleep(backoff.next(), stopping.signal)
      }
    }
  }

  async function reconcile(assignments: readonly GroupAssignment[], memberChanged: boolean): Promise<void> {
    const generation = consumer.generationId
    const assigned = new Map<string, { topic: string; partition: number }>()
    for (const { topic, partitions } of assignments) {
      if (!options.topics.includes(topic)) continue
      for (const partition of partitions) assigned.set(`${topic}:${partition}`, { topic, partition })
    }
    // A new member id means the group dropped us meanwhile: someone else may have moved every
    // partition on, so nothing we held is trusted.
    for (const [key, w] of owned) if (memberChanged || !assigned.has(key)) retire(key, w)
    const added = new Map<string, number[]>()
    for (const [key, { topic, partition }] of assigned) {
      if (!owned.has(key)) added.set(topic, [...(added.get(topic) ?? []), partition])
    }
    for (const [topic, partitions] of added) {
      const starts = await startOffsets(topic, partitions, generation)
      if (starts === undefined || closing !== undefined || consumer.generationId !== generation) return
      for (const { partition, offset, fromCommit } of starts) {
        const w = worker(topic, partition, offset)
        owned.set(w.key, w)
        // Record where we start, so the next owner of this partition continues from here.
        if (!fromCommit && options.commit !== false) committer.set(topic, partition, offset)
        w.start()
      }
    }
    committer.kick()
    resumed.fire()
    fetcher.wake()
  }

  function onJoin(payload: ConsumerGroupJoinPayload): void {
    const memberChanged = memberId !== null && payload.memberId !== memberId
    memberId = payload.memberId
    const assignments = payload.assignments ?? consumer.assignments ?? []
    reconciling = reconciling
      .then(() => reconcile(assignments, memberChanged))
      .catch((err: unknown) => {
        if (started) log.error({ err, group: options.group }, 'kafka bus: cannot take over partitions')
        else startupError = err
      })
  }

  // The client emits 'error' only when a background rejoin gave up: join again after a pause.
  function onGroupError(err: unknown): void {
    log.warn({ err, group: options.group }, 'kafka bus: consumer lost its group; joining again')
    const retry = (): void => {
      if (closing !== undefined || consumer.isActive()) return
      consumer.joinGroup(group).then(
        () => rejoinBackoff.reset(),
        () => setTimeout(retry, rejoinBackoff.next()).unref(),
      )
    }
    setTimeout(retry, rejoinBackoff.next()).unref()
  }

  consumer.on('consumer:group:join', onJoin)
  consumer.on('error', onGroupError)
  consumer.topics.trackAll(...options.topics)
  try {
    await consumer.joinGroup(group)
    await reconciling
    if (startupError !== undefined) {
      throw new Error('cannot read the start offsets of the assigned partitions', { cause: startupError })
    }
    started = true
  } catch (err) {
    stopping.abort()
    fetcher.stop()
    await Promise.allSettled([
      ...[...owned.values()].map((w) => w.stop()),
      consumer.close(true),
      pool.close(),
    ])
    throw unavailable(`cannot join consumer group ${options.group}`, err)
  }

  const subscription: Subscription = {
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
      fetcher.wake()
    },
    assignments: () => [...owned.keys()].sort(),
    async seek(position) {
      const byTopic = new Map<string, PartitionWorker[]>()
      for (const w of owned.values()) byTopic.set(w.topic, [...(byTopic.get(w.topic) ?? []), w])
      for (const [topic, workers] of byTopic) {
        const offsets = await resolvePositions(
          consumer,
          topic,
          workers.map((w) => w.partition),
          position,
        )
        for (const w of workers) w.seek(offsets.get(w.partition)!)
      }
    },
    close() {
      closing ??= (async () => {
        const deadline = performance.now() + context.drainTimeoutMs
        stopping.abort()
        fetcher.stop()
        const drained = await settlesBefore(
          Promise.allSettled([...[...owned.values()].map((w) => w.stop()), ...retiring]),
          deadline,
        )
        if (!drained)
          log.warn({ group: options.group }, 'kafka bus: closing before every in-flight batch finished')
        if (!(await committer.flush(deadline))) {
          log.warn({ group: options.group }, 'kafka bus: closing before every offset was committed')
        }
        owned.clear()
        try {
          await consumer.close()
        } catch (err) {
          log.warn({ err, group: options.group }, 'kafka bus: could not leave the consumer group cleanly')
          await consumer.close(true).catch(() => undefined)
        }
        await pool.close().catch(() => undefined)
        context.onClosed(subscription)
      })()
      return closing
    },
  }
  return subscription
}

/** True when `promise` settles before `deadline` (performance.now()); it is not cancelled. */
async function settlesBefore(promise: Promise<unknown>, deadline: number): Promise<boolean> {
  const timeout = new AbortController()
  const settled = await Promise.race([
    promise.then(() => true),
    sleep(Math.max(0, deadline - performance.now()), timeout.signal).then(() => false),
  ])
  timeout.abort()
  return settled
}
