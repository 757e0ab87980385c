// The fetch loop of one Kafka subscription: decides when to fetch which partitions (those that want
// records: not paused, buffer not full) from each leader, and how long the broker may wait.
import type { ClusterMetadata } from '@platformatic/kafka'
import { createBackoff, createWakeup, sleep } from './backoff.ts'
import { describeKafkaError } from './kafka-errors.ts'
import type { FetchContext, Wanted } from './kafka-fetch.ts'
import { fetchPartitions } from './kafka-fetch.ts'
import type { PartitionWorker } from './kafka-partition.ts'

/**
 * How long the broker may hold a fetch open waiting for records when every partition is read to its
 * end; bounds how late a pause or close is seen.
 */
const FETCH_WAIT_MS = 500
/**
 * While other partitions of the broker catch up: the pause before polling the partitions read to
 * their end, and the first wait of that poll.
 */
const CATCH_UP_POLL_MS = 10
/** Caps the doubling of CATCH_UP_POLL_MS (10 ms · 2^6 > FETCH_WAIT_MS). */
const MAX_EMPTY_POLLS = 6
/** A cluster back from an outage is noticed within this. */
const MAX_FETCH_BACKOFF_MS = 5_000
/** With nothing to fetch, the loop sleeps until woken, and looks again after this anyway. */
const IDLE_CHECK_MS = 60_000

export interface FetcherContext extends FetchContext {
  readonly topics: readonly string[]
  workers(): Iterable<PartitionWorker>
}

export interface Fetcher {
  /** Looks at the partitions again (one wants records, was added, resumed or seeked). */
  wake(): void
  /** Stops after the fetch in flight; does not wait for it. */
  stop(): void
}

/** Per broker: its fetch in flight, its backoff after failures, and how its short waits grow. */
interface NodeState {
  fetching: boolean
  /** No fetch before this (performance.now()) after a failure; 0 when healthy. */
  retryAt: number
  readonly backoff: ReturnType<typeof createBackoff>
  /** While others catch up: when partitions read to their end may be polled. */
  pollAt: number | undefined
  /** Short-wait fetches in a row that moved no partition on. */
  emptyPolls: number
}

interface NodeWork {
  readonly wanted: Wanted[]
  /** A partition of this broker that does not want records now is known to have more waiting. */
  busyBehind: boolean
}

/**
 * One fetch per broker at a time. The broker may hold it open for the full FETCH_WAIT_MS (long poll)
 * only when no other partition of that broker is known to have records waiting there: one whose
 * buffer drains meanwhile would sit idle until the long poll returns. While some catch up, a fetch
 * that carries a partition with records waiting asks for no wait; partitions read to their end are
 * fetched along with those, or after CATCH_UP_POLL_MS with a short wait that doubles while such
 * fetches find nothing: no spinning when a handler is stuck, and little delay for new records.
 */
