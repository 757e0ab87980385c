// Timing, statistics, memory and side-by-side helpers shared by the benchmark scenarios.
// Nothing here knows about buses or Kafka clients; scenarios bring the work, this measures it.
import { fork } from 'node:child_process'
import { availableParallelism, cpus, release, totalmem } from 'node:os'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

// ---------------------------------------------------------------------------------------------
// Scenario contract (run.ts drives scenarios through this; scenarios never import run.ts)

export interface ScenarioContext {
  readonly quick: boolean
  /** Kafka bootstrap addresses; undefined when Kafka could not be had (the scenario must fail). */
  readonly brokers: string[] | undefined
  /** Why there is no Kafka, when `brokers` is undefined. */
  readonly kafkaProblem: string | undefined
  /** Overrides from the command line. */
  readonly rounds: number | undefined
  readonly records: number | undefined
  progress(message: string): void
}

export interface Table {
  readonly title: string
  readonly columns: readonly string[]
  readonly rows: ReadonlyArray<readonly string[]>
  readonly notes?: readonly string[] | undefined
}

export interface ScenarioResult {
  readonly table: Table
  /** Everything measured, raw samples included, for the JSON file. */
  readonly data: Record<string, unknown>
}

export interface Scenario {
  readonly name: string
  readonly description: string
  readonly needsKafka: boolean
  run(context: ScenarioContext): Promise<ScenarioResult>
}

/**
 * A scenario's parameters: `full` or, with --quick, `quick`, then --records (as `recordsKey`, the
 * scenario's unit of work) and --rounds from the command line.
 */
export function scenarioParams<K extends string, P extends { readonly rounds: number } & Record<K, number>>(
  context: ScenarioContext,
  sizes: { readonly full: P; readonly quick: P },
  recordsKey: K,
): P {
  const base = context.quick ? sizes.quick : sizes.full
  return { ...base, [recordsKey]: context.records ?? base[recordsKey], rounds: context.rounds ?? base.rounds }
}

/** A failure the user can act on: printed as its message, without a stack. */
export class BenchError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'BenchError'
  }
}

/** The Kafka brokers of a scenario that needs them; a BenchError saying why when there are none. */
export function requireKafka(context: ScenarioContext): string[] {
  if (context.brokers === undefined) {
    throw new BenchError(`needs Kafka, and there is none: ${context.kafkaProblem ?? 'unknown reason'}`)
  }
  return context.brokers
}

// ---------------------------------------------------------------------------------------------
// Progress (stderr, so stdout holds only the results)

const benchStart = performance.now()

export function progress(message: string): void {
  const seconds = ((performance.now() - benchStart) / 1000).toFixed(1).padStart(6)
  process.stderr.write(`[${seconds} s] ${message}\n`)
}

// ---------------------------------------------------------------------------------------------
// Statistics

export interface Stats {
  readonly n: number
  readonly min: number
  readonly max: number
  readonly mean: number
  readonly median: number
  readonly p50: number
  readonly p99: number
}

/** The p-th percentile (0-100) of ascending `sorted`, interpolated linearly between ranks. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = (p / 100) * (sorted.length - 1)
  const low = Math.floor(rank)
  const high = Math.ceil(rank)
  const a = sorted[low]!
  const b = sorted[high]!
  return a + (b - a) * (rank - low)
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  )
}

export function summarize(values: readonly number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b)
  const sum = sorted.reduce((total, v) => total + v, 0)
  return {
    n: sorted.length,
    min: sorted[0] ?? Number.NaN,
    max: sorted.at(-1) ?? Number.NaN,
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
    median: percentile(sorted, 50),
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
  }
}

/** Operations per second from a count and elapsed milliseconds. */
export function opsPerSecond(ops: number, elapsedMs: number): number {
  return elapsedMs > 0 ? (ops * 1000) / elapsedMs : Number.NaN
}

// ---------------------------------------------------------------------------------------------
// Timing

