// W3C trace context through the pipeline, and an OpenTelemetry span around each stage that
// handles an event: the adapter that receives it, the processor that decides it, the delivery that
// hands it to an application. A stage continues the trace named by the event's `traceparent`
// (CloudEvents distributed tracing extension) or starts one, and passes its own span on as the
// next `traceparent`, so the spans of every process form one tree.
//
// Spans go through @opentelemetry/api's global tracer, which main/tracing.ts backs with the SDK
// when the standard OTEL_* variables ask for it. Off (the default), startStage returns undefined
// before touching the API: a stage then carries the traceparent it was given unchanged.
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, trace } from '@opentelemetry/api'
import type { Attributes, SpanContext } from '@opentelemetry/api'

export { SpanKind }
export type { Attributes }

/** version 00: trace id, parent id, flags; lowercase hex only (W3C Trace Context, 3.2). */
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

let enabled = false
const tracer = trace.getTracer('tributary')

/** main/tracing.ts switches spans on once a tracer provider is registered, and off at stop. */
export function setTracingEnabled(on: boolean): void {
  enabled = on
}

export const tracingEnabled = (): boolean => enabled

/** The span context a well-formed `traceparent` names; undefined for anything else. */
export function parseTraceparent(value: string | undefined): SpanContext | undefined {
  if (value === undefined) return undefined
  const m = TRACEPARENT.exec(value)
  if (m === null) return undefined
  const [, traceId = '', spanId = '', flags = '00'] = m
  // All-zero ids are invalid (3.2.2.3, 3.2.2.4).
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined
  return { traceId, spanId, traceFlags: Number.parseInt(flags, 16) & TraceFlags.SAMPLED, isRemote: true }
}

export function formatTraceparent(context: SpanContext): string {
  const sampled = (context.traceFlags & TraceFlags.SAMPLED) !== 0
  return `00-${context.traceId}-${context.spanId}-${sampled ? '01' : '00'}`
}

/** A well-formed traceparent as given; anything else dropped (a malformed one is not an error). */
export const validTraceparent = (value: string | undefined): string | undefined =>
  parseTraceparent(value) === undefined ? undefined : value

/** One stage's span. */
export interface StageSpan {
  /** This span as a traceparent: what the stage puts on the event or request it passes on. */
  readonly traceparent: string
  set(attributes: Attributes): void
  /** Marks the span failed, with why. */
  fail(reason: string): void
  end(): void
}

/**
 * Starts a span that continues `traceparent`, or a new trace when there is none (or it is
 * malformed). Undefined while tracing is off: the caller goes on with the traceparent it had.
 */
export function startStage(
  name: string,
  kind: SpanKind,
  traceparent: string | undefined,
  attributes: Attributes,
): StageSpan | undefined {
  if (!enabled) return undefined
  const parent = parseTraceparent(traceparent)
  const context = parent === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, parent)
  const span = tracer.startSpan(name, { kind, attributes }, context)
  return {
    traceparent: formatTraceparent(span.spanContext()),
    set: (more) => void span.setAttributes(more),
    fail: (reason) => void span.setStatus({ code: SpanStatusCode.ERROR, message: reason }),
    end: () => span.end(),
  }
}
