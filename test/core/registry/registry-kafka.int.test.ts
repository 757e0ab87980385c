// Registry changes travel between processes over a real Kafka broker: two cached authenticators on
// two separate Kafka clients (as two processes would have) both drop a changed password, and a
// disabled device is refused everywhere, within a second of the write.
import { afterAll, beforeAll, expect, inject, it } from 'vitest'
import type { EventBus } from '../../../core/bus/bus.ts'
import { createKafkaBus } from '../../../core/bus/kafka.ts'
import { silentLogger } from '../../../core/log.ts'
import type { RegistryAuth } from '../../../core/registry/auth.ts'
import { createRegistryAuth } from '../../../core/registry/auth.ts'
import type { RegistryChange } from '../../../core/registry/model.ts'
import type { OutboxRelay } from '../../../core/registry/outbox.ts'
import { createOutboxRelay } from '../../../core/registry/outbox.ts'
import { createSecrets } from '../../../core/registry/secrets.ts'
import type { RegistryService } from '../../../core/registry/service.ts'
import { createRegistryService } from '../../../core/registry/service-impl.ts'
import type { RegistryStore } from '../../../core/registry/store.ts'
import { deferred, uniqueName } from '../../helpers/wait.ts'
import type { Engine } from './store-implementations.ts'
import { pgliteEngine } from './store-implementations.ts'

const topic = uniqueName('registry').replaceAll('-', '_')
const secrets = createSecrets(Buffer.alloc(32, 9), { scryptLogN: 12 })
let engine: Engine
let store: RegistryStore
let buses: EventBus[] = []
let relay: OutboxRelay
let registry: RegistryService
let auths: RegistryAuth[] = []

function applied(auth: RegistryAuth, match: Partial<RegistryChange>): Promise<RegistryChange> {
  const { promise, resolve } = deferred<RegistryChange>()
  const off = auth.onChange((change) => {
    if (Object.entries(match).every(([k, v]) => change[k as keyof RegistryChange] === v)) {
      off()
      resolve(change)
    }
  })
  return promise
}

beforeAll(async () => {
  const brokers = inject('kafkaBrokers').split(',')
  engine = pgliteEngine()
  store = await engine.open()
  // One Kafka client per "process": the writer's, and two readers'.
  buses = await Promise.all(
    [0, 1, 2].map(() =>
      createKafkaBus({
        brokers,
        clientId: 'registry-test',
        sessionTimeoutMs: 6000,
        heartbeatIntervalMs: 500,
      }),
    ),
  )
  await buses[0]!.admin.createTopics([{ name: topic, partitions: 3 }])
  relay = createOutboxRelay({ store, bus: buses[0]!, topic, log: silentLogger, pollMs: 50 })
  registry = createRegistryService({ store, secrets, onChange: () => relay.nudge() })
  auths = [buses[1]!, buses[2]!].map((bus) =>
    createRegistryAuth({ store, bus, topic, secrets, cacheTtlMs: 300_000, log: silentLogger }),
  )
  await relay.start()
  await Promise.all(auths.map((a) => a.start()))
})

afterAll(async () => {
  await Promise.allSettled([...auths.map((a) => a.stop()), relay?.stop()])
  await Promise.allSettled(buses.map((b) => b.close()))
  await store?.close()
  await engine?.destroy()
})

it('a password change and a disabled device reach every process within a second over Kafka', async () => {
  const tenant = uniqueName('t').toLowerCase().slice(0, 63)
  await registry.createTenant(tenant, {})
  await registry.createDevice(tenant, 'dev-1', {})
  await registry.setPassword(tenant, 'dev-1', 'first password')
  for (const auth of auths) {
    expect((await auth.device.byPassword(`dev-1@${tenant}`, 'first password')).ok).toBe(true)
  }

  const changed = auths.map((a) => applied(a, { tenant, resource: 'credential', op: 'updated' }))
  await registry.setPassword(tenant, 'dev-1', 'second password')
  const passwordAt = Date.now()
  await Promise.all(changed)
  expect(Date.now() - passwordAt).toBeLessThan(1_000)
  for (const auth of auths) {
    expect(await auth.device.byPassword(`dev-1@${tenant}`, 'first password')).toEqual({
      ok: false,
      reason: 'bad-secret',
    })
    expect((await auth.device.byPassword(`dev-1@${tenant}`, 'second password')).ok).toBe(true)
  }

  const disabled = auths.map((a) => applied(a, { tenant, resource: 'device', op: 'updated' }))
  await registry.updateDevice(tenant, 'dev-1', { enabled: false })
  const disabledAt = Date.now()
  await Promise.all(disabled)
  expect(Date.now() - disabledAt).toBeLessThan(1_000)
  for (const auth of auths) {
    expect(await auth.device.byPassword(`dev-1@${tenant}`, 'second password')).toEqual({
      ok: false,
      reason: 'disabled',
    })
  }
})
