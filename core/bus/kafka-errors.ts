// How @platformatic/kafka failures become Tributary errors: the client nests protocol errors in
// MultipleErrors chains, so every check here searches the whole chain.
import { MultipleErrors, findErrorBy } from '@platformatic/kafka'
import { TributaryError } from '../errors.ts'

/** True when a Kafka protocol error with this id (e.g. 'TOPIC_ALREADY_EXISTS') is in the chain. */
export function hasKafkaError(err: unknown, apiId: string): boolean {
  return findErrorBy(err as Error, 'apiId', apiId) !== null
}

/** True when the client says the metadata of a topic it was asked about does not exist. */
export function isUnknownTopic(err: unknown): boolean {
  // A metadata miss surfaces as a UserError "Unknown topic <name>." that no longer carries the
  // protocol error, so the message is the only mark it leaves.
  if (err instanceof Error && /^Unknown topic /.test(err.message)) return true
  return (
    hasKafkaError(err, 'UNKNOWN_TOPIC_OR_PARTITION') ||
    hasKafkaError(err, 'UNKNOWN_TOPIC_ID') ||
    hasKafkaError(err, 'INVALID_TOPIC_EXCEPTION')
  )
}

/** Every distinct message in an error chain, innermost first: readable health and log reasons. */
export function describeKafkaError(err: unknown): string {
  const messages: string[] = []
  const visit = (e: unknown, depth: number): void => {
    if (depth > 8 || !(e instanceof Error)) return
    const nested = e instanceof MultipleErrors || e instanceof AggregateError ? e.errors : []
    for (const inner of nested) visit(inner, depth + 1)
    if (e.cause !== undefined) visit(e.cause, depth + 1)
    const detail = (e as { serverErrorMessage?: unknown }).serverErrorMessage
    const message = typeof detail === 'string' && detail !== '' ? `${e.message} (${detail})` : e.message
    if (nested.length === 0 && message !== '' && !messages.includes(message)) messages.push(message)
  }
  visit(err, 0)
  if (messages.length === 0 && err instanceof Error) messages.push(err.message)
  return messages.length === 0 ? String(err) : messages.join('; ')
}

/** BUS_UNAVAILABLE with the client's reasons in the message and the original error as cause. */
export function unavailable(what: string, cause: unknown): TributaryError {
  return new TributaryError('BUS_UNAVAILABLE', `${what}: ${describeKafkaError(cause)}`, { cause })
}

/** A Tributary error for a failure while producing to `topics`. */
export function produceError(cause: unknown, topics: readonly string[]): TributaryError {
  if (cause instanceof TributaryError) return cause
  if (hasKafkaError(cause, 'MESSAGE_TOO_LARGE') || hasKafkaError(cause, 'RECORD_LIST_TOO_LARGE')) {
    return new TributaryError(
      'BUS_RECORD_TOO_LARGE',
      `the broker refused a record batch of ${topics.join(', ')} as too large: ${describeKafkaError(cause)}`,
      { cause },
    )
  }
  if (isUnknownTopic(cause)) {
    return new TributaryError('BUS_UNKNOWN_TOPIC', `topic ${topics.join(', ')} does not exist`, { cause })
  }
  return unavailable(`Kafka did not acknowledge records for ${topics.join(', ')}`, cause)
}

/** Rejects with BUS_UNAVAILABLE when `promise` takes longer than `ms` (it is not cancelled). */
export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new TributaryError('BUS_UNAVAILABLE', `${what}: no answer within ${ms} ms`)),
      ms,
    )
  })
  try {
    return await Promise.race([promise, expired])
  } finally {
    clearTimeout(timer)
  }
}
