// The Kubernetes manifests under deploy/kubernetes, rendered by `kubectl kustomize` as `kubectl
// apply -k` renders them, for every overlay and example. Every object is validated against the
// Kubernetes API schemas (kubernetes-models) or its operator's CRD schema (Prometheus Operator,
// Strimzi, CloudNativePG), and the render is held to the rules a schema cannot express: probes,
// requests and limits, a locked-down security context, a drain that ends before the kill, one
// disruption budget per workload, autoscalers and Services that point at something real, and
// settings that the process itself accepts (no drift from the configuration schema).
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cp, mkdtemp, readdir, rm, writeFile, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { parseAllDocuments } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig, variables } from '../../core/config/index.ts'
import { parseRoles } from '../../main/roles.ts'
import type { Role } from '../../main/roles.ts'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../../', import.meta.url))
const source = join(root, 'deploy', 'kubernetes')
const shapes = ['overlays/single-node', 'overlays/scaled-out', 'examples/strimzi-cnpg'] as const
type Shape = (typeof shapes)[number]

interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> }
  [key: string]: unknown
}
interface Probe {
  httpGet?: { path: string; port: string | number }
}
interface Container {
  name: string
  args?: string[]
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>
  envFrom?: Array<{ configMapRef?: { name: string }; secretRef?: { name: string } }>
  ports?: Array<{ name: string; containerPort: number; protocol?: string }>
  livenessProbe?: Probe
  readinessProbe?: Probe
  startupProbe?: Probe
  lifecycle?: { preStop?: { exec?: { command: string[] } } }
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> }
  securityContext?: {
    allowPrivilegeEscalation?: boolean
    readOnlyRootFilesystem?: boolean
    capabilities?: { drop?: string[] }
  }
  volumeMounts?: Array<{ name: string; mountPath: string }>
}
interface PodSpec {
  terminationGracePeriodSeconds?: number
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } }
  containers: Container[]
  volumes?: Array<{ name: string }>
}
interface Deployment extends K8sObject {
  spec: {
    replicas?: number
    selector: { matchLabels: Record<string, string> }
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec }
  }
}

// The schema class of each kind: `new Model(object).validate()` throws on any schema violation.
type Validatable = new (data: object) => { validate(): void }
async function modelFor(apiVersion: string, kind: string): Promise<Validatable> {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion]
  const operators: Record<string, string> = {
    'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
    'kafka.strimzi.io': '@kubernetes-models/strimzi-kafka-operator',
    'postgresql.cnpg.io': '@kubernetes-models/cloudnative-pg',
  }
  const pkg = operators[group!]
  const module: Record<string, unknown> =
    pkg === undefined
      ? await import(`kubernetes-models/${group === '' ? '' : `${group}/`}${version}`)
      : await import(`${pkg}/${group}/${version}`)
  const model = module[kind]
  if (typeof model !== 'function') throw new Error(`no schema for ${apiVersion} ${kind}`)
  return model as Validatable
}

const selects = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v)

// The listener each role opens, by the port name the manifests use and the setting of its port.
const rolePorts: Readonly<Record<Role, ReadonlyArray<readonly [string, string, 'TCP' | 'UDP']>>> = {
  adapters: [
    ['mqtt', 'TRIBUTARY_MQTT_PORT', 'TCP'],
    ['mqtts', 'TRIBUTARY_MQTTS_PORT', 'TCP'],
    ['mqtt-ws', 'TRIBUTARY_MQTT_WS_PORT', 'TCP'],
    ['http', 'TRIBUTARY_HTTP_PORT', 'TCP'],
    ['coap', 'TRIBUTARY_COAP_PORT', 'UDP'],
  ],
  api: [['api', 'TRIBUTARY_API_PORT', 'TCP']],
  consumers: [['app-mqtt', 'TRIBUTARY_APP_MQTT_PORT', 'TCP']],
  processors: [],
}
function defaultOf(env: string): unknown {
  const variable = Object.values(variables).find((v) => v.env === env)
  if (variable === undefined) throw new Error(`${env} is not a setting`)
  return variable.schema.parse(undefined)
}

