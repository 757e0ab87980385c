// The management listener's checks of the parts a process shares among its roles (bus, registry,
// cluster state): each failing check says what the roles this process runs cannot do, and counts
// for readiness only when that stops them from serving (docs/availability.md).
import type { EventBus } from '../core/bus/bus.ts'
import type { ClusterState } from '../core/cluster/cluster.ts'
import type { Config } from '../core/config/index.ts'
import type { HealthCheck } from '../core/management.ts'
import type { RegistryStore } from '../core/registry/store.ts'
import type { Role } from './roles.ts'

/** Without the bus nothing is accepted, processed or delivered: every role is stopped. */
export function busCheck(bus: Pick<EventBus, 'health'>): HealthCheck {
  return { name: 'bus', check: () => bus.health() }
}

/** Without the registry no new device or caller can be authenticated: every role is stopped. */
export function registryCheck(store: Pick<RegistryStore, 'getTenant'>): HealthCheck {
  return {
    name: 'registry',
    check: async () => {
      await store.getTenant('health-check')
      return { ok: true }
    },
  }
}

/** What each role of this process cannot do, or does differently, while the cluster state is away. */
export function clusterImpacts(
  roles: readonly Role[],
  config: Pick<Config, 'mqttEnabled' | 'mqttsEnabled' | 'mqttWsEnabled' | 'httpEnabled' | 'coapEnabled'>,
): { critical: boolean; impacts: string[] } {
  const impacts: string[] = []
  // A new MQTT session needs its owner and connection slot in the cluster state: refused (CONNACK 3).
  const mqtt =
    roles.includes('adapters') && (config.mqttEnabled || config.mqttsEnabled || config.mqttWsEnabled)
  if (mqtt) impacts.push('MQTT devices cannot connect')
  if (roles.includes('adapters')) {
    const stateless = [config.httpEnabled ? 'HTTP' : '', config.coapEnabled ? 'CoAP' : ''].filter(Boolean)
    // A rate limit protects capacity; refusing every device's data for it would be worse.
    if (stateless.length > 0)
      impacts.push(`${stateless.join(' and ')} messages are accepted without the rate check`)
    impacts.push('commands wait in their queues (no route to a device can be looked up)')
  }
  if (roles.includes('processors')) impacts.push('events of tenants with event or byte quotas wait')
  if (roles.includes('api')) impacts.push('API calls waiting for a command response may time out')
  return { critical: mqtt, impacts }
}

/**
 * The cluster state: unready only where it stops a listener from serving (device MQTT); elsewhere a
 * degradation that /health and /readyz name.
 */
export function clusterCheck(
  cluster: Pick<ClusterState, 'health' | 'kind'>,
  roles: readonly Role[],
  config: Parameters<typeof clusterImpacts>[1],
): HealthCheck {
  const { critical, impacts } = clusterImpacts(roles, config)
  return {
    name: 'cluster',
    critical,
    check: async () => {
      const health = await cluster.health()
      if (health.ok || impacts.length === 0) return health
      return { ok: false, reason: `${health.reason ?? 'unavailable'}; meanwhile ${impacts.join('; ')}` }
    },
  }
}