/** Runs `fn` once and returns its value with the elapsed milliseconds. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now()
  const value = await fn()
  return { ms: performance.now() - start, value }
}

export interface RepeatOptions {
  /** Untimed runs first (JIT, connections, caches). */
  readonly warmup: number
  /** Timed runs. */
  readonly runs: number
}

/** Warms up, then times `runs` calls of `fn` one after the other; returns every sample in ms. */
export async function repeat(
  fn: (index: number) => Promise<void>,
  options: RepeatOptions,
): Promise<{ samples: number[]; stats: Stats }> {
  for (let i = 0; i < options.warmup; i++) await fn(-1 - i)
  const samples: number[] = []
  for (let i = 0; i < options.runs; i++) {
    const start = performance.now()
    await fn(i)
    samples.push(performance.now() - start)
  }
  return { samples, stats: summarize(samples) }
}

/**
 * Calls `task(0)` .. `task(count - 1)` keeping at most `concurrency` calls in flight; rejects with
 * the first failure once the calls in flight have settled.
 */
export async function runConcurrently(
  count: number,
  concurrency: number,
  task: (index: number) => Promise<unknown>,
): Promise<void> {
  let next = 0
  let failure: { error: unknown } | undefined
  async function lane(): Promise<void> {
    while (failure === undefined && next < count) {
      const index = next++
      try {
        await task(index)
      } catch (error) {
        failure ??= { error }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, lane))
  if (failure !== undefined) throw failure.error
}

/** Rejects with `message` (worked out when the time is up) when `promise` has not settled within `ms`. */
export async function withTimeout<T>(
  promise: Promise<T>,
  ms: number,
  message: string | (() => string),
): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new BenchError(typeof message === 'string' ? message : message())),
          ms,
        )
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

// ---------------------------------------------------------------------------------------------
// Memory

let gcFunction: (() => void) | undefined | null

/** Runs a full garbage collection when the runtime lets us (exposed on demand); else does nothing. */
export function collectGarbage(): void {
  if (gcFunction === undefined) {
    try {
      setFlagsFromString('--expose-gc')
      gcFunction = runInNewContext('gc') as () => void
    } catch {
      gcFunction = null
    }
  }
  // Twice: the first pass can leave objects that only a finalizer or weak reference released.
  gcFunction?.()
  gcFunction?.()
}

export interface MemorySnapshot {
  /** Resident set size, bytes. */
  readonly rss: number
  readonly heapUsed: number
}

export function memory(): MemorySnapshot {
  const { rss, heapUsed } = process.memoryUsage()
  return { rss, heapUsed }
}

export interface MemoryUse {
  readonly before: MemorySnapshot
  /** Highest values seen while sampling (each field on its own). */
  readonly peak: MemorySnapshot
  readonly after: MemorySnapshot
  /** peak − before, bytes. */
  readonly rssDelta: number
  readonly heapDelta: number
}

/**
 * Samples RSS and heap every `intervalMs` from `before` (default: now) until stop(). The sampler
 * runs on the event loop, so a loop blocked for long can hide a short peak; the last sample is
 * taken at stop().
 */
export function sampleMemory(before: MemorySnapshot = memory(), intervalMs = 10): { stop(): MemoryUse } {
  let rss = before.rss
  let heapUsed = before.heapUsed
  const sample = (): MemorySnapshot => {
    const now = memory()
    rss = Math.max(rss, now.rss)
    heapUsed = Math.max(heapUsed, now.heapUsed)
    return now
  }
  const timer = setInterval(sample, intervalMs)
  return {
    stop() {
      clearInterval(timer)
      const after = sample()
      return {
        before,
        peak: { rss, heapUsed },
        after,
        rssDelta: rss - before.rss,
        heapDelta: heapUsed - before.heapUsed,
      }
    },
  }
}

export const MiB = 1024 * 1024

// ---------------------------------------------------------------------------------------------
// Side by side: candidate and baseline interleaved A B A B ... so that drift hits both

