// Start to ready of one all-roles `tributary start` on the embedded defaults (file log, PGlite,
// in-process state), the way a laptop user starts it: a fresh data dir with a registry template in
// the cache, a fresh data dir with no template (initdb and every migration, as before templates
// existed), and the existing data dir again. Ready = the "tributary started" log line; the idle RSS
// is read right after. Rounds interleave the three, so a machine that drifts drifts for all.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Scenario, ScenarioContext, ScenarioResult } from '../harness.ts'
import { MiB, formatNumber, median, scenarioParams } from '../harness.ts'
import { NODE_FLAGS } from '../../main/node-flags.ts'
import { processStats, spawnReady } from '../server-process.ts'

const CLI = fileURLToPath(new URL('../../main/cli.ts', import.meta.url))

interface Params {
  readonly rounds: number
  readonly starts: number
}
const SIZES = { full: { rounds: 5, starts: 1 }, quick: { rounds: 1, starts: 1 } }

type Case = 'fresh, template' | 'fresh, no template' | 'existing data dir'
const CASES: readonly Case[] = ['fresh, template', 'fresh, no template', 'existing data dir']

interface Sample {
  readonly readyMs: number
  readonly rssBytes: number
}

async function startOnce(dataDir: string, cacheDir: string): Promise<Sample> {
  const ports = ['MANAGEMENT', 'API', 'MQTT', 'MQTTS', 'MQTT_WS', 'HTTP', 'COAP', 'APP_MQTT']
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    TRIBUTARY_HOST: '127.0.0.1',
    TRIBUTARY_DATA_DIR: dataDir,
    TRIBUTARY_CACHE_DIR: cacheDir,
    ...Object.fromEntries(ports.map((p) => [`TRIBUTARY_${p}_PORT`, '0'])),
  }
  const started = performance.now()
  const { proc } = await spawnReady('tributary', [process.execPath, ...NODE_FLAGS, CLI, 'start'], env, {
    match: (line) => line.includes('"msg":"tributary started"'),
    what: 'the "tributary started" line',
  })
  const readyMs = performance.now() - started
  const { rssBytes } = await processStats(proc.child.pid!)
  await proc.stop()
  return { readyMs, rssBytes }
}

export const startTime: Scenario = {
  name: 'start-time',
  description:
    'all-roles process on the embedded defaults: start to ready and idle RSS, fresh and existing data dir',
  needsKafka: false,
  async run(context: ScenarioContext): Promise<ScenarioResult> {
    const params: Params = scenarioParams(context, SIZES, 'starts')
    const cache = mkdtempSync(join(tmpdir(), 'tributary-bench-cache-'))
    const samples: Record<Case, Sample[]> = {
      'fresh, template': [],
      'fresh, no template': [],
      'existing data dir': [],
    }
    const dirs: string[] = [cache]
    try {
      // The template is built once, by the first process that needs it (not counted).
      const warm = mkdtempSync(join(tmpdir(), 'tributary-bench-start-'))
      dirs.push(warm)
      await startOnce(warm, cache)
      for (let round = 0; round < params.rounds; round++) {
        context.progress(`round ${round + 1} of ${params.rounds}`)
        const withTemplate = mkdtempSync(join(tmpdir(), 'tributary-bench-start-'))
        const without = mkdtempSync(join(tmpdir(), 'tributary-bench-start-'))
        dirs.push(withTemplate, without)
        samples['fresh, template'].push(await startOnce(withTemplate, cache))
        samples['fresh, no template'].push(await startOnce(without, 'off'))
        samples['existing data dir'].push(await startOnce(withTemplate, cache))
      }
    } finally {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
    }
    const rows = CASES.map((c) => {
      const ready = samples[c].map((s) => s.readyMs)
      const rss = samples[c].map((s) => s.rssBytes / MiB)
      return [
        c,
        formatNumber(median(ready)),
        formatNumber(Math.min(...ready)),
        formatNumber(Math.max(...ready)),
        formatNumber(median(rss)),
      ]
    })
    return {
      table: {
        title: 'start-time: start to ready of an all-roles process on the embedded defaults',
        columns: ['case', 'ready ms (median)', 'min', 'max', 'RSS at ready MiB (median)'],
        rows,
        notes: [`${params.rounds} interleaved rounds; "no template" is TRIBUTARY_CACHE_DIR=off`],
      },
      data: { params, samples },
    }
  },
}
