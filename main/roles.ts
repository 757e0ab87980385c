// The roles a process can run (DESIGN.md "Roles and the one entrypoint"), in start order. Each
// role lists the components it starts; features add theirs here as they land.
import { createApiServer } from '../api/index.ts'
import type { EventBus } from '../core/bus/bus.ts'
import type { Config } from '../core/config/index.ts'
import type { Component } from '../core/lifecycle.ts'
import type { Logger } from '../core/log.ts'
import type { Registry } from '../core/metrics.ts'
import type { RegistryParts } from './registry.ts'

export const ROLES = ['processors', 'consumers', 'api', 'adapters'] as const
export type Role = (typeof ROLES)[number]

export interface RoleDeps {
  readonly config: Config
  readonly log: Logger
  readonly registry: Registry
  readonly bus: EventBus
  /** The device registry: service, cached authenticators. */
  readonly registryParts: RegistryParts
}

/** A component that listens on a port; start.ts reports the bound port under the component's name. */
export interface Listener extends Component {
  readonly port: number
}

export const isListener = (c: Component): c is Listener => typeof (c as Partial<Listener>).port === 'number'

/** Components of each role; a role with none yet starts nothing and says so in the start log. */
export const roleComponents: Record<Role, (deps: RoleDeps) => Component[]> = {
  processors: () => [],
  consumers: () => [],
  api: ({ config, log, registryParts }) => [
    createApiServer(
      {
        host: config.host,
        port: config.apiPort,
        maxBodyBytes: config.apiMaxBodyBytes,
        adminToken: config.adminToken,
        oidcJwksCacheMs: config.oidcJwksCacheMs,
        drainTimeoutMs: config.shutdownTimeoutMs,
      },
      { registry: registryParts.service, lookups: registryParts.lookups, log },
    ),
  ],
  adapters: () => [],
}

export function parseRoles(value: string): Role[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
  if (names.length === 1 && names[0] === 'all') return [...ROLES]
  const unknown = names.filter((n) => !(ROLES as readonly string[]).includes(n))
  if (names.length === 0 || unknown.length > 0) {
    throw new Error(
      `--roles takes "all" or a comma-separated list of ${ROLES.join(', ')}; got ${JSON.stringify(value)}`,
    )
  }
  // Start order is fixed whatever order they were named in.
  return ROLES.filter((r) => names.includes(r))
}
