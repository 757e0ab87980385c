// The roles a process can run (DESIGN.md "Roles and the one entrypoint"), in start order. Each
// role lists the components it starts; features add theirs here as they land.
import type { Adapter } from '../adapters/adapter.ts'
import { createIngest } from '../adapters/adapter.ts'
import type { PublishedDeps } from '../core/blobs/published.ts'
import { coapConfig, createCoapAdapter } from '../adapters/coap/index.ts'
import { httpConfig } from '../adapters/http/config.ts'
import { createHttpAdapter } from '../adapters/http/index.ts'
import { createMqttAdapter, mqttConfig } from '../adapters/mqtt/index.ts'
import { appMqttConfig, createAppMqttBroker } from '../consumers/mqtt/index.ts'
import { createApiServer } from '../api/index.ts'
import { createBearerAuthenticator } from '../core/auth/bearer.ts'
import { createOidcVerifier } from '../core/auth/oidc.ts'
import { topicNames } from '../core/events/topics.ts'
import type { Component } from '../core/lifecycle.ts'
import { createDeadLetterIndex } from '../processors/deadletter-index.ts'
import { createProcessor } from '../processors/index.ts'
import { createTopicRetirement } from '../processors/retirement.ts'
import type { RoleDeps } from './role-deps.ts'
import { tenantTopicEnsurer } from './tenant-topic.ts'
import { VERSION } from './version.ts'
import { webhookDelivery } from './webhooks.ts'
import { commandDelivery, commandService } from './commands.ts'

export type { RoleDeps } from './role-deps.ts'

export const ROLES = ['processors', 'consumers', 'api', 'adapters'] as const
export type Role = (typeof ROLES)[number]

/** A component that listens on a port; start.ts reports the bound port under the component's name. */
export interface Listener extends Component {
  readonly port: number
}

export const isListener = (c: Component): c is Listener => typeof (c as Partial<Listener>).port === 'number'

/** An adapter reports several ports (one per listener), e.g. `mqtt`, `mqtts`, `mqttWs`. */
export const isAdapter = (c: Component): c is Adapter => typeof (c as Partial<Adapter>).ports === 'function'

/** The device-facing adapters of the process, sharing one ingest (one producer keeps per-device order). */
function adapters(deps: RoleDeps): Component[] {
  const { config, log, registry, bus, registryParts, cluster } = deps
  const ingest = createIngest({
    bus,
    availability: bus.availability,
    topics: topicNames(config.topicPrefix),
    log,
  })
  const mqtt = mqttConfig(config)
  // The dispatcher and router start before the adapters attach sinks to it, and stop after them.
  const delivery = commandDelivery(deps)
  const commands = delivery.dispatcher
  const out: Component[] = [...delivery.components]
  const http = httpConfig(config)
  // Set once the device HTTP listener exists: MQTT hands out upload URLs on it (docs/files.md).
  let httpAdapter: Adapter | undefined
  const uploadBase = (localAddress: string | undefined): string | undefined => {
    if (config.filesUploadUrl !== undefined) return config.filesUploadUrl
    const port = httpAdapter?.ports()['http']
    if (port === undefined || port === 0) return undefined
    const wildcard = http.host === '0.0.0.0' || http.host === '::' || http.host === ''
    let host = localAddress ?? (wildcard ? '127.0.0.1' : http.host)
    if (host.startsWith('::ffff:')) host = host.slice('::ffff:'.length)
    return `http://${host.includes(':') ? `[${host}]` : host}:${port}`
  }
  // What every protocol's devices ask of the files published to them (core/blobs/published.ts).
  const published: PublishedDeps = {
    files: registryParts.store.files,
    lookups: registryParts.files,
    links: registryParts.downloads,
    rate: (tenant, device) => registryParts.uploads.checkRate(tenant, device),
  }
  // Signed download URLs made by the management API of this process point at this listener too.
  if (http.enabled) registryParts.deviceHttp.base = uploadBase
  if (mqtt.tcp.enabled || mqtt.tls.enabled || mqtt.ws.enabled) {
    out.push(
      createMqttAdapter(mqtt, {
        ingest,
        auth: registryParts.auth,
        listTenants: (options) => registryParts.service.listTenants(options),
        touchDevice: (tenant, device, at) => registryParts.store.touchDevice(tenant, device, at),
        cluster,
        config: registryParts.service,
        commands,
        files: http.enabled ? { uploads: registryParts.uploads, uploadBase } : undefined,
        published,
        metrics: registry,
        log: log.child({ component: 'mqtt' }),
      }),
    )
  }
  const coap = coapConfig(config)
  if (coap.enabled) {
    out.push(
      createCoapAdapter(coap, {
        ingest,
        auth: registryParts.auth,
        touchDevice: (tenant, device, at) => registryParts.store.touchDevice(tenant, device, at),
        cluster,
        commands,
        config: registryParts.service,
        files: http.enabled ? { uploads: registryParts.uploads, uploadBase } : undefined,
        published,
        onRegistryChange: (listener) => registryParts.auth.onChange(listener),
        metrics: registry,
        log: log.child({ component: 'coap' }),
      }),
    )
  }
  if (http.enabled) {
    httpAdapter = createHttpAdapter(http, {
      ingest,
      auth: registryParts.auth.device,
      tenant: (id) => registryParts.auth.tenant(id),
      findDevice: (tenant, device) => registryParts.auth.findDevice(tenant, device),
      onRegistryChange: (listener) => registryParts.auth.onChange(listener),
      registry: registryParts.service,
      store: registryParts.store,
      cluster,
      commands,
      secrets: registryParts.secrets,
      allowPrivateDownlinks: config.webhookAllowPrivate,
      uploads: registryParts.uploads,
      downloads: { links: registryParts.downloads, blobs: registryParts.blobs },
      published: { ...published, base: () => config.filesUploadUrl },
      metrics: registry,
      log: log.child({ component: 'http' }),
    })
    out.push(httpAdapter)
  }
  return out
}