let work: string
const rendered = new Map<Shape, K8sObject[]>()
// Valid secrets for the render: the process must accept what the manifests give it.
const secrets = {
  TRIBUTARY_ADMIN_TOKEN: randomBytes(24).toString('hex'),
  TRIBUTARY_REGISTRY_KEY: randomBytes(32).toString('base64'),
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tributary-k8s-'))
  await cp(source, work, { recursive: true })
  // Each overlay's secrets.env from its example, with real values where the example has placeholders.
  for (const overlay of await readdir(join(work, 'overlays'))) {
    const example = await readFile(join(work, 'overlays', overlay, 'secrets.env.example'), 'utf8')
    const filled = example.replace(
      /^(TRIBUTARY_ADMIN_TOKEN|TRIBUTARY_REGISTRY_KEY)=.*$/gm,
      (_, name: keyof typeof secrets) => `${name}=${secrets[name]}`,
    )
    await writeFile(join(work, 'overlays', overlay, 'secrets.env'), filled)
  }
  for (const shape of shapes) {
    const { stdout } = await run('kubectl', ['kustomize', join(work, shape)], { maxBuffer: 16 << 20 })
    const docs = parseAllDocuments(stdout)
      .map((d) => d.toJS() as K8sObject | null)
      .filter((d): d is K8sObject => d !== null)
    // Newer kustomize folds long base64 values over lines; the API server's decoder skips the line
    // breaks, the schema's "byte" format does not: join them as the server reads them.
    for (const doc of docs)
      if (doc.kind === 'Secret')
        for (const [key, value] of Object.entries((doc.data ?? {}) as Record<string, string>))
          (doc.data as Record<string, string>)[key] = value.replace(/\s+/g, '')
    rendered.set(shape, docs)
  }
}, 60_000)

afterAll(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true })
})

function objects(shape: Shape): K8sObject[] {
  const found = rendered.get(shape)
  if (found === undefined) throw new Error(`${shape} was not rendered`)
  return found
}
const ofKind = <T extends K8sObject>(shape: Shape, kind: string): T[] =>
  objects(shape).filter((o) => o.kind === kind) as T[]
const deployments = (shape: Shape): Deployment[] => ofKind<Deployment>(shape, 'Deployment')

/** The environment a container's process sees: its ConfigMap and Secret (decoded), then its own env. */
function environment(shape: Shape, container: Container): Record<string, string> {
  const env: Record<string, string> = {}
  for (const source of container.envFrom ?? []) {
    const ref = source.configMapRef ?? source.secretRef
    const kind = source.configMapRef !== undefined ? 'ConfigMap' : 'Secret'
    const found = objects(shape).find((o) => o.kind === kind && o.metadata.name === ref?.name)
    if (found === undefined)
      throw new Error(`${container.name} reads ${kind} ${ref?.name}, which is not rendered`)
    const data = (found.data ?? {}) as Record<string, string>
    for (const [key, value] of Object.entries(data))
      env[key] = kind === 'Secret' ? Buffer.from(value, 'base64').toString('utf8') : value
  }
  for (const entry of container.env ?? []) {
    // A value from a Secret the operator creates (CloudNativePG's URL): a valid one stands in.
    env[entry.name] = entry.value ?? 'postgres://tributary:secret@tributary-db-rw:5432/tributary'
  }
  return env
}

