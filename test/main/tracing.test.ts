// When the OTEL_* variables switch tracing on, and the start errors for values it cannot use.
import { createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { describe, expect, it } from 'vitest'
import { SpanKind, startStage, tracingEnabled } from '../../core/tracing.ts'
import { waitUntil } from '../helpers/wait.ts'
import { startTracing, tracesUrl, tracingRequested } from '../../main/tracing.ts'
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

describe('tracesUrl', () => {
  it('takes the traces endpoint as given, or the base endpoint with /v1/traces', () => {
    expect(tracesUrl({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/custom' })).toBe(
      'http://c:4318/custom',
    )
    expect(tracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/' })).toBe('http://c:4318/v1/traces')
    expect(tracesUrl({})).toBeUndefined()
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

  it('stops even when the collector takes the connection and never answers, dropping the last spans', async () => {
    const sockets: Socket[] = []
    const stalled = createServer((socket) => void sockets.push(socket))
    await new Promise<void>((resolve) => stalled.listen(0, '127.0.0.1', resolve))
    const port = (stalled.address() as AddressInfo).port
    try {
      const tracing = await startTracing(
        { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `http://127.0.0.1:${port}/v1/traces` },
        ['adapters'],
        log,
      )
      expect(tracingEnabled()).toBe(true)
      startStage('ingest telemetry', SpanKind.PRODUCER, undefined, {})!.end()
      // Resolves (within the test's timeout, far below the exporter's own) though nothing answered.
      await tracing!.stop()
      expect(tracingEnabled()).toBe(false)
      // The export was under way: the collector took its connection (and never answered).
      await waitUntil(() => sockets.length > 0, { timeoutMs: 4_000, message: () => 'an export connection' })
    } finally {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => stalled.close(resolve))
    }
  }, 8_000)
})
