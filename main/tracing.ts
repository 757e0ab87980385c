// OpenTelemetry tracing, off unless the standard OTEL_* variables ask for it: spans of every stage
// (core/tracing.ts) exported over OTLP/HTTP by a batch processor. The SDK is loaded only when
// tracing is on, so a process without it pays neither the import nor a span.
//
// On when OTEL_TRACES_EXPORTER is `otlp`, or when it is unset and an OTLP endpoint is set
// (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT); OTEL_SDK_DISABLED=true
// and OTEL_TRACES_EXPORTER=none keep it off. The exporter reads its own variables (endpoint,
// headers, timeout); the sampler comes from OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, the
// service name from OTEL_SERVICE_NAME (default `tributary`, with the roles as an attribute).
import { trace } from '@opentelemetry/api'
import type { Sampler } from '@opentelemetry/sdk-trace'
import { TributaryError } from '../core/errors.ts'
import type { Logger } from '../core/log.ts'
import { setTracingEnabled } from '../core/tracing.ts'
import type { Role } from './roles.ts'
import { VERSION } from './version.ts'

type Env = Readonly<Record<string, string | undefined>>

/** How long a stop waits for the last spans to be exported. */
const STOP_EXPORT_MS = 2_000

export interface Tracing {
  /** Exports what is still buffered, then stops recording spans. */
  stop(): Promise<void>
}

const set = (value: string | undefined): value is string => value !== undefined && value.trim() !== ''

/** Whether the OTEL_* variables switch tracing on; a value it cannot use is a start error. */
export function tracingRequested(env: Env): boolean {
  if (env['OTEL_SDK_DISABLED']?.trim().toLowerCase() === 'true') return false
  const exporters = env['OTEL_TRACES_EXPORTER']
  if (set(exporters)) {
    const names = exporters.split(',').map((name) => name.trim().toLowerCase())
    const unknown = names.filter((name) => name !== 'otlp' && name !== 'none')
    if (unknown.length > 0)
      throw configError(`OTEL_TRACES_EXPORTER=${exporters}: only otlp (or none) is supported`)
    return names.includes('otlp')
  }
  return set(env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']) || set(env['OTEL_EXPORTER_OTLP_ENDPOINT'])
}

function configError(message: string): TributaryError {
  return new TributaryError('CONFIG_INVALID', `invalid configuration:\n  - ${message}`, {
    details: { problems: [message] },
  })
}

/**
 * Where spans go, from the environment the process was started with (which need not be
 * process.env, whence the exporter would read it): the traces endpoint as given, or the base
 * endpoint with /v1/traces; undefined leaves the exporter's default (http://localhost:4318).
 */
export function tracesUrl(env: Env): string | undefined {
  const traces = env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']
  if (set(traces)) return traces.trim()
  const base = env['OTEL_EXPORTER_OTLP_ENDPOINT']
  return set(base) ? `${base.trim().replace(/\/+$/, '')}/v1/traces` : undefined
}

/** The sampler OTEL_TRACES_SAMPLER names (the specification's values); parentbased_always_on by default. */
async function samplerOf(env: Env): Promise<Sampler> {
  const sdk = await import('@opentelemetry/sdk-trace')
  const name = (env['OTEL_TRACES_SAMPLER'] ?? 'parentbased_always_on').trim().toLowerCase()
  const arg = env['OTEL_TRACES_SAMPLER_ARG']
  const ratio = (): number => {
    if (!set(arg)) return 1
    const value = Number(arg)
    if (!Number.isFinite(value) || value < 0 || value > 1)
      throw configError(`OTEL_TRACES_SAMPLER_ARG=${arg}: a ratio from 0 to 1`)
    return value
  }
  switch (name) {
    case 'always_on':
      return new sdk.AlwaysOnSampler()
    case 'always_off':
      return new sdk.AlwaysOffSampler()
    case 'traceidratio':
      return new sdk.TraceIdRatioBasedSampler(ratio())
    case 'parentbased_always_on':
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() })
    case 'parentbased_always_off':
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() })
    case 'parentbased_traceidratio':
      return new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(ratio()) })
    default:
      throw configError(
        `OTEL_TRACES_SAMPLER=${name}: one of always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio`,
      )
  }
}

/** Registers the SDK when the environment asks for tracing; undefined when it does not. */
export async function startTracing(
  env: Env,
  roles: readonly Role[],
  log: Logger,
): Promise<Tracing | undefined> {
  if (!tracingRequested(env)) return undefined
  const sampler = await samplerOf(env)
  const [sdk, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ])
  const resource = resourceFromAttributes({
    'service.name': set(env['OTEL_SERVICE_NAME']) ? env['OTEL_SERVICE_NAME'] : 'tributary',
    'service.version': VERSION,
    'tributary.roles': roles.join(','),
  })
  const url = tracesUrl(env)
  const provider = new sdk.TracerProvider({
    resource,
    sampler,
    spanProcessors: [
      new sdk.BatchSpanProcessor({ exporter: new OTLPTraceExporter(url === undefined ? {} : { url }) }),
    ],
  })
  if (!trace.setGlobalTracerProvider(provider)) {
    // One provider per process: a second start in the same process (tests) keeps the first.
    await provider.shutdown()
    log.warn('a tracer provider is already registered in this process; keeping it')
  }
  setTracingEnabled(true)
  log.info({ sampler: sampler.toString() }, 'tracing on: spans exported over OTLP/HTTP')
  return {
    async stop() {
      setTracingEnabled(false)
      // A collector that is away or stalls must not hold up the process's stop: the last spans get
      // a bounded moment, then are dropped.
      let timer: NodeJS.Timeout | undefined
      const gaveUp = new Promise<'timeout'>(
        (resolve) => (timer = setTimeout(() => resolve('timeout'), STOP_EXPORT_MS)),
      )
      try {
        const outcome = await Promise.race([provider.shutdown(), gaveUp])
        if (outcome === 'timeout')
          log.warn({ ms: STOP_EXPORT_MS }, 'the collector did not take the last spans in time; dropped')
      } catch (err) {
        log.warn({ err }, 'the last spans could not be exported')
      } finally {
        clearTimeout(timer)
      }
      trace.disable()
    },
  }
}