describe.each(shapes)('deploy/kubernetes/%s', (shape) => {
  it('renders only objects that are valid against their API schemas', async () => {
    const all = objects(shape)
    expect(all.length).toBeGreaterThan(5)
    for (const object of all) {
      const Model = await modelFor(object.apiVersion, object.kind)
      expect(() => new Model(object).validate(), `${object.kind} ${object.metadata.name}`).not.toThrow()
    }
  })

  it('gives every container probes on the management listener, requests and limits, and no privileges', () => {
    const all = deployments(shape)
    expect(all.length).toBeGreaterThan(0)
    for (const deployment of all) {
      const pod = deployment.spec.template.spec
      const where = `Deployment ${deployment.metadata.name}`
      expect(pod.securityContext?.runAsNonRoot, where).toBe(true)
      expect(pod.securityContext?.runAsUser, where).not.toBe(0)
      expect(pod.securityContext?.seccompProfile?.type, where).toBe('RuntimeDefault')
      for (const c of pod.containers) {
        expect(c.livenessProbe?.httpGet, where).toEqual({ path: '/livez', port: 'management' })
        expect(c.readinessProbe?.httpGet, where).toEqual({ path: '/readyz', port: 'management' })
        expect(c.ports?.find((p) => p.name === 'management')?.containerPort, where).toBe(
          defaultOf('TRIBUTARY_MANAGEMENT_PORT'),
        )
        for (const resource of ['cpu', 'memory']) {
          expect(c.resources?.requests?.[resource], `${where} requests ${resource}`).toBeDefined()
          expect(c.resources?.limits?.[resource], `${where} limits ${resource}`).toBeDefined()
        }
        expect(c.securityContext?.allowPrivilegeEscalation, where).toBe(false)
        expect(c.securityContext?.readOnlyRootFilesystem, where).toBe(true)
        expect(c.securityContext?.capabilities?.drop, where).toEqual(['ALL'])
        // A read-only root: the data dir and /tmp are volumes.
        const env = environment(shape, c)
        const mounts = (c.volumeMounts ?? []).map((m) => m.mountPath)
        expect(mounts, where).toContain(env.TRIBUTARY_DATA_DIR)
        expect(mounts, where).toContain('/tmp')
        for (const mount of c.volumeMounts ?? [])
          expect(
            pod.volumes?.map((v) => v.name),
            where,
          ).toContain(mount.name)
      }
    }
  })

  it('lets the drain finish before the kill: grace > preStop pause + TRIBUTARY_SHUTDOWN_TIMEOUT_MS', () => {
    for (const deployment of deployments(shape)) {
      const pod = deployment.spec.template.spec
      for (const c of pod.containers) {
        const config = loadConfig(environment(shape, c))
        const command = c.lifecycle?.preStop?.exec?.command ?? []
        const pause = command[0] === 'sleep' ? Number(command[1]) : 0
        expect(Number.isFinite(pause)).toBe(true)
        expect(pod.terminationGracePeriodSeconds ?? 30, deployment.metadata.name).toBeGreaterThan(
          pause + config.shutdownTimeoutMs / 1000,
        )
      }
    }
  })

  it('passes every process settings it accepts (every TRIBUTARY_* variable exists and parses)', () => {
    for (const deployment of deployments(shape)) {
      for (const c of deployment.spec.template.spec.containers) {
        const env = environment(shape, c)
        expect(Object.keys(env).length).toBeGreaterThan(3)
        for (const name of Object.keys(env)) expect(name).toMatch(/^TRIBUTARY_/)
        // loadConfig refuses an unknown TRIBUTARY_* variable and any value its schema does not take.
        expect(() => loadConfig(env), deployment.metadata.name).not.toThrow()
      }
    }
  })

  it('declares the listeners of the roles each container runs, on their configured ports', () => {
    for (const deployment of deployments(shape)) {
      const labels = deployment.spec.template.metadata.labels
      for (const c of deployment.spec.template.spec.containers) {
        const args = c.args ?? []
        expect(args[0]).toBe('start')
        const roles = parseRoles(args[args.indexOf('--roles') + 1] ?? 'all')
        // The role labels that Services select on say exactly which roles run here.
        for (const role of Object.keys(rolePorts) as Role[])
          expect(labels[`tributary.io/${role}`] === 'true', `${deployment.metadata.name} ${role}`).toBe(
            roles.includes(role),
          )
        const expected = roles.flatMap((role) => rolePorts[role])
        const declared = (c.ports ?? []).filter((p) => p.name !== 'management')
        expect(declared.map((p) => p.name).sort()).toEqual(expected.map(([name]) => name).sort())
        for (const [name, env, protocol] of expected) {
          const port = declared.find((p) => p.name === name)
          expect(port?.containerPort, name).toBe(defaultOf(env))
          expect(port?.protocol ?? 'TCP', name).toBe(protocol)
        }
      }
    }
  })

  it('gives every Deployment one PodDisruptionBudget, and points autoscalers at Deployments', () => {
    const budgets = ofKind<K8sObject & { spec: { selector: { matchLabels: Record<string, string> } } }>(
      shape,
      'PodDisruptionBudget',
    )
    for (const deployment of deployments(shape)) {
      const matching = budgets.filter((b) =>
        selects(b.spec.selector.matchLabels, deployment.spec.template.metadata.labels),
      )
      expect(matching.length, deployment.metadata.name).toBe(1)
    }
    const autoscalers = ofKind<
      K8sObject & { spec: { scaleTargetRef: { kind: string; name: string }; maxReplicas: number } }
    >(shape, 'HorizontalPodAutoscaler')
    for (const hpa of autoscalers) {
      const target = deployments(shape).find((d) => d.metadata.name === hpa.spec.scaleTargetRef.name)
      expect(hpa.spec.scaleTargetRef.kind).toBe('Deployment')
      expect(target, hpa.metadata.name).toBeDefined()
    }
  })

  it('points every Service at pods that serve its ports, and the ServiceMonitor at the management port', () => {
    const services = ofKind<
      K8sObject & {
        spec: {
          selector: Record<string, string>
          ports: Array<{ name: string; targetPort: string; protocol: string }>
        }
      }
    >(shape, 'Service')
    expect(services.length).toBeGreaterThan(0)
    for (const service of services) {
      const pods = deployments(shape).filter((d) =>
        selects(service.spec.selector, d.spec.template.metadata.labels),
      )
      expect(pods.length, `Service ${service.metadata.name} selects no pod`).toBeGreaterThan(0)
      for (const pod of pods) {
        const ports = pod.spec.template.spec.containers.flatMap((c) => c.ports ?? [])
        for (const port of service.spec.ports) {
          const target = ports.find((p) => p.name === port.targetPort)
          expect(target, `${service.metadata.name} → ${pod.metadata.name} ${port.targetPort}`).toBeDefined()
          expect(target?.protocol ?? 'TCP').toBe(port.protocol)
        }
      }
    }
    const [monitor] = ofKind<
      K8sObject & {
        spec: {
          selector: { matchLabels: Record<string, string> }
          endpoints: Array<{ port: string; path: string }>
        }
      }
    >(shape, 'ServiceMonitor')
    const scraped = services.filter((s) =>
      selects(monitor!.spec.selector.matchLabels, s.metadata.labels ?? {}),
    )
    expect(scraped.map((s) => s.metadata.name)).toEqual(['tributary-management'])
    expect(monitor!.spec.endpoints).toEqual([{ port: 'management', path: '/metrics', interval: '30s' }])
    // Headless and selecting every process, whatever its roles.
    for (const deployment of deployments(shape))
      expect(selects(scraped[0]!.spec.selector, deployment.spec.template.metadata.labels)).toBe(true)
  })
})

