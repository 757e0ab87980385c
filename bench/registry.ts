// A device registry in process for benchmarks that need one: PGlite in a temp dir, the outbox
// relay on an embedded bus of its own, and the cached RegistryAuth, as one process runs them.
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createEmbeddedBus } from '../core/bus/embedded/index.ts'
import { silentLogger } from '../core/log.ts'
import type { RegistryAuth } from '../core/registry/auth.ts'
import { createRegistryAuth } from '../core/registry/auth.ts'
import { createOutboxRelay } from '../core/registry/outbox.ts'
import { createPgliteStore } from '../core/registry/pglite.ts'
import { createSecrets } from '../core/registry/secrets.ts'
import { createRegistryService } from '../core/registry/service-impl.ts'

export interface BenchRegistry {
  readonly auth: RegistryAuth
  close(): Promise<void>
}

const TOPIC = 'tributary.registry'

/** A registry holding one tenant with devices `device-0` .. `device-<devices - 1>`, all enabled. */
export async function openBenchRegistry(tenant: string, devices: number): Promise<BenchRegistry> {
  const dataDir = await mkdtemp(join(tmpdir(), 'tributary-bench-registry-'))
  const bus = await createEmbeddedBus({ dataDir })
  const store = await createPgliteStore({ dataDir, log: silentLogger })
  const secrets = createSecrets(randomBytes(32))
  const relay = createOutboxRelay({ store, bus, topic: TOPIC, log: silentLogger })
  const auth = createRegistryAuth({
    store,
    bus,
    topic: TOPIC,
    secrets,
    cacheTtlMs: 300_000,
    log: silentLogger,
  })
  const close = async (): Promise<void> => {
    await Promise.allSettled([auth.stop(), relay.stop()])
    await store.close()
    await bus.close()
    await rm(dataDir, { recursive: true, force: true })
  }
  try {
    await bus.admin.createTopics([{ name: TOPIC, partitions: 1 }])
    await relay.start()
    await auth.start()
    const registry = createRegistryService({ store, secrets, onChange: () => relay.nudge() })
    await registry.createTenant(tenant, {})
    for (let i = 0; i < devices; i++) await registry.createDevice(tenant, `device-${i}`, {})
    await relay.flush()
    return { auth, close }
  } catch (err) {
    await close()
    throw err
  }
}