export interface Contender<S> {
  readonly label: string
  /** One run; `round` is 0-based, negative for warmup rounds. */
  run(round: number): Promise<S>
}

export interface SideBySideOptions<S> {
  readonly candidate: Contender<S>
  readonly baseline: Contender<S>
  readonly rounds: number
  /** Interleaved rounds run first and thrown away (default 1). */
  readonly warmupRounds?: number | undefined
  /** Called after every run, warmup included (for progress lines). */
  readonly onRun?: ((label: string, round: number, sample: S) => void) | undefined
}

export interface SideBySide<S> {
  readonly candidate: { readonly label: string; readonly samples: S[] }
  readonly baseline: { readonly label: string; readonly samples: S[] }
  /** Labels in the order they ran (timed rounds only). */
  readonly order: string[]
}

/** Runs candidate then baseline, `rounds` times (after the warmup rounds, same pattern). */
export async function sideBySide<S>(options: SideBySideOptions<S>): Promise<SideBySide<S>> {
  const { candidate, baseline } = options
  const result: SideBySide<S> = {
    candidate: { label: candidate.label, samples: [] },
    baseline: { label: baseline.label, samples: [] },
    order: [],
  }
  const warmup = options.warmupRounds ?? 1
  for (let round = -warmup; round < options.rounds; round++) {
    for (const [contender, into] of [
      [candidate, result.candidate.samples],
      [baseline, result.baseline.samples],
    ] as const) {
      const sample = await contender.run(round)
      options.onRun?.(contender.label, round, sample)
      if (round >= 0) {
        into.push(sample)
        result.order.push(contender.label)
      }
    }
  }
  return result
}

export interface Ratio {
  readonly candidate: Stats
  readonly baseline: Stats
  /** median(candidate) / median(baseline). */
  readonly ratio: number
  /** candidate / baseline of each round (the two runs that ran next to each other). */
  readonly perRound: number[]
  readonly perRoundMin: number
  readonly perRoundMax: number
}

/** The ratio of one metric: the medians divided, and the per-round ratios for their spread. */
export function ratioOf<S>(result: SideBySide<S>, metric: (sample: S) => number): Ratio {
  const a = result.candidate.samples.map(metric)
  const b = result.baseline.samples.map(metric)
  const perRound = a.map((value, i) => value / b[i]!)
  const candidate = summarize(a)
  const baseline = summarize(b)
  return {
    candidate,
    baseline,
    ratio: candidate.median / baseline.median,
    perRound,
    perRoundMin: Math.min(...perRound),
    perRoundMax: Math.max(...perRound),
  }
}

/** One row of a results table: a metric of the samples, its medians shown divided by `scale`. */
export interface Metric<S> {
  readonly label: string
  readonly of: (sample: S) => number
  readonly scale?: number | undefined
}

/**
 * The ratio of every metric, and the table rows (label, candidate and baseline medians, ratio,
 * per-round ratios) in the order the metrics are given.
 */
export function compareMetrics<S, K extends string>(
  result: SideBySide<S>,
  metrics: Record<K, Metric<S>>,
): { ratios: Record<K, Ratio>; rows: string[][] } {
  const entries = Object.entries(metrics) as Array<[K, Metric<S>]>
  const ratios = Object.fromEntries(entries.map(([key, m]) => [key, ratioOf(result, m.of)])) as Record<
    K,
    Ratio
  >
  const rows = entries.map(([key, m]) => {
    const r = ratios[key]
    const scale = m.scale ?? 1
    return [
      m.label,
      formatNumber(r.candidate.median / scale),
      formatNumber(r.baseline.median / scale),
      formatRatio(r.ratio),
      formatRatioRange(r),
    ]
  })
  return { ratios, rows }
}

/** An onRun for sideBySide(): a progress line per run, `warmup` or `round i/n`, label, `describe`. */
export function reportRuns<S>(
  context: ScenarioContext,
  rounds: number,
  describe: (sample: S) => string,
): (label: string, round: number, sample: S) => void {
  return (label, round, sample) =>
    context.progress(`${round < 0 ? 'warmup' : `round ${round + 1}/${rounds}`} ${label}: ${describe(sample)}`)
}

