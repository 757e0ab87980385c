// The composition root: reads configuration, builds shared dependencies (bus, registry), starts the
// roles in order (processors, consumers, api, adapters) and stops them in reverse.
import type { Tracing } from './tracing.ts'
import { startTracing } from './tracing.ts'
import type { CallerLookups } from '../core/auth/bearer.ts'
import type { GuardedBus } from '../core/bus/availability.ts'
import type { EventBus } from '../core/bus/bus.ts'
import type { ClusterState } from '../core/cluster/cluster.ts'
import { createClusterState } from '../core/cluster/factory.ts'
import type { Config } from '../core/config/index.ts'
import { loadConfig, redactedConfig } from '../core/config/index.ts'
import { createLifecycle } from '../core/lifecycle.ts'
import type { Component } from '../core/lifecycle.ts'
import type { Logger } from '../core/log.ts'
import { createLogger } from '../core/log.ts'
import { createManagementServer } from '../core/management.ts'
import { createMetricsRegistry } from '../core/metrics.ts'
import type { RegistryService } from '../core/registry/service.ts'
import { createBus } from './bus.ts'
import { busCheck, clusterCheck, registryCheck } from './health-checks.ts'
import type { RegistryParts } from './registry.ts'
import { openRegistry } from './registry.ts'
import type { PortMove } from './ports.ts'
import { startFailure } from './start-failure.ts'
import { isPortFree, planPorts, rememberPorts, rememberedPorts } from './ports.ts'
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
  /** Default ports that were taken, and where their listeners went instead (`bound`). */
  readonly moves: ReadonlyArray<PortMove & { readonly bound: number }>
  readonly bus: EventBus
  /** The device registry (tenants, devices, credentials, API tokens), as --demo and tests use it. */
  readonly registry: RegistryService
  /** The cached lookups that authenticate API callers (is a token still valid?). */
  readonly lookups: CallerLookups
  readonly log: Logger
  /** Graceful stop: drains in-flight work within TRIBUTARY_SHUTDOWN_TIMEOUT_MS. */
  stop(): Promise<void>
}

export async function startTributary(options: StartOptions): Promise<Running> {
  const roles = options.roles ?? [...ROLES]
  // Ports first: a taken port fails (or moves) in a second, not after the slow start of the stores.
  const loaded = loadConfig(options.env)
  const { config, moves } = await planPorts(
    loaded,
    options.env,
    roles,
    isPortFree,
    rememberedPorts(loaded.dataDir),
  )
  const log = options.log ?? createLogger({ level: config.logLevel })
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
  let tracing: Tracing | undefined
  const ports: Record<string, number> = {}

  /** Starts one part; a failure names the role (undefined: a part every role shares) and the part. */
  const startPart = async (role: Role | undefined, component: Component): Promise<void> => {
    try {
      await lifecycle.start(component)
    } catch (err) {
      log.error({ err, role, component: component.name }, 'start failed')
      throw startFailure(role, component.name, err, config)
    }
  }

  try {
    // The management listener comes first so /livez answers while the rest starts.
    await startPart(undefined, {
      name: 'management listener',
      start: async () => void (managementPort = await management.start()),
      stop: () => management.stop(),
    })
    // Before the parts that make spans; stopped after them, so their last spans are exported.
    await startPart(undefined, {
      name: 'tracing',
      start: async () => void (tracing = await startTracing(options.env, roles, log)),
      stop: async () => tracing?.stop(),
    })
    await startPart(undefined, {
      name: 'event bus',
      start: async () => void (bus = await createBus(config, log, registry)),
      stop: async () => bus?.close(),
    })
    const sharedBus = bus!
    management.add(busCheck(sharedBus))
    // One cluster state per process, shared by every role that needs it (and the uploads' rate); it
    // stops after them.
    await startPart(undefined, {
      name: 'cluster state',
      start: async () => {
        cluster = await createClusterState({ redisUrl: config.redisUrl }, log)
        await cluster.start()
      },
      stop: async () => cluster?.stop(),
    })
    const sharedCluster = cluster!
    await startPart(undefined, {
      name: 'registry',
      start: async () =>
        void (registryParts = await openRegistry(config, sharedBus, log.child({ component: 'registry' }), {
          metrics: registry,
          cluster: sharedCluster,
        })),
      stop: async () => registryParts?.store.close(),
    })
    const parts = registryParts!
    for (const component of parts.components) await startPart(undefined, component)
    management.add(registryCheck(parts.store))
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
        await startPart(role, component)
        if (isListener(component)) ports[component.name] = component.port
        if (isAdapter(component)) Object.assign(ports, component.ports())
      }
      started[role] = components.map((c) => c.name)
    }
    ports['management'] = managementPort
    for (const move of moves) {
      log.warn(
        { listener: move.name, variable: move.variable, taken: move.taken, port: ports[move.name] },
        'default port taken: the listener moved',
      )
    }
    try {
      rememberPorts(
        config.dataDir,
        moves.map((m) => ({ ...m, bound: ports[m.name] ?? 0 })),
      )
    } catch (err) {
      log.warn({ err, dataDir: config.dataDir }, 'could not remember the moved ports in the data dir')
    }
    ready = true
    log.info(
      {
        roles: started,
        bus: sharedBus.kind,
        registry: parts.store.kind,
        ports: { ...ports },
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
    lookups: registryParts!.lookups,
    ports: { ...ports, management: managementPort, api: ports['api'] ?? 0 },
    moves: moves.map((move) => ({ ...move, bound: ports[move.name] ?? move.port })),
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
