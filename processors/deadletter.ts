// Dead-letter records: the original ingress record unchanged (key, value, headers) on the
// dead-letter topic, plus headers saying which step refused it, why, when it first failed and,
// when the step said more (validation errors), the detail.
import type { BusMessage, OutgoingRecord } from '../core/bus/bus.ts'
import { truncateDetail } from './step.ts'

/** The step that refused the event (`decode` when the record was not a CloudEvent). */
export const STEP_HEADER = 'tributary_step'
/** A stable reason, e.g. `device-disabled`, `quota`. */
export const REASON_HEADER = 'tributary_reason'
/** ISO 8601 time of the first failure; kept when a dead letter is replayed and refused again. */
export const FIRST_FAILURE_HEADER = 'tributary_first_failure'
/** What the step said beyond the reason (e.g. validation errors as JSON), at most 4 KiB. */
export const DETAIL_HEADER = 'tributary_detail'
/** The webhook subscription whose deliveries failed, on letters of step `webhook`. */
export const SUBSCRIPTION_HEADER = 'tributary_subscription'

export function deadLetter(
  topic: string,
  message: BusMessage,
  step: string,
  reason: string,
  now: Date,
  detail?: string,
): OutgoingRecord {
  const headers = new Map(message.headers)
  headers.set(STEP_HEADER, Buffer.from(step))
  headers.set(REASON_HEADER, Buffer.from(reason))
  if (!headers.has(FIRST_FAILURE_HEADER)) headers.set(FIRST_FAILURE_HEADER, Buffer.from(now.toISOString()))
  // A replayed dead letter refused again must not keep the detail of its earlier refusal.
  if (detail === undefined || detail === '') headers.delete(DETAIL_HEADER)
  else headers.set(DETAIL_HEADER, Buffer.from(truncateDetail(detail)))
  return { topic, key: message.key, value: message.value, headers }
}