describe('the scaled-out shape', () => {
  const shape = 'overlays/scaled-out'

  it('runs each role as its own Deployment, autoscaled, with processors capped at the ingress partitions', () => {
    const byRole = new Map(
      deployments(shape).map((d) => [d.metadata.labels?.['app.kubernetes.io/component'], d] as const),
    )
    expect([...byRole.keys()].sort()).toEqual(['adapters', 'api', 'consumers', 'processors'])
    const autoscalers = ofKind<
      K8sObject & { spec: { scaleTargetRef: { name: string }; minReplicas: number; maxReplicas: number } }
    >(shape, 'HorizontalPodAutoscaler')
    for (const [role, deployment] of byRole) {
      const hpa = autoscalers.find((h) => h.spec.scaleTargetRef.name === deployment.metadata.name)
      expect(hpa, `${role} autoscaler`).toBeDefined()
      expect(hpa!.spec.minReplicas, role).toBeGreaterThanOrEqual(2)
    }
    const processors = byRole.get('processors')!
    const config = loadConfig(environment(shape, processors.spec.template.spec.containers[0]!))
    const hpa = autoscalers.find((h) => h.spec.scaleTargetRef.name === processors.metadata.name)!
    expect(hpa.spec.maxReplicas).toBeLessThanOrEqual(config.topicPartitions)
  })

  it('runs on Kafka, PostgreSQL, Redis and S3, never on the embedded engines', () => {
    for (const deployment of deployments(shape)) {
      const config = loadConfig(environment(shape, deployment.spec.template.spec.containers[0]!))
      expect(config.kafkaBrokers?.length, deployment.metadata.name).toBeGreaterThan(0)
      expect(config.databaseUrl, deployment.metadata.name).toMatch(/^postgres/)
      expect(config.redisUrl, deployment.metadata.name).toMatch(/^redis:/)
      expect(config.s3Bucket, deployment.metadata.name).toBeDefined()
    }
  })
})

describe('the single-node shape', () => {
  it('runs one process with every role on a persistent volume, never two at once', () => {
    const [deployment, ...others] = deployments('overlays/single-node')
    expect(others).toEqual([])
    expect(deployment!.spec.replicas).toBe(1)
    expect((deployment!.spec as { strategy?: { type: string } }).strategy?.type).toBe('Recreate')
    const volumes = deployment!.spec.template.spec.volumes as Array<{
      name: string
      persistentVolumeClaim?: { claimName: string }
    }>
    const claims = ofKind('overlays/single-node', 'PersistentVolumeClaim').map((c) => c.metadata.name)
    const data = volumes.find((v) => v.name === 'data')
    expect(claims).toContain(data?.persistentVolumeClaim?.claimName)
  })
})

describe('the Strimzi and CloudNativePG example', () => {
  const shape = 'examples/strimzi-cnpg'

  it('points every role at the operators’ Kafka bootstrap and PostgreSQL Secret', () => {
    const kafka = ofKind(shape, 'Kafka')[0]!
    const cluster = ofKind(shape, 'Cluster')[0]!
    for (const deployment of deployments(shape)) {
      const c = deployment.spec.template.spec.containers[0]!
      const config = loadConfig(environment(shape, c))
      expect(config.kafkaBrokers).toEqual([`${kafka.metadata.name}-kafka-bootstrap:9092`])
      expect(c.env?.find((e) => e.name === 'TRIBUTARY_DATABASE_URL')?.valueFrom?.secretKeyRef).toEqual({
        name: `${cluster.metadata.name}-app`,
        key: 'uri',
      })
    }
  })
})
