// Test file order: the longest first, whatever the tier, so that the three workers
// (vitest.config.ts) do not end on one long file while the others sit idle. A file's time is the
// one vitest remembers from the last run (node_modules/.vite); on a fresh clone it is estimated
// from the tier and the file's size, the bench smoke runs (test/bench) counting as the longest.
import { stat } from 'node:fs/promises'
import { BaseSequencer } from 'vitest/node'
import type { TestSpecification } from 'vitest/node'

/** Estimated milliseconds per byte of test source, by tier, for files never run here. */
const MS_PER_BYTE: Record<string, number> = { e2e: 2, contract: 1, integration: 0.5, unit: 0.05 }
const BENCH_SMOKE_MS = 120_000

async function estimate(spec: TestSpecification): Promise<number> {
  if (spec.moduleId.includes('/test/bench/')) return BENCH_SMOKE_MS
  const size = await stat(spec.moduleId).then(
    (s) => s.size,
    () => 0,
  )
  return size * (MS_PER_BYTE[spec.project.name] ?? 1)
}

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const cache = this.ctx.cache
    const weights = new Map<TestSpecification, number>()
    for (const spec of files) {
      const known = cache.getTestSpecificationResult(spec)
      // A file that failed last time goes first, as vitest's own order has it.
      if (known?.failed) weights.set(spec, Number.MAX_SAFE_INTEGER)
      else weights.set(spec, known?.duration ?? (await estimate(spec)))
    }
    return [...files].sort((a, b) => weights.get(b)! - weights.get(a)!)
  }
}
