// The ClusterState port: what the processes of one deployment share at run time — who holds a
// device's session, rate limits, connection counts. In-process by default; Redis when
// TRIBUTARY_REDIS_URL is set, so that every instance sees the same state.

/** Where a device session lives: the process (instance) and a connection id unique within it. */
/** Longest message body or shared value, in bytes of UTF-16 code units. */
export const MESSAGE_MAX_BYTES = 4 * 1024 * 1024

export interface SessionOwner {
  readonly instance: string
  readonly connection: string
}

export interface SessionKey {
  readonly tenant: string
  readonly device: string
}

/** Asks the holder of a session to close it (a newer connection took it over). */
export interface TakeoverNotice extends SessionKey {
  /** The connection that must close. */
  readonly previous: SessionOwner
  /** The connection that took the session over. */
  readonly by: SessionOwner
}

export interface RateDecision {
  readonly allowed: boolean
  /** When not allowed: milliseconds until one more unit is available. */
  readonly retryAfterMs: number
}

export interface ClusterHealth {
  readonly ok: boolean
  readonly reason?: string | undefined
}

export interface ClusterState {
  readonly kind: 'memory' | 'redis'
  /** This process's instance id (random per start). */
  readonly instance: string

  /**
   * Records `owner` as the holder of the device's session and returns the previous holder, if any
   * (on this or another instance). The caller closes a local previous holder itself; a remote one
   * is told through onTakeover on its instance.
   */
  claimSession(key: SessionKey, owner: SessionOwner): Promise<SessionOwner | undefined>
  /** Forgets the session if `owner` still holds it (a later claim wins). */
  releaseSession(key: SessionKey, owner: SessionOwner): Promise<void>
  /** Who holds the device's session now. */
  sessionOwner(key: SessionKey): Promise<SessionOwner | undefined>
  /**
   * Called on the instance holding `previous` when another instance claimed its session. Returns
   * an unsubscribe function.
   */
  onTakeover(listener: (notice: TakeoverNotice) => void): () => void

  /**
   * Token bucket: takes `cost` (default 1) from the bucket `key`, which refills at `ratePerSecond`
   * up to `burst`. Refused takes change nothing.
   */
  take(key: string, ratePerSecond: number, burst: number, cost?: number): Promise<RateDecision>

  /**
   * Counts a connection of `scope` (e.g. a tenant) if that keeps it at or under `limit`; returns
   * false (and counts nothing) otherwise. Slots of an instance that stopped without releasing them
   * (a crash) are dropped once that instance's heartbeat lapses.
   */
  acquireSlot(scope: string, holder: string, limit: number): Promise<boolean>
  releaseSlot(scope: string, holder: string): Promise<void>
  slots(scope: string): Promise<number>

  /**
   * Command routes: this instance can deliver commands to the device now (a live connection, a
   * long poll or an observation). Several instances may hold a route to one device at once.
   */
  addRoute(key: SessionKey): Promise<void>
  removeRoute(key: SessionKey): Promise<void>
  /** The live instances holding a route to the device (a crashed instance's routes are left out). */
  routes(key: SessionKey): Promise<string[]>

  /**
   * Sends `body` on `topic` to one instance (at most once: lost when that instance is gone), or to
   * every instance including this one. Bodies are at most MESSAGE_MAX_BYTES long.
   */
  send(instance: string, topic: string, body: string): Promise<void>
  broadcast(topic: string, body: string): Promise<void>
  /** Receives what send() and broadcast() delivered to this instance on `topic`. */
  onMessage(topic: string, listener: (body: string) => void): () => void

  /** A shared value that lapses after `ttlMs`; values are at most MESSAGE_MAX_BYTES long. */
  setValue(key: string, value: string, ttlMs: number): Promise<void>
  getValue(key: string): Promise<string | undefined>
  /** Forgets a shared value (nothing happens when there is none). */
  deleteValue(key: string): Promise<void>

  /**
   * Whether the shared state answers now, with a readable reason when it does not (never throws;
   * answers within the command timeout). The management listener's readiness asks it.
   */
  health(): Promise<ClusterHealth>

  start(): Promise<void>
  /** Releases what this instance holds (sessions, routes, slots) and closes connections. */
  stop(): Promise<void>
}