export function startFetcher(context: FetcherContext): Fetcher {
  const { consumer, log } = context
  const wakeup = createWakeup()
  const stopped = new AbortController()
  const retry = createBackoff(250)
  const nodes = new Map<number, NodeState>()
  /** Partitions in a fetch now: each is in at most one, so its records arrive in order. */
  const inFlight = new Set<PartitionWorker>()
  /**
   * What the last fetch of a partition said: true when the broker holds records past its new
   * position, false when it was read to its end; unknown before its first answer.
   */
  const behind = new WeakMap<PartitionWorker, boolean>()
  let lastProblem = ''

  function problem(err: unknown, what: string): void {
    const reason = describeKafkaError(err)
    // The same failure repeats every backoff; log it when it changes.
    if (reason !== lastProblem) log.warn({ err, group: consumer.groupId }, `kafka bus: ${what}`)
    lastProblem = reason
  }

  function nodeState(node: number): NodeState {
    let state = nodes.get(node)
    if (state === undefined) {
      state = { fetching: false, retryAt: 0, backoff: createBackoff(250), pollAt: undefined, emptyPolls: 0 }
      nodes.set(node, state)
    }
    return state
  }

  function start(node: number, state: NodeState, wanted: Wanted[], metadata: ClusterMetadata, wait: number) {
    state.fetching = true
    state.pollAt = undefined
    for (const w of wanted) inFlight.add(w.worker)
    const failed = (): void => {
      state.retryAt = performance.now() + Math.min(state.backoff.next(), MAX_FETCH_BACKOFF_MS)
    }
    void fetchPartitions(
      { node, wanted, metadata, maxWaitTime: wait },
      { context, behind, problem, stopped: stopped.signal },
    )
      .then(
        ({ ok, progress }) => {
          if (progress) state.emptyPolls = 0
          else if (wait < FETCH_WAIT_MS) state.emptyPolls = Math.min(state.emptyPolls + 1, MAX_EMPTY_POLLS)
          if (!ok) return failed()
          state.backoff.reset()
          state.retryAt = 0
          if ([...nodes.values()].every((s) => s.retryAt === 0)) lastProblem = ''
        },
        (err: unknown) => {
          problem(err, 'fetch failed; retrying')
          failed()
        },
      )
      .finally(() => {
        state.fetching = false
        for (const w of wanted) inFlight.delete(w.worker)
        wakeup.fire()
      })
  }

  /** Starts the fetches that are due; returns how soon to look again if nothing wakes the loop. */
  async function schedule(): Promise<number> {
    const workers = [...context.workers()].filter((w) => !inFlight.has(w))
    if (!workers.some((w) => w.fetchPosition() !== undefined)) return IDLE_CHECK_MS
    let metadata: ClusterMetadata
    try {
      metadata = await consumer.metadata({ topics: [...context.topics] })
    } catch (err) {
      problem(err, 'cannot read topic metadata for fetching; retrying')
      return Math.min(retry.next(), MAX_FETCH_BACKOFF_MS)
    }
    const work = new Map<number, NodeWork>()
    let next = IDLE_CHECK_MS
    let leaderless = false
    for (const worker of workers) {
      // Asked again: positions may have changed while the metadata was read.
      const from = worker.fetchPosition()
      const leader = metadata.topics.get(worker.topic)?.partitions[worker.partition]?.leader
      if (leader === undefined || leader < 0) {
        leaderless ||= from !== undefined
        continue
      }
      let entry = work.get(leader)
      if (entry === undefined) work.set(leader, (entry = { wanted: [], busyBehind: false }))
      if (from !== undefined) entry.wanted.push({ worker, from })
      else if (behind.get(worker) === true) entry.busyBehind = true
    }
    if (leaderless) {
      consumer.clearMetadata()
      next = Math.min(retry.next(), MAX_FETCH_BACKOFF_MS)
    } else {
      retry.reset()
    }
    const now = performance.now()
    for (const [node, { wanted, busyBehind }] of work) {
      const state = nodeState(node)
      if (state.fetching) continue
      if (wanted.length === 0) {
        state.pollAt = undefined
        continue
      }
      if (now < state.retryAt) {
        next = Math.min(next, state.retryAt - now)
        continue
      }
      let wait = FETCH_WAIT_MS
      if (busyBehind) {
        // Partitions of this broker with records waiting there will want them once their handlers
        // catch up: never hold a fetch long for them.
        wait = 0
        if (wanted.every((w) => behind.get(w.worker) === false)) {
          // Only partitions read to their end want records: give the others a moment to catch up
          // (one that wants records wakes the loop), then poll briefly, longer while polls find
          // nothing, so a stuck handler neither makes this spin nor delays the others' new records.
          state.pollAt ??= now + CATCH_UP_POLL_MS
          if (now < state.pollAt) {
            next = Math.min(next, state.pollAt - now)
            continue
          }
          wait = Math.min(CATCH_UP_POLL_MS * 2 ** state.emptyPolls, FETCH_WAIT_MS)
        }
      }
      start(node, state, wanted, metadata, wait)
    }
    return next
  }

  void (async () => {
    while (!stopped.signal.aborted) {
      // Taken before looking, so a wake-up while looking is not lost.
      const woken = wakeup.signal
      let wait: number
      try {
        wait = await schedule()
      } catch (err) {
        problem(err, 'fetch loop failed; retrying')
        wait = Math.min(retry.next(), MAX_FETCH_BACKOFF_MS)
      }
      await sleep(wait, woken)
    }
  })()

  return {
    wake: () => wakeup.fire(),
    stop() {
      stopped.abort()
      wakeup.fire()
    },
  }
}
