// The processor seam (STYLE.md 4): a step is a plain function of an event and its context that
// says continue | accept | reject(reason) | drop; the runner beside it applies steps in order and
// stops at the first terminal result. No step knows Kafka or a device protocol.
import type { CloudEvent } from '../core/events/cloudevent.ts'

export type StepResult =
  | { readonly kind: 'continue' }
  | { readonly kind: 'accept' }
  | { readonly kind: 'reject'; readonly reason: string }
  | { readonly kind: 'drop' }

export interface StepContext {
  /** Size of the incoming record's value in bytes (quotas count it). */
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

export const next: StepResult = { kind: 'continue' }
export const accept: StepResult = { kind: 'accept' }
export const drop: StepResult = { kind: 'drop' }
export const reject = (reason: string): StepResult => ({ kind: 'reject', reason })

/** What the runner decided for one event; `step` names the step that ended the run, if any. */
export type Verdict =
  | { readonly kind: 'accept'; readonly step: string | undefined }
  | { readonly kind: 'drop'; readonly step: string }
  | { readonly kind: 'reject'; readonly step: string; readonly reason: string }

/**
 * Runs the steps in order; an event that every step lets continue is accepted. A step that throws
 * (the registry or cluster state is down) fails the whole run, so the batch is retried rather
 * than dead-lettered for a reason that has nothing to do with the event.
 */
export async function runSteps(
  steps: readonly NamedStep[],
  event: CloudEvent,
  ctx: StepContext,
): Promise<Verdict> {
  for (const step of steps) {
    const result = await step.run(event, ctx)
    switch (result.kind) {
      case 'continue':
        continue
      case 'accept':
        return { kind: 'accept', step: step.name }
      case 'drop':
        return { kind: 'drop', step: step.name }
      case 'reject':
        return { kind: 'reject', step: step.name, reason: result.reason }
    }
  }
  return { kind: 'accept', step: undefined }
}
