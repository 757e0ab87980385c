// A device that reports its configuration the moment it has it: the PUBLISH is written before the
// delivery is recorded, so the report can arrive first. It must be taken (PUBACK, recorded as
// applied) on both MQTT versions, not refused as an id never sent. The registry here records
// deliveries slowly, as a loaded database does.
import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RegistryService } from '../../../core/registry/service.ts'
import { within } from '../../helpers/mqtt.ts'
import type { Backend, Instance } from './harness.ts'
import {
  connect,
  deviceWithPassword,
  login,
  newTenant,
  startBackend,
  startInstance,
  tcpUrl,
} from './harness.ts'

const RECORD_DELAY_MS = 300
let backend: Backend
let instance: Instance

beforeAll(async () => {
  backend = await startBackend()
  const registry = backend.registry
  const slowRecords: RegistryService = {
    ...registry,
    configDelivered: async (...args) => {
      await new Promise((resolve) => setTimeout(resolve, RECORD_DELAY_MS))
      return registry.configDelivered(...args)
    },
  }
  instance = await startInstance(backend, { configService: slowRecords })
})

afterAll(async () => {
  await instance?.stop()
  await backend?.close()
})

describe.each([
  { version: '3.1.1', protocolVersion: 4 as const },
  { version: '5', protocolVersion: 5 as const },
])('a report sent as soon as the configuration arrives (MQTT $version)', ({ protocolVersion }) => {
  it('is taken and recorded, not refused as an id never sent', async () => {
    const tenant = newTenant()
    await backend.registry.createTenant(tenant, { enabled: true })
    await deviceWithPassword(backend, tenant, 'fast')
    await backend.registry.putConfig(tenant, { level: 'device', device: 'fast' }, { led: 'on' })
    const client: MqttClient = await connect(tcpUrl(instance), { protocolVersion, ...login('fast', tenant) })
    try {
      const reported = new Promise<string>((resolve, reject) => {
        client.once('message', (_topic, payload) => {
          const { configId } = JSON.parse(payload.toString()) as { configId: string }
          client.publishAsync('config/applied', JSON.stringify({ configId }), { qos: 1 }).then(
            () => resolve(configId),
            (err: unknown) => reject(err instanceof Error ? err : new Error(String(err))),
          )
        })
      })
      await client.subscribeAsync('config', { qos: 1 })
      const configId = await within(reported, 10_000, 'the PUBACK of the report')
      expect(client.connected).toBe(true)
      const effective = await backend.registry.getEffectiveConfig(tenant, 'fast')
      expect(effective.state).toMatchObject({
        delivered: { configId, protocol: 'mqtt' },
        applied: { configId, statusCode: 200 },
      })
    } finally {
      await client.endAsync(true)
    }
  })
})