// ---------------------------------------------------------------------------------------------
// Runs in a fresh child process (clean heap, RSS and JIT state per run)

const WORKER_FLAG = '--bench-worker'

interface WorkerReply {
  readonly ok: boolean
  readonly result?: unknown
  readonly error?: string
}

/**
 * Runs `file` (a module that calls serveWorker()) in a new Node process with `input`, and resolves
 * with what its handler returned. The child's stdout and stderr go to our stderr.
 */
export function runInWorker<O>(file: string, input: unknown, timeoutMs: number): Promise<O> {
  return new Promise<O>((resolve, reject) => {
    const child = fork(file, [WORKER_FLAG, JSON.stringify(input)], {
      stdio: ['ignore', 2, 2, 'ipc'],
      execArgv: [],
    })
    let reply: WorkerReply | undefined
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new BenchError(`benchmark worker ${file} did not finish within ${timeoutMs} ms`))
    }, timeoutMs)
    child.on('message', (message: WorkerReply) => {
      reply = message
    })
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      if (reply?.ok === true) resolve(reply.result as O)
      else if (reply !== undefined) reject(new BenchError(reply.error ?? 'benchmark worker failed'))
      else reject(new BenchError(`benchmark worker exited (code ${code}, signal ${signal}) without a result`))
    })
  })
}

/** True in a process started by runInWorker(). */
export function isWorker(): boolean {
  return process.argv[2] === WORKER_FLAG && process.send !== undefined
}

/** The child side of runInWorker(): runs `handler` on the input and sends back its result. */
export function serveWorker<I, O>(handler: (input: I) => Promise<O>): void {
  const input = JSON.parse(process.argv[3] ?? 'null') as I
  const reply = (message: WorkerReply): void => {
    process.send!(message, () => {
      process.disconnect()
      // Clients may keep sockets or timers alive; the result is delivered, so leave now.
      process.exit(message.ok ? 0 : 1)
    })
  }
  handler(input).then(
    (result) => reply({ ok: true, result }),
    (err: unknown) =>
      reply({ ok: false, error: err instanceof BenchError ? err.message : String((err as Error).stack) }),
  )
}

// ---------------------------------------------------------------------------------------------
// Machine and formatting

export function machine(): Record<string, unknown> {
  const cpu = cpus()
  return {
    cpus: availableParallelism(),
    cpuModel: cpu[0]?.model ?? 'unknown',
    memoryGiB: Number((totalmem() / 1024 ** 3).toFixed(1)),
    platform: `${process.platform} ${release()}`,
    arch: process.arch,
    node: process.versions.node,
  }
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

/** 12,345 for big numbers, 3 significant digits for small ones. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return 'n/a'
  if (Math.abs(value) >= 100) return integer.format(value)
  return Number(value.toPrecision(3)).toString()
}

export function formatRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : 'n/a'
}

/**
 * `min–max` of the per-round ratios; n/a when a sample is zero or negative (a ratio of values near
 * zero, such as a memory delta within measurement noise, says nothing).
 */
export function formatRatioRange(ratio: Ratio): string {
  const usable = ratio.perRound.every((r) => Number.isFinite(r) && r > 0)
  return usable ? `${formatRatio(ratio.perRoundMin)}–${formatRatio(ratio.perRoundMax)}` : 'n/a'
}

/** Fixed-width text table: first column left-aligned, the others right-aligned. */
export function renderTable(table: Table): string {
  const widths = table.columns.map((column, i) =>
    Math.max(column.length, ...table.rows.map((row) => (row[i] ?? '').length)),
  )
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd()
  const rule = widths.map((w) => '-'.repeat(w)).join('  ')
  const out = [table.title, line(table.columns), rule, ...table.rows.map(line)]
  for (const note of table.notes ?? []) out.push(`  ${note}`)
  return out.join('\n')
}
