// Settings every @platformatic/kafka client of the bus shares: bounded connects, requests and
// retries, so an unreachable cluster turns into BUS_UNAVAILABLE instead of an endless wait.
import type { BaseOptions, ConnectionOptions } from '@platformatic/kafka'

export type ClientOptions = BaseOptions & { readonly clientId: string; readonly bootstrapBrokers: string[] }

const CONNECT_TIMEOUT_MS = 5_000
const REQUEST_TIMEOUT_MS = 30_000
/** What the broker is told to wait for, e.g. for in-sync replicas to acknowledge a produce. */
const BROKER_TIMEOUT_MS = 10_000
const RETRIES = 3

export function connectionOptions(): ConnectionOptions {
  return { connectTimeout: CONNECT_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS }
}

export function clientOptions(brokers: readonly string[], clientId: string): ClientOptions {
  return {
    ...connectionOptions(),
    clientId,
    bootstrapBrokers: [...brokers],
    timeout: BROKER_TIMEOUT_MS,
    // A number above 1: the idempotent producer replaces 0 or 1 (and no value) by "retry forever".
    retries: RETRIES,
    retryDelay: (_client, _operation, attempt) => Math.min(250 * 2 ** Math.max(0, attempt - 1), 2_000),
    autocreateTopics: false,
  }
}
