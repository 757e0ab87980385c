// When the OTEL_* variables switch tracing on, and the start errors for values it cannot use.
import { describe, expect, it } from 'vitest'
import { startTracing, tracingRequested } from '../../main/tracing.ts'
import { silentLogger } from '../../core/log.ts'

describe('tracingRequested', () => {
  it.each([
    [{}, false],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, true],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }, true],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }, false],
    [{ OTEL_TRACES_EXPORTER: 'otlp' }, true],
    [{ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, false],
    [{ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }, false],
    [{ OTEL_SDK_DISABLED: 'false', OTEL_TRACES_EXPORTER: 'otlp' }, true],
  ])('%j → %s', (env, on) => {
    expect(tracingRequested(env)).toBe(on)
  })

  it('refuses an exporter it does not have', () => {
    expect(() => tracingRequested({ OTEL_TRACES_EXPORTER: 'zipkin' })).toThrow(/OTEL_TRACES_EXPORTER=zipkin/)
  })
})

describe('startTracing', () => {
  const log = silentLogger

  it('stays off, loading nothing, without the variables', async () => {
    expect(await startTracing({}, ['adapters'], log)).toBeUndefined()
  })

  it.each([
    [{ OTEL_TRACES_SAMPLER: 'sometimes' }, /OTEL_TRACES_SAMPLER=sometimes/],
    [{ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' }, /OTEL_TRACES_SAMPLER_ARG=2/],
    [{ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: 'half' }, /ratio/],
  ])('refuses the sampler %j at start', async (sampler, message) => {
    await expect(
      startTracing({ OTEL_TRACES_EXPORTER: 'otlp', ...sampler }, ['adapters'], log),
    ).rejects.toThrow(message)
  })
})
