// The trace context helpers and a stage's span: parsing and formatting traceparent per W3C Trace
// Context, nothing at all while tracing is off, and with the SDK on (an in-memory exporter) a span
// that continues the given trace, or starts one, and hands its own context on.
import { trace } from '@opentelemetry/api'
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  SpanKind,
  formatTraceparent,
  parseTraceparent,
  setTracingEnabled,
  startStage,
  validTraceparent,
} from '../../core/tracing.ts'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const SPAN = '00f067aa0ba902b7'

describe('traceparent', () => {
  it('parses version 00 with a trace id, a parent id and the sampled flag', () => {
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-01`)).toEqual({
      traceId: TRACE,
      spanId: SPAN,
      traceFlags: 1,
      isRemote: true,
    })
    // Flags other than sampled are not carried.
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-03`)?.traceFlags).toBe(1)
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-00`)?.traceFlags).toBe(0)
  })

  it.each([
    ['undefined', undefined],
    ['empty', ''],
    ['upper case', `00-${TRACE.toUpperCase()}-${SPAN}-01`],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${SPAN}-01`],
    ['all-zero parent id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['another version', `01-${TRACE}-${SPAN}-01`],
    ['short trace id', `00-${TRACE.slice(1)}-${SPAN}-01`],
    ['trailing data', `00-${TRACE}-${SPAN}-01-extra`],
  ])('refuses %s', (_, value) => {
    expect(parseTraceparent(value)).toBeUndefined()
    expect(validTraceparent(value)).toBeUndefined()
  })

  it('formats a span context back into the same header', () => {
    const header = `00-${TRACE}-${SPAN}-01`
    expect(formatTraceparent(parseTraceparent(header)!)).toBe(header)
    expect(validTraceparent(header)).toBe(header)
  })
})

describe('startStage', () => {
  const exporter = new InMemorySpanExporter()
  const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] })

  beforeAll(() => {
    trace.setGlobalTracerProvider(provider)
  })
  afterEach(() => {
    setTracingEnabled(false)
    exporter.reset()
  })
  afterAll(async () => {
    await provider.shutdown()
    trace.disable()
  })

  it('does nothing while tracing is off', () => {
    expect(startStage('ingest telemetry', SpanKind.PRODUCER, `00-${TRACE}-${SPAN}-01`, {})).toBeUndefined()
    expect(exporter.getFinishedSpans()).toEqual([])
  })

  it('continues the given trace as a child and hands on its own context', () => {
    setTracingEnabled(true)
    const stage = startStage('process', SpanKind.CONSUMER, `00-${TRACE}-${SPAN}-01`, {
      'tributary.tenant': 'acme',
    })
    expect(stage).toBeDefined()
    const next = parseTraceparent(stage!.traceparent)!
    expect(next.traceId).toBe(TRACE)
    expect(next.spanId).not.toBe(SPAN)
    expect(next.traceFlags).toBe(1)
    stage!.fail('reject: schema-invalid')
    stage!.end()
    const [span] = exporter.getFinishedSpans()
    expect(span?.name).toBe('process')
    expect(span?.kind).toBe(SpanKind.CONSUMER)
    expect(span?.parentSpanContext?.spanId).toBe(SPAN)
    expect(span?.spanContext().spanId).toBe(next.spanId)
    expect(span?.attributes['tributary.tenant']).toBe('acme')
    expect(span?.status).toMatchObject({ code: 2, message: 'reject: schema-invalid' })
  })

  it('starts a new trace when there is no traceparent, or a malformed one', () => {
    setTracingEnabled(true)
    for (const given of [undefined, `00-${'0'.repeat(32)}-${SPAN}-01`]) {
      const stage = startStage('ingest telemetry', SpanKind.PRODUCER, given, {})!
      stage.end()
      const next = parseTraceparent(stage.traceparent)!
      expect(next.traceId).not.toBe('0'.repeat(32))
      expect(next.traceId).not.toBe(TRACE)
    }
    const spans = exporter.getFinishedSpans()
    expect(spans).toHaveLength(2)
    for (const span of spans) expect(span.parentSpanContext).toBeUndefined()
    expect(spans[0]!.spanContext().traceId).not.toBe(spans[1]!.spanContext().traceId)
  })
})
