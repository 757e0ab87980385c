// Device authentication on the hot path: by password and by bearer token, through the registry's
// in-process cache (hits) against the same code with the cache off (store reads, plus scrypt for
// passwords). PGlite in a temp dir and the embedded bus, as one process runs them by default.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createEmbeddedBus } from '../../core/bus/embedded/index.ts'
import { silentLogger } from '../../core/log.ts'
import type { DeviceAuthResult, RegistryAuth } from '../../core/registry/auth.ts'
import { createRegistryAuth } from '../../core/registry/auth.ts'
import { createOutboxRelay } from '../../core/registry/outbox.ts'
import { createPgliteStore } from '../../core/registry/pglite.ts'
import { createSecrets } from '../../core/registry/secrets.ts'
import { createRegistryService } from '../../core/registry/service-impl.ts'
import type { Ratio, Scenario, ScenarioContext, ScenarioResult } from '../harness.ts'
import {
  BenchError,
  formatNumber,
  formatRatio,
  opsPerSecond,
  ratioOf,
  runConcurrently,
  sideBySide,
} from '../harness.ts'

export interface CredentialLookupOptions {
  /** Devices, each with a password and a device token. */
  readonly devices: number
  /** Lookups per cached run, per method. */
  readonly cachedLookups: number
  /** Lookups per uncached password run (each pays scrypt: ~100 ms of CPU at N=2^15). */
  readonly uncachedPasswordLookups: number
  readonly uncachedTokenLookups: number
  /** Lookups in flight at once (scrypt runs on libuv's thread pool, so it can use several cores). */
  readonly concurrency: number
  readonly rounds: number
  readonly progress?: ((message: string) => void) | undefined
}

const FULL: CredentialLookupOptions = {
  devices: 32,
  cachedLookups: 200_000,
  uncachedPasswordLookups: 200,
  uncachedTokenLookups: 5_000,
  concurrency: 8,
  rounds: 3,
}
const QUICK: CredentialLookupOptions = {
  ...FULL,
  devices: 8,
  cachedLookups: 20_000,
  uncachedPasswordLookups: 32,
  uncachedTokenLookups: 1_000,
}

type Method = 'password' | 'token'
type Sample = Record<`${Method}PerSec`, number>

export interface CredentialLookupFigures {
  readonly options: CredentialLookupOptions
  /** Lookups per second, median of the rounds. */
  readonly cached: Sample
  readonly uncached: Sample
  readonly ratios: Record<Method, Ratio>
}

const TOPIC = 'tributary.registry'
const TENANT = 'bench'

