// What a failed start tells the user: which part (the shared bus, registry or cluster state, or a
// component of a role) failed, on what, and what to do about it.
import type { Config } from '../core/config/index.ts'
import type { ErrorCode } from '../core/errors.ts'
import { TributaryError, isTributaryError } from '../core/errors.ts'

type Advice = (config: Config) => string | undefined

const bus: Advice = (config) =>
  config.kafkaBrokers === undefined
    ? `check that the data dir ${config.dataDir} (TRIBUTARY_DATA_DIR) is writable and not full`
    : `check that the Kafka brokers ${config.kafkaBrokers.join(',')} (TRIBUTARY_KAFKA_BROKERS) answer and let Tributary create its topics (prefix ${config.topicPrefix}, TRIBUTARY_TOPIC_PREFIX)`
const registry: Advice = (config) =>
  config.databaseUrl === undefined
    ? `check the registry in the data dir ${config.dataDir} (TRIBUTARY_DATA_DIR)`
    : 'check that PostgreSQL at TRIBUTARY_DATABASE_URL answers and that its user may create tables'
const none: Advice = () => undefined

/** What to do, by error code; codes whose message already says what to change get none. */
const ADVICE: Partial<Record<ErrorCode, Advice>> = {
  PORT_IN_USE: none,
  CONFIG_INVALID: none,
  BUS_DATA_DIR_LOCKED: none,
  REGISTRY_DATA_DIR_LOCKED: none,
  BUS_UNAVAILABLE: bus,
  BUS_CLOSED: bus,
  BUS_UNKNOWN_TOPIC: bus,
  BUS_CORRUPT: bus,
  REGISTRY_UNAVAILABLE: registry,
  REGISTRY_CORRUPT: registry,
  AUTH_UNAVAILABLE: registry,
  CLUSTER_UNAVAILABLE: () =>
    'check that Redis at TRIBUTARY_REDIS_URL answers, or unset it to keep the state in this process',
}

const fallback: Advice = () =>
  'the log line "start failed" has the cause; TRIBUTARY_LOG_LEVEL=debug shows each step'

function advice(err: unknown, config: Config): string | undefined {
  const code = isTributaryError(err) ? err.code : undefined
  return ((code === undefined ? undefined : ADVICE[code]) ?? fallback)(config)
}

/**
 * The error a failed start ends with: `role` is the role whose component failed, or undefined
 * for the parts every role shares. The code, cause and details of the original are kept.
 */
export function startFailure(
  role: string | undefined,
  component: string,
  err: unknown,
  config: Config,
): Error {
  const reason = err instanceof Error ? err.message : String(err)
  const where = role === undefined ? `the ${component}` : `the ${role} role (${component})`
  const hint = advice(err, config)
  const message = `${where} could not start: ${reason}${hint === undefined ? '' : `\n  what to do: ${hint}`}`
  if (isTributaryError(err))
    return new TributaryError(err.code, message, { cause: err, details: { ...err.details, role, component } })
  return new TributaryError('INTERNAL', message, { cause: err, details: { role, component } })
}
