// What every role's components are built from: the configuration, the logger and metrics, and the
// shared parts the composition root opens once per process.
import type { GuardedBus } from '../core/bus/availability.ts'
import type { ClusterState } from '../core/cluster/cluster.ts'
import type { Config } from '../core/config/index.ts'
import type { Logger } from '../core/log.ts'
import type { Registry } from '../core/metrics.ts'
import type { RegistryParts } from './registry.ts'

export interface RoleDeps {
  readonly config: Config
  readonly log: Logger
  readonly registry: Registry
  /** The process's one bus; `availability` says when it is known to be away. */
  readonly bus: GuardedBus
  /** The device registry: service, cached authenticators. */
  readonly registryParts: RegistryParts
  /** Shared run-time state of the deployment's processes (sessions, rate limits), built once. */
  readonly cluster: ClusterState
}