export async function runCredentialLookups(
  options: CredentialLookupOptions,
): Promise<CredentialLookupFigures> {
  const note = options.progress ?? (() => undefined)
  const dataDir = await mkdtemp(join(tmpdir(), 'tributary-bench-registry-'))
  const bus = await createEmbeddedBus({ dataDir })
  const store = await createPgliteStore({ dataDir, log: silentLogger })
  // The production cost of password hashes (scrypt N=2^15, r=8, p=1).
  const secrets = createSecrets(randomBytes(32))
  const relay = createOutboxRelay({ store, bus, topic: TOPIC, log: silentLogger })
  const auth = (cacheTtlMs: number): RegistryAuth =>
    createRegistryAuth({ store, bus, topic: TOPIC, secrets, cacheTtlMs, log: silentLogger })
  const cached = auth(300_000)
  // TTL 0: every lookup misses, so this is the store-and-scrypt path through the same code.
  const uncached = auth(0)
  try {
    await bus.admin.createTopics([{ name: TOPIC, partitions: 1 }])
    await relay.start()
    await cached.start()
    const registry = createRegistryService({ store, secrets, onChange: () => relay.nudge() })
    note(`registering ${options.devices} devices with a password and a token each`)
    await registry.createTenant(TENANT, {})
    const devices: Array<{ username: string; password: string; token: string }> = []
    for (let i = 0; i < options.devices; i++) {
      const id = `device-${i}`
      const password = randomBytes(12).toString('base64url')
      await registry.createDevice(TENANT, id, {})
      await registry.setPassword(TENANT, id, password)
      const { secret } = await registry.createCredential(TENANT, id, { type: 'token' })
      devices.push({ username: `${id}@${TENANT}`, password, token: secret! })
    }
    await relay.flush()

    const lookup = (via: RegistryAuth, method: Method, i: number): Promise<DeviceAuthResult> => {
      const device = devices[i % devices.length]!
      return method === 'password'
        ? via.device.byPassword(device.username, device.password)
        : via.device.byToken(device.token)
    }
    const measure = async (via: RegistryAuth, method: Method, count: number): Promise<number> => {
      let refused = 0
      const start = performance.now()
      await runConcurrently(count, options.concurrency, async (i) => {
        if (!(await lookup(via, method, i)).ok) refused++
      })
      const perSec = opsPerSecond(count, performance.now() - start)
      if (refused > 0) throw new BenchError(`${refused} of ${count} ${method} lookups were refused`)
      return perSec
    }
    // Fill the cache once: the cached runs then measure hits only.
    for (const method of ['password', 'token'] as const) await measure(cached, method, devices.length)

    const run = (via: RegistryAuth, counts: Record<Method, number>, label: string) => ({
      label,
      run: async (round: number): Promise<Sample> => {
        const scale = round < 0 ? 0.2 : 1
        const sample = {
          passwordPerSec: await measure(via, 'password', Math.max(1, Math.round(counts.password * scale))),
          tokenPerSec: await measure(via, 'token', Math.max(1, Math.round(counts.token * scale))),
        }
        if (round >= 0) {
          note(
            `${label} round ${round + 1}: password ${formatNumber(sample.passwordPerSec)}/s, ` +
              `token ${formatNumber(sample.tokenPerSec)}/s`,
          )
        }
        return sample
      },
    })
    const result = await sideBySide({
      candidate: run(cached, { password: options.cachedLookups, token: options.cachedLookups }, 'cached'),
      baseline: run(
        uncached,
        { password: options.uncachedPasswordLookups, token: options.uncachedTokenLookups },
        'uncached',
      ),
      rounds: options.rounds,
    })
    const ratios = {
      password: ratioOf(result, (s) => s.passwordPerSec),
      token: ratioOf(result, (s) => s.tokenPerSec),
    }
    return {
      options: { ...options, progress: undefined },
      cached: {
        passwordPerSec: ratios.password.candidate.median,
        tokenPerSec: ratios.token.candidate.median,
      },
      uncached: {
        passwordPerSec: ratios.password.baseline.median,
        tokenPerSec: ratios.token.baseline.median,
      },
      ratios,
    }
  } finally {
    await Promise.allSettled([cached.stop(), relay.stop()])
    await store.close()
    await bus.close()
    await rm(dataDir, { recursive: true, force: true })
  }
}

async function run(context: ScenarioContext): Promise<ScenarioResult> {
  const base = context.quick ? QUICK : FULL
  const options: CredentialLookupOptions = {
    ...base,
    rounds: context.rounds ?? base.rounds,
    cachedLookups: context.records ?? base.cachedLookups,
    progress: (message) => context.progress(message),
  }
  const figures = await runCredentialLookups(options)
  const row = (label: string, ratio: Ratio): string[] => [
    label,
    formatNumber(ratio.candidate.median),
    formatNumber(ratio.baseline.median),
    formatRatio(ratio.ratio),
    `${formatRatio(ratio.perRoundMin)}–${formatRatio(ratio.perRoundMax)}`,
  ]
  return {
    table: {
      title:
        `credential-lookups: device authentication per second, ${options.devices} devices, ` +
        `${options.concurrency} in flight, PGlite + embedded bus, median of ${options.rounds} rounds`,
      columns: ['lookup', 'cached/s', 'uncached/s', 'ratio', 'per-round ratios'],
      rows: [
        row('password (<device>@<tenant>, scrypt N=2^15)', figures.ratios.password),
        row('device token (tdt_…, SHA-256)', figures.ratios.token),
      ],
      notes: [
        'cached: cache hits (passwords checked by HMAC of the last verified one); uncached: the same code with a 0 ms TTL,',
        'so every lookup reads tenant, device and credential from PGlite (and runs scrypt for passwords).',
      ],
    },
    data: { ...figures },
  }
}

export const credentialLookups: Scenario = {
  name: 'credential-lookups',
  description: 'Registry auth: password and device-token lookups per second, cached vs store (+ scrypt)',
  needsKafka: false,
  run,
}
