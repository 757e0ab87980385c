// The composition root: reads configuration, builds shared dependencies (bus, registry), starts the
// roles in order (processors, consumers, api, adapters) and stops them in reverse.
import type { GuardedBus } from '../core/bus/availability.ts'
import type { EventBus } from '../core/bus/bus.ts'
import type { ClusterState } from '../core/cluster/cluster.ts'
import { createClusterState } from '../core/cluster/factory.ts'
import type { Config } from '../core/config/index.ts'
import { loadConfig, redactedConfig } from '../core/config/index.ts'
import { createLifecycle } from '../core/lifecycle.ts'
import type { Logger } from '../core/log.ts'
import { createLogger } from '../core/log.ts'
import { createManagementServer } from '../core/management.ts'
import { createMetricsRegistry } from '../core/metrics.ts'
import type { RegistryService } from '../core/registry/service.ts'
import { createBus } from './bus.ts'
import { busCheck, clusterCheck, registryCheck } from './health-checks.ts'
import type { RegistryParts } from './registry.ts'
import { openRegistry } from './registry.ts'
import type { Role } from './roles.ts'
import { ROLES, isAdapter, isListener, roleComponents } from './roles.ts'

export interface StartOptions {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly roles?: readonly Role[] | undefined
  /** Overrides the logger built from configuration (tests). */
  readonly log?: Logger | undefined
}

export interface Running {
  readonly config: Config
  /**
   * Bound ports by listener; `api` is 0 when the process runs without the api role. Adapters add
   * theirs (`mqtt`, `mqtts`, `mqttWs` ...) when their role runs and the listener is enabled.
   */
  readonly ports: { readonly management: number; readonly api: number; readonly [listener: string]: number }
  readonly bus: EventBus
  /** The device registry (tenants, devices, credentials, API tokens), as --demo and tests use it. */
  readonly registry: RegistryService
  readonly log: Logger
  /** Graceful stop: drains in-flight work within TRIBUTARY_SHUTDOWN_TIMEOUT_MS. */
  stop(): Promise<void>
}

export async function startTributary(options: StartOptions): Promise<Running> {
  const config = loadConfig(options.env)
  const log = options.log ?? createLogger({ level: config.logLevel })
  const roles = options.roles ?? [...ROLES]
  const registry = createMetricsRegistry()
  const lifecycle = createLifecycle(log)
  let ready = false

  const management = createManagementServer({
    host: config.host,
    port: config.managementPort,
    portVariable: 'TRIBUTARY_MANAGEMENT_PORT',
    registry,
    log,
    ready: () => ready && !lifecycle.stopping,
  })
  let managementPort = 0
  let bus: GuardedBus | undefined
  let registryParts: RegistryParts | undefined
  let cluster: ClusterState | undefined
  const ports: Record<string, number> = {}

  try {
    // The management listener comes first so /livez answers while the rest starts.
    await lifecycle.start({
      name: 'management',
      start: async () => void (managementPort = await management.start()),
      stop: () => management.stop(),
    })
    await lifecycle.start({
      name: 'bus',
      start: async () => void (bus = await createBus(config, log, registry)),
      stop: async () => bus?.close(),
    })
    const sharedBus = bus!
    management.add(busCheck(sharedBus))
    await lifecycle.start({
      name: 'registry-store',
      start: async () =>
        void (registryParts = await openRegistry(config, sharedBus, log.child({ component: 'registry' }))),
      stop: async () => registryParts?.store.close(),
    })
    const parts = registryParts!
    for (const component of parts.components) await lifecycle.start(component)
    management.add(registryCheck(parts.store))
    // One cluster state per process, shared by every role that needs it; it stops after them.
    await lifecycle.start({
      name: 'cluster',
      start: async () => {
        cluster = await createClusterState({ redisUrl: config.redisUrl }, log)
        await cluster.start()
      },
      stop: async () => cluster?.stop(),
    })
    const sharedCluster = cluster!
    management.add(clusterCheck(sharedCluster, roles, config))
    const started: Record<string, string[]> = {}
    for (const role of roles) {
      const components = roleComponents[role]({
        config,
        log: log.child({ role }),
        registry,
        bus: sharedBus,
        registryParts: parts,
        cluster: sharedCluster,
      })
      for (const component of components) {
        await lifecycle.start(component)
        if (isListener(component)) ports[component.name] = component.port
        if (isAdapter(component)) Object.assign(ports, component.ports())
      }
      started[role] = components.map((c) => c.name)
    }
    ready = true
    log.info(
      {
        roles: started,
        bus: sharedBus.kind,
        registry: parts.store.kind,
        ports: { management: managementPort, ...ports },
        config: redactedConfig(config),
      },
      'tributary started',
    )
  } catch (err) {
    await lifecycle.stopAll(config.shutdownTimeoutMs)
    throw err
  }

  let stopping: Promise<void> | undefined
  return {
    config,
    log,
    bus: bus!,
    registry: registryParts!.service,
    ports: { ...ports, management: managementPort, api: ports['api'] ?? 0 },
    stop() {
      stopping ??= (async () => {
        log.info({ deadlineMs: config.shutdownTimeoutMs }, 'tributary stopping')
        const { timedOut, failed } = await lifecycle.stopAll(config.shutdownTimeoutMs)
        log.info({ timedOut, failed }, 'tributary stopped')
      })()
      return stopping
    },
  }
}
