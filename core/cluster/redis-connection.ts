// ioredis connections for the Redis ClusterState, set up to fail fast: bounded connect and command
// timeouts, no offline queue, no resend after a reconnect; failures become CLUSTER_UNAVAILABLE.
import { Redis } from 'ioredis'
import { TributaryError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { ScriptedRedis } from './redis-scripts.ts'
import { CLUSTER_SCRIPTS } from './redis-scripts.ts'

export interface ConnectionOptions {
  readonly url: string
  readonly connectTimeoutMs: number
  readonly commandTimeoutMs: number
  /** CLIENT SETNAME, so that an operator can tell the connections apart in CLIENT LIST. */
  readonly name: string
}

export interface Connection {
  readonly redis: ScriptedRedis
  /** Connects, or rejects with CLUSTER_UNAVAILABLE (and stops reconnecting). */
  connect(): Promise<void>
  /** Why the connection cannot carry commands now (its last error, or its state); undefined when ready. */
  problem(): string | undefined
  /** Closes politely when Redis answers, else drops the socket; never throws. */
  close(): Promise<void>
}

/** `host:port` of a Redis URL, for messages and logs (the URL may carry a password). */
export function redisAddress(url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.hostname || '127.0.0.1'}:${parsed.port || '6379'}`
  } catch {
    return '(unparsable Redis URL)'
  }
}

export function unavailable(what: string, cause: unknown): TributaryError {
  if (cause instanceof TributaryError) return cause
  const reason = cause instanceof Error ? cause.message : String(cause)
  return new TributaryError('CLUSTER_UNAVAILABLE', `${what}: ${reason}`, { cause })
}

/** Reconnect backoff: 100 ms doubling up to 2 s, for as long as the process runs. */
const backoff = (attempt: number): number => Math.min(100 * 2 ** Math.min(attempt - 1, 5), 2_000)

export function openConnection(options: ConnectionOptions, log: Logger): Connection {
  const where = redisAddress(options.url)
  const redis = new Redis(options.url, {
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs,
    commandTimeout: options.commandTimeoutMs,
    // Calls made while Redis is away fail at once instead of piling up behind the reconnect.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: backoff,
    keepAlive: 10_000,
    connectionName: options.name,
    scripts: CLUSTER_SCRIPTS,
  }) as ScriptedRedis
  let lastError: unknown
  let down = false
  redis.on('error', (err: unknown) => {
    lastError = err
    // One line per outage, not one per reconnect attempt.
    if (!down) log.warn({ err, redis: where, connection: options.name }, 'redis connection failed')
    down = true
  })
  redis.on('ready', () => {
    if (down) log.info({ redis: where, connection: options.name }, 'redis connection restored')
    down = false
  })

  return {
    redis,
    async connect() {
      try {
        await redis.connect()
      } catch (err) {
        redis.disconnect()
        throw unavailable(`cannot connect to Redis at ${where}`, lastError ?? err)
      }
    },
    problem() {
      if (redis.status === 'ready') return undefined
      const reason = lastError instanceof Error ? lastError.message : undefined
      return reason === undefined || reason === '' ? `connection ${redis.status}` : reason
    },
    async close() {
      try {
        if (redis.status === 'ready') await redis.quit()
      } catch (err) {
        log.debug({ err, connection: options.name }, 'redis quit failed; dropping the connection')
      } finally {
        redis.disconnect()
      }
    },
  }
}