/** The application MQTT broker (its own aedes instance and port), when enabled. */
function appMqtt({ config, log, registry, bus, registryParts }: RoleDeps): Component[] {
  const settings = appMqttConfig(config)
  if (!settings.enabled) return []
  const appLog = log.child({ component: 'app-mqtt' })
  const bearer = createBearerAuthenticator({
    adminToken: config.adminToken,
    lookups: registryParts.lookups,
    oidc: createOidcVerifier({
      jwksCacheMs: config.oidcJwksCacheMs,
      allowPrivate: config.webhookAllowPrivate,
      log: appLog,
    }),
  })
  return [
    createAppMqttBroker(settings, {
      bus,
      ensureTopic: tenantTopicEnsurer({
        admin: bus.admin,
        topics: topicNames(config.topicPrefix),
        partitions: config.topicPartitions,
        tenant: (id) => registryParts.auth.tenant(id),
      }),
      bearer,
      tenant: (id) => registryParts.auth.tenant(id),
      findDevice: (tenant, device) => registryParts.auth.findDevice(tenant, device),
      metrics: registry,
      log: appLog,
    }),
  ]
}

/** Components of each role; a role with none yet starts nothing and says so in the start log. */
export const roleComponents: Record<Role, (deps: RoleDeps) => Component[]> = {
  processors: ({ config, log, bus, registry, registryParts, cluster }) => [
    createProcessor(
      { topics: topicNames(config.topicPrefix), topicPartitions: config.topicPartitions },
      {
        bus,
        auth: registryParts.auth,
        cluster,
        metrics: registry,
        log: log.child({ component: 'processors' }),
      },
    ),
    createTopicRetirement(
      { topics: topicNames(config.topicPrefix), graceMs: config.tenantTopicGraceMs },
      { admin: bus.admin, store: registryParts.store, log: log.child({ component: 'processors' }) },
    ),
    createDeadLetterIndex(
      {
        topic: topicNames(config.topicPrefix).deadletter,
        group: topicNames(config.topicPrefix).groups.deadLetterIndex,
        keep: config.deadLetterKeep,
      },
      {
        bus,
        store: registryParts.store,
        metrics: registry,
        log: log.child({ component: 'deadletter-index' }),
      },
    ),
  ],
  consumers: (deps) => [...appMqtt(deps), webhookDelivery(deps)],
  api: (deps) => {
    const { config, log, bus, registryParts } = deps
    const commands = commandService(deps)
    return [
      commands,
      createApiServer(
        {
          host: config.host,
          port: config.apiPort,
          maxBodyBytes: config.apiMaxBodyBytes,
          adminToken: config.adminToken,
          oidcJwksCacheMs: config.oidcJwksCacheMs,
          allowPrivateTargets: config.webhookAllowPrivate,
          drainTimeoutMs: config.shutdownTimeoutMs,
          version: VERSION,
        },
        {
          registry: registryParts.service,
          lookups: registryParts.lookups,
          deadLetters: registryParts.store,
          files: {
            store: registryParts.store.files,
            lookups: registryParts.files,
            blobs: registryParts.blobs,
            downloads: {
              links: registryParts.downloads,
              base: (host) => registryParts.deviceHttp.base(host),
            },
          },
          commands,
          events: {
            bus,
            config: {
              topics: topicNames(config.topicPrefix),
              topicPartitions: config.topicPartitions,
              maxConnections: config.wsMaxConnections,
              maxConnectionsPerTenant: config.wsMaxConnectionsPerTenant,
              maxBufferedBytes: config.wsMaxBufferedBytes,
              stallTimeoutMs: 30_000,
              recheckMs: config.credentialRecheckMs,
            },
          },
          log,
        },
      ),
    ]
  },
  adapters,
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
