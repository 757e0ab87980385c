// The processor seam (STYLE.md 4): a step is a plain function of an event and its context that
// says continue | accept | reject(reason) | drop; the runner beside it applies steps in order and
// stops at the first terminal result. No step knows Kafka or a device protocol.
import type { CloudEvent } from '../core/events/cloudevent.ts'

export type StepResult =
  | {
      readonly kind: 'continue'
      /** The event later steps see and the runner publishes (a step never mutates its input). */
      readonly event?: CloudEvent | undefined
      /** Extra topics of the same tenant the event also goes to (the `topic` of a copy action). */
      readonly copyTo?: readonly string[] | undefined
    }
  | { readonly kind: 'accept' }
  | { readonly kind: 'reject'; readonly reason: string; readonly detail?: string | undefined }
  | { readonly kind: 'drop' }

export interface StepContext {
  /** Size of the incoming record's value in bytes (quotas count the event's data instead). */
  readonly bytes: number
  /** When the processor took the event up. */
  readonly now: Date
}

export type Step = (event: CloudEvent, ctx: StepContext) => Promise<StepResult> | StepResult

export interface NamedStep {
  /** Written to the dead-letter header `tributary_step` when this step rejects. */
  readonly name: string
  readonly run: Step
}

/** Longest reject detail in UTF-8 bytes; the dead-letter record and its API listing carry it. */
export const DETAIL_MAX_BYTES = 4096
const ELLIPSIS = '…'

/** Cuts `detail` to DETAIL_MAX_BYTES at a character boundary, marking the cut with an ellipsis. */
export function truncateDetail(detail: string): string {
  // A UTF-16 unit is at most three UTF-8 bytes: short details need no encoding.
  if (detail.length * 3 <= DETAIL_MAX_BYTES) return detail
  const bytes = Buffer.from(detail)
  if (bytes.length <= DETAIL_MAX_BYTES) return detail
  let end = DETAIL_MAX_BYTES - Buffer.byteLength(ELLIPSIS)
  // Back up over UTF-8 continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end--
  return bytes.subarray(0, end).toString() + ELLIPSIS
}

export const next: StepResult = { kind: 'continue' }
export const accept: StepResult = { kind: 'accept' }
export const drop: StepResult = { kind: 'drop' }
export const reject = (reason: string, detail?: string): StepResult =>
  detail === undefined
    ? { kind: 'reject', reason }
    : { kind: 'reject', reason, detail: truncateDetail(detail) }
/** Continue with a changed event and, optionally, copies to other topics of the tenant. */
export const proceed = (event: CloudEvent, copyTo: readonly string[] = []): StepResult =>
  copyTo.length === 0 ? { kind: 'continue', event } : { kind: 'continue', event, copyTo }

/** What the runner decided for one event; `step` names the step that ended the run, if any. */
export type Verdict =
  | {
      readonly kind: 'accept'
      readonly step: string | undefined
      /** The event as the steps left it: what goes to the tenant topic. */
      readonly event: CloudEvent
      /** Extra topics of the tenant, deduplicated, in the order the steps named them. */
      readonly copies: readonly string[]
    }
  | { readonly kind: 'drop'; readonly step: string }
  | { readonly kind: 'reject'; readonly step: string; readonly reason: string; readonly detail?: string }

/**
 * Runs the steps in order, each on the event as the previous ones left it; an event that every
 * step lets continue is accepted. A step that throws (the registry or cluster state is down) fails
 * the whole run, so the batch is retried rather than dead-lettered for a reason that has nothing
 * to do with the event.
 */
export async function runSteps(
  steps: readonly NamedStep[],
  event: CloudEvent,
  ctx: StepContext,
): Promise<Verdict> {
  let current = event
  const copies = new Set<string>()
  for (const step of steps) {
    const result = await step.run(current, ctx)
    switch (result.kind) {
      case 'continue':
        if (result.event !== undefined) current = result.event
        for (const topic of result.copyTo ?? []) copies.add(topic)
        continue
      case 'accept':
        return { kind: 'accept', step: step.name, event: current, copies: [...copies] }
      case 'drop':
        return { kind: 'drop', step: step.name }
      case 'reject':
        return result.detail === undefined
          ? { kind: 'reject', step: step.name, reason: result.reason }
          : { kind: 'reject', step: step.name, reason: result.reason, detail: truncateDetail(result.detail) }
    }
  }
  return { kind: 'accept', step: undefined, event: current, copies: [...copies] }
}
