// What every role's components are built from: the configuration, the logger and metrics, and the
// shared parts the composition root opens once per process.
import type { EventBus } from '../core/bus/bus.ts'
import type { ClusterState } from '../core/cluster/cluster.ts'
import type { Config } from '../core/config/index.ts'
import type { Logger } from '../core/log.ts'
import type { Registry } from '../core/metrics.ts'
import type { RegistryParts } from './registry.ts'

export interface RoleDeps {
  readonly config: Config
  readonly log: Logger
  readonly registry: Registry
  readonly bus: EventBus
  /** The device registry: service, cached authenticators. */
  readonly registryParts: RegistryParts
  /** Shared run-time state of the deployment's processes (sessions, rate limits), built once. */
  readonly cluster: ClusterState
}
