// The deployment files, checked without a Docker engine: docker-compose.yml is valid Compose (docker-compose
// accepts it and it matches the compose-spec schema) and wires what a reviewer expects; the Dockerfile
// builds a non-root image that runs main/cli.ts; both agree with the config schema and DESIGN.md's ports.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Ajv } from 'ajv'
import type { ValidateFunction } from 'ajv'
import { parse, stringify } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { variables } from '../../core/config/schema.ts'
import { NODE_FLAGS } from '../../main/node-flags.ts'
import { ROLES } from '../../main/roles.ts'
import type { Role } from '../../main/roles.ts'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../../', import.meta.url))
const composePath = join(root, 'docker-compose.yml')
// Shipped by Debian's docker-compose package, the same schema docker-compose validates with.
const composeSpecPath = '/usr/lib/python3/dist-packages/compose/config/compose_spec.json'

// DESIGN.md, "Roles and the one entrypoint": one port per listener, published as is.
const listeners: Readonly<Record<string, string>> = {
  TRIBUTARY_MANAGEMENT_PORT: '9400/tcp',
  TRIBUTARY_API_PORT: '8080/tcp',
  TRIBUTARY_HTTP_PORT: '8088/tcp',
  TRIBUTARY_MQTT_PORT: '1883/tcp',
  TRIBUTARY_MQTTS_PORT: '8883/tcp',
  TRIBUTARY_MQTT_WS_PORT: '8083/tcp',
  TRIBUTARY_COAP_PORT: '5683/udp',
  TRIBUTARY_APP_MQTT_PORT: '1884/tcp',
}
// Each role is its own service, running `start --roles <role>` and publishing its listeners.
const roleServices: Readonly<Record<Role, string>> = {
  adapters: 'tributary-adapters',
  processors: 'tributary-processors',
  consumers: 'tributary-consumers',
  api: 'tributary-api',
}
const roleListeners: Readonly<Record<Role, readonly string[]>> = {
  adapters: [
    'TRIBUTARY_HTTP_PORT',
    'TRIBUTARY_MQTT_PORT',
    'TRIBUTARY_MQTTS_PORT',
    'TRIBUTARY_MQTT_WS_PORT',
    'TRIBUTARY_COAP_PORT',
  ],
  processors: [],
  consumers: ['TRIBUTARY_APP_MQTT_PORT'],
  api: ['TRIBUTARY_API_PORT'],
}
const sourceFolders = ['core', 'adapters', 'processors', 'consumers', 'commands', 'api', 'main', 'schemas']
const known = new Map<string, (typeof variables)[keyof typeof variables]>(
  Object.values(variables).map((v) => [v.env, v]),
)
// The variables docker-compose.yml requires (`${VAR:?message}`), set to values the process accepts. Fresh
// per run, so no test can pass by a key or token that is written down somewhere.
const required: Readonly<Record<string, string>> = {
  TRIBUTARY_REGISTRY_KEY: randomBytes(32).toString('base64'),
  TRIBUTARY_ADMIN_TOKEN: randomBytes(24).toString('hex'),
}

interface Service {
  image?: string
  build?: string | { context?: string; dockerfile?: string }
  environment?: Record<string, unknown>
  healthcheck?: { test?: string | string[]; disable?: boolean; interval?: string }
  depends_on?: Record<string, { condition: string }>
  ports?: unknown[]
  volumes?: unknown[]
  restart?: string
  command?: string | string[]
  entrypoint?: string | string[]
}
interface ComposeFile {
  services: Record<string, Service>
  volumes?: Record<string, unknown>
  [key: string]: unknown
}

/** The services of Tributary's roles, in ROLES order. */
function tributaryServices(doc: ComposeFile): Array<[Role, Service]> {
  return ROLES.map((role) => [role, service(doc, roleServices[role])])
}

function service(doc: ComposeFile, name: string): Service {
  const found = doc.services[name]
  if (found === undefined) throw new Error(`docker-compose.yml has no service ${name}`)
  return found
}

/** The environment mapping; every value a string so YAML cannot turn `false` or `yes` into a boolean. */
function env(svc: Service): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(svc.environment ?? {})) {
    if (typeof value !== 'string') throw new Error(`${key} is ${typeof value}; quote it`)
    out[key] = value
  }
  return out
}

/**
 * Compose's interpolation: `$$` → `$`; `${VAR}`; `${VAR:-default}`; `${VAR:?message}`, which fails when
 * VAR is unset or empty (without the colon: only when unset).
 */
function interpolate(value: string, vars: Readonly<Record<string, string>>): string {
  return value.replace(
    /\$\$|\$\{(\w+)(?:(:?)([-?])([^}]*))?\}/g,
    (match: string, name?: string, colon?: string, op?: string, arg?: string) => {
      if (match === '$$' || name === undefined) return '$'
      const set = vars[name]
      if (set !== undefined && (colon !== ':' || set !== '')) return set
      if (op === '?') throw new Error(`${name} is required: ${arg ?? ''}`)
      return op === '-' ? (arg ?? '') : ''
    },
  )
}

/** What Compose substitutes with only the required variables set: every default applies. */
function withDefaults(value: string): string {
  return interpolate(value, required)
}

// The credentials with a development default, which the header of docker-compose.yml announces: the
// postgres and minio services are created with them, and Tributary's database URL and S3 secret use
// the same expressions.
const developmentDefaults = new Set(['POSTGRES_PASSWORD', 'MINIO_ROOT_PASSWORD'])

/**
 * Secret settings of the tributary service that the file itself supplies, as literal text or as the
 * default of a `${VAR:-default}`: what the file supplies must be empty, or a URL without a password.
 */
function hardCodedSecrets(doc: ComposeFile): string[] {
  const found = new Set<string>()
  for (const [, svc] of tributaryServices(doc)) {
    for (const [name, value] of Object.entries(env(svc))) {
      if (known.get(name)?.secret !== true) continue
      const literal = value.replace(
        /\$\{(\w+)(?::?-([^}]*))?[^}]*\}/g,
        (_match: string, variable: string, fallback?: string) =>
          developmentDefaults.has(variable) ? '' : (fallback ?? ''),
      )
      if (literal === '') continue
      if (URL.canParse(literal) ? new URL(literal).password !== '' : true) found.add(name)
    }
  }
  return [...found]
}

function unknownTributaryVariables(doc: ComposeFile, dockerfileEnv: Record<string, string>): string[] {
  const names = [
    ...Object.values(doc.services).flatMap((svc) => Object.keys(env(svc))),
    ...Object.keys(dockerfileEnv),
  ]
  return names.filter((name) => name.startsWith('TRIBUTARY_') && !known.has(name))
}

/** Short port syntax: [ip:][host:]container[/protocol] → host and container port with protocol. */
function parsePort(spec: unknown): { ip: string | undefined; host: string | undefined; container: string } {
  if (typeof spec !== 'string') throw new Error(`port ${JSON.stringify(spec)}: use the quoted short syntax`)
  const m = /^(?:(?<ip>\d+(?:\.\d+){3}):)?(?:(?<host>\d+):)?(?<port>\d+)(?<proto>\/(?:tcp|udp))?$/.exec(spec)
  if (m?.groups?.port === undefined) throw new Error(`port ${spec} is not [ip:][host:]container[/protocol]`)
  const proto = m.groups.proto ?? '/tcp'
  return { ip: m.groups.ip, host: m.groups.host && m.groups.host + proto, container: m.groups.port + proto }
}

function healthcheckText(svc: Service): string {
  const test = svc.healthcheck?.test
  return Array.isArray(test) ? test.join(' ') : (test ?? '')
}

/** Dockerfile instructions (continuations joined, comments dropped), grouped by stage. */
function dockerfileStages(text: string): { globals: string[]; stages: string[][] } {
  const lines = text.split('\n').filter((line) => !/^\s*#/.test(line))
  const instructions = lines
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
  const globals: string[] = []
  const stages: string[][] = []
  for (const instruction of instructions) {
    if (/^FROM\s/i.test(instruction)) stages.push([instruction])
    else (stages.at(-1) ?? globals).push(instruction)
  }
  return { globals, stages }
}

function args(instruction: string): string {
  return instruction.replace(/^\S+\s+/, '')
}

function dockerfileEnv(instructions: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const instruction of instructions.filter((i) => /^ENV\s/i.test(i))) {
    for (const m of args(instruction).matchAll(/(\w+)=("[^"]*"|\S+)/g)) out[m[1] ?? ''] = m[2] ?? ''
  }
  return out
}

/**
 * The compose-spec schema for Ajv. docker-compose validates it as draft-04 with its own format checkers;
 * Ajv reads the same keywords but refuses draft-04 `id` and does not know the 2019-09 `$schema` it names.
 */
function composeValidator(schema: unknown): ValidateFunction {
  const namesOnly = new Set(['properties', 'patternProperties', 'definitions'])
  const strip = (node: unknown, keysAreNames: boolean): unknown => {
    if (Array.isArray(node)) return node.map((item) => strip(item, false))
    if (typeof node !== 'object' || node === null) return node
    const entries = Object.entries(node).filter(
      ([key, value]) => keysAreNames || !((key === 'id' && typeof value === 'string') || key === '$schema'),
    )
    return Object.fromEntries(
      entries.map(([key, value]) => [key, strip(value, !keysAreNames && namesOnly.has(key))]),
    )
  }
  const ajv = new Ajv({ strict: false, allErrors: true })
  // docker-py's PORT_SPEC, compose's VALID_EXPOSE_FORMAT, Go's time.ParseDuration, and CIDR.
  ajv.addFormat('ports', /^(?:(?:\[?[a-fA-F\d.:]+\]?:)?\d*(?:-\d+)?:)?\d+(?:-\d+)?(?:\/(?:udp|tcp|sctp))?$/)
  ajv.addFormat('expose', /^\d+(?:-\d+)?(?:\/[a-zA-Z]+)?$/)
  ajv.addFormat('duration', /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/)
  ajv.addFormat('subnet_ip_address', /^[\d.]+\/\d{1,2}$|^[\da-fA-F:]+\/\d{1,3}$/)
  return ajv.compile(strip(schema, false) as object)
}

type ComposeResult = { ok: true; stdout: string } | { ok: false; stderr: string }

/**
 * `docker-compose config` on a file (`-q` unless `resolved`), with exactly the variables given: neither the
 * caller's environment nor an .env file beside the compose file takes part. The test fails, never skips,
 * when docker-compose is missing.
 */
async function composeConfig(
  file: string,
  vars: Readonly<Record<string, string>> = required,
  resolved = false,
): Promise<ComposeResult> {
  try {
    const emptyEnvFile = join(scratch, 'empty.env')
    await writeFile(emptyEnvFile, '')
    const argv = ['-f', file, '--project-directory', root, '--env-file', emptyEnvFile, 'config']
    const { stdout } = await run('docker-compose', resolved ? argv : [...argv, '-q'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...vars },
      timeout: 30_000,
    })
    return { ok: true, stdout }
  } catch (err) {
    const failure = err as NodeJS.ErrnoException & { stderr?: string }
    if (failure.code === 'ENOENT') {
      throw new Error(
        'docker-compose is not installed, so docker-compose.yml cannot be validated. Install it (Debian: apt-get install docker-compose).',
        { cause: err },
      )
    }
    return { ok: false, stderr: failure.stderr ?? String(err) }
  }
}

let text: string
let doc: ComposeFile
let dockerfile: { globals: string[]; stages: string[][] }
let dockerEnv: Record<string, string>
let scratch: string

beforeAll(async () => {
  text = await readFile(composePath, 'utf8')
  doc = parse(text) as ComposeFile
  dockerfile = dockerfileStages(await readFile(join(root, 'Dockerfile'), 'utf8'))
  dockerEnv = dockerfileEnv(dockerfile.stages.at(-1) ?? [])
  scratch = await mkdtemp(join(tmpdir(), 'tributary-compose-'))
})

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true })
})

describe('docker-compose.yml is valid Compose', () => {
  it('passes docker-compose config', async () => {
    const result = await composeConfig(composePath)
    expect(result, 'docker-compose config -q rejected docker-compose.yml').toMatchObject({ ok: true })
  })

  it('refuses to run without the registry key or the admin token, saying how to make one', async () => {
    const messages: Record<string, RegExp> = {
      TRIBUTARY_REGISTRY_KEY: /TRIBUTARY_REGISTRY_KEY .*openssl rand -base64 32/,
      TRIBUTARY_ADMIN_TOKEN: /TRIBUTARY_ADMIN_TOKEN .*at least 16 characters/,
    }
    for (const [name, message] of Object.entries(messages)) {
      for (const vars of [
        { ...required, [name]: '' },
        Object.fromEntries(Object.entries(required).filter(([key]) => key !== name)),
      ]) {
        const result = await composeConfig(composePath, vars)
        expect(result.ok, `${name}=${JSON.stringify(vars[name])}`).toBe(false)
        // docker-compose 1 prints the raw mapping first, then `in service "<name>": <message>`.
        const reason = result.ok
          ? ''
          : (result.stderr
              .trim()
              .split(/in service "tributary-\w+": /)
              .at(-1) ?? '')
        expect(reason).toMatch(message)
      }
    }
  })

  it('takes the secrets and the database password from the environment', async () => {
    const password = randomBytes(12).toString('hex')
    const result = await composeConfig(composePath, { ...required, POSTGRES_PASSWORD: password }, true)
    expect(result.ok, result.ok ? '' : result.stderr).toBe(true)
    const resolved = parse(result.ok ? result.stdout : '', { version: '1.1' }) as ComposeFile
    for (const [role, svc] of tributaryServices(resolved)) {
      const settings = env(svc)
      expect(settings.TRIBUTARY_REGISTRY_KEY, role).toBe(required.TRIBUTARY_REGISTRY_KEY)
      expect(settings.TRIBUTARY_ADMIN_TOKEN, role).toBe(required.TRIBUTARY_ADMIN_TOKEN)
      expect(settings.TRIBUTARY_DATABASE_URL, role).toBe(
        `postgres://tributary:${password}@postgres:5432/tributary`,
      )
    }
    expect(env(service(resolved, 'postgres')).POSTGRES_PASSWORD).toBe(password)
  })

  it('rejects a broken copy, so the check above can fail', async () => {
    const broken = structuredClone(doc)
    const dependsOn = service(broken, 'tributary-api').depends_on
    expect(dependsOn?.kafka).toBeDefined()
    // A copy of its own, so only this service is broken.
    service(broken, 'tributary-api').depends_on = { ...dependsOn, kafka: { condition: 'service_ready' } }
    // YAML 1.1 output, so strings such as 'no' stay quoted for docker-compose's YAML 1.1 reader.
    await writeFile(join(scratch, 'intact.yml'), stringify(doc, { version: '1.1' }))
    await writeFile(join(scratch, 'broken.yml'), stringify(broken, { version: '1.1' }))

    expect(await composeConfig(join(scratch, 'intact.yml'))).toMatchObject({ ok: true })
    const result = await composeConfig(join(scratch, 'broken.yml'))
    expect(result.ok).toBe(false)
    expect(result.ok ? '' : result.stderr).toContain('services.tributary-api.depends_on.kafka.condition')
  })

  it('matches the compose-spec JSON schema, which rejects the broken copy', async () => {
    await access(composeSpecPath).catch((err: unknown) => {
      throw new Error(
        `the compose-spec schema is not at ${composeSpecPath}: install Debian's docker-compose`,
        {
          cause: err,
        },
      )
    })
    const validate = composeValidator(JSON.parse(await readFile(composeSpecPath, 'utf8')))
    expect(validate(doc), JSON.stringify(validate.errors, null, 2)).toBe(true)

    const badCondition = structuredClone(doc)
    const dependsOn = service(badCondition, 'tributary-api').depends_on
    service(badCondition, 'tributary-api').depends_on = {
      ...dependsOn,
      kafka: { condition: 'service_ready' },
    }
    expect(validate(badCondition)).toBe(false)
    const badDuration = structuredClone(doc)
    service(badDuration, 'tributary-api').healthcheck = { test: ['CMD', 'true'], interval: 'ten seconds' }
    expect(validate(badDuration)).toBe(false)
  })

  it('means the same under YAML 1.1 (docker-compose 1) and YAML 1.2 (Compose 2)', () => {
    expect(parse(text, { version: '1.1' })).toEqual(doc)
  })

  it('uses the compose specification format (no version key) and pinned images', () => {
    expect(doc).not.toHaveProperty('version')
    for (const [name, svc] of Object.entries(doc.services)) {
      if (svc.build !== undefined) continue
      expect(svc.image, `${name}: image pinned by tag`).toMatch(/^[\w./-]+:[\w.-]+$/)
      expect(svc.image, `${name}: image pinned by tag`).not.toMatch(/:latest$/)
    }
  })
})

describe('docker-compose.yml services', () => {
  it('runs Kafka in KRaft mode as one broker and controller, with no ZooKeeper', () => {
    expect(Object.keys(doc.services).filter((name) => /zookeeper/i.test(name))).toEqual([])
    const kafka = service(doc, 'kafka')
    const kafkaEnv = env(kafka)
    expect(kafka.image).toBe('apache/kafka:4.2.0')
    expect(kafkaEnv.KAFKA_PROCESS_ROLES?.split(',').sort()).toEqual(['broker', 'controller'])
    expect(kafkaEnv.KAFKA_CONTROLLER_QUORUM_VOTERS).toMatch(/^1@/)
    expect(kafkaEnv.KAFKA_NODE_ID).toBe('1')
    expect(Object.keys(kafkaEnv).filter((key) => key.includes('ZOOKEEPER'))).toEqual([])
    expect(kafkaEnv.KAFKA_AUTO_CREATE_TOPICS_ENABLE).toBe('false')
    expect(kafkaEnv.KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS).toBe('0')
    for (const key of [
      'KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR',
      'KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR',
      'KAFKA_TRANSACTION_STATE_LOG_MIN_ISR',
      'KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR',
      'KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR',
    ]) {
      expect(kafkaEnv[key], key).toBe('1')
    }
    expect(healthcheckText(kafka)).toMatch(/^CMD \/opt\/kafka\/bin\/kafka-(broker-api-versions|topics)\.sh /)
  })

  it('gives every long-running service a healthcheck; only the bucket job runs once', () => {
    const oneShot = Object.entries(doc.services).filter(([, svc]) => svc.restart === 'no')
    expect(oneShot.map(([name]) => name)).toEqual(['minio-init'])
    for (const [name, svc] of Object.entries(doc.services)) {
      if (svc.restart === 'no') continue
      expect(svc.healthcheck?.disable, name).not.toBe(true)
      expect(healthcheckText(svc), `${name} has a healthcheck`).toMatch(/^CMD(-SHELL)? \S/)
    }
  })

  it('waits on healthy dependencies: every role on Kafka, PostgreSQL and Redis, the bucket job on MinIO', () => {
    for (const [role, svc] of tributaryServices(doc)) {
      expect(svc.depends_on?.kafka, role).toEqual({ condition: 'service_healthy' })
      expect(svc.depends_on?.postgres, role).toEqual({ condition: 'service_healthy' })
      expect(svc.depends_on?.redis, role).toEqual({ condition: 'service_healthy' })
    }
    expect(service(doc, 'minio-init').depends_on?.minio).toEqual({ condition: 'service_healthy' })
    for (const [name, svc] of Object.entries(doc.services)) {
      for (const [target, { condition }] of Object.entries(svc.depends_on ?? {})) {
        if (condition === 'service_healthy')
          expect(service(doc, target).healthcheck, `${name} → ${target}`).toBeDefined()
      }
    }
  })

  it('keeps state in named volumes', () => {
    const declared = Object.keys(doc.volumes ?? {})
    for (const name of ['kafka', 'postgres', 'redis', 'minio']) {
      const sources = (service(doc, name).volumes ?? []).map((v) => String(v).split(':')[0])
      expect(
        sources.some((source) => declared.includes(source ?? '')),
        `${name} mounts a named volume`,
      ).toBe(true)
    }
  })

  it('configures PostgreSQL 17, Redis 7 with AOF, and MinIO with a tributary bucket', () => {
    const postgres = service(doc, 'postgres')
    expect(postgres.image).toMatch(/^postgres:17(\b|$)/)
    expect(env(postgres).POSTGRES_DB).toBe('tributary')
    expect(healthcheckText(postgres)).toContain('pg_isready')

    const redis = service(doc, 'redis')
    expect(redis.image).toMatch(/^redis:7(\b|$)/)
    expect([redis.command].flat().join(' ')).toMatch(/--appendonly yes\b/)

    const minio = env(service(doc, 'minio'))
    expect(minio.MINIO_ROOT_USER).toMatch(/^\$\{MINIO_ROOT_USER:-.+\}$/)
    expect(minio.MINIO_ROOT_PASSWORD).toMatch(/^\$\{MINIO_ROOT_PASSWORD:-.{8,}\}$/)
    const init = service(doc, 'minio-init')
    expect(init.image).toMatch(/^minio\/mc:/)
    expect(withDefaults([init.entrypoint, init.command].flat().join(' '))).toMatch(
      /mc mb --ignore-existing \w+\/tributary\b/,
    )
  })

  it('keeps device files in the MinIO bucket that minio-init creates, with its credentials', () => {
    const minio = env(service(doc, 'minio'))
    for (const [role, tributary] of tributaryServices(doc)) {
      expect(tributary.depends_on?.['minio-init'], role).toEqual({
        condition: 'service_completed_successfully',
      })
      const vars = env(tributary)
      expect(vars.TRIBUTARY_S3_ENDPOINT, role).toBe('http://minio:9000')
      expect(vars.TRIBUTARY_S3_BUCKET, role).toBe('tributary')
      expect(vars.TRIBUTARY_S3_FORCE_PATH_STYLE, role).toBe('true')
      expect(vars.TRIBUTARY_S3_ACCESS_KEY_ID, role).toBe(minio.MINIO_ROOT_USER)
      expect(vars.TRIBUTARY_S3_SECRET_ACCESS_KEY, role).toBe(minio.MINIO_ROOT_PASSWORD)
    }
  })

  it('keeps the cluster state in the redis service', () => {
    for (const [role, svc] of tributaryServices(doc))
      expect(env(svc).TRIBUTARY_REDIS_URL, role).toBe('redis://redis:6379')
  })

  it('runs every role as its own service, built from the Dockerfile and pointed at the kafka service', () => {
    const tributaries = Object.keys(doc.services).filter((name) => name.startsWith('tributary'))
    expect(tributaries.sort()).toEqual(Object.values(roleServices).sort())
    const advertised = env(service(doc, 'kafka')).KAFKA_ADVERTISED_LISTENERS ?? ''
    for (const [role, tributary] of tributaryServices(doc)) {
      expect(tributary.build, role).toEqual({ context: '.', dockerfile: 'Dockerfile' })
      expect(tributary.image, role).toBe('tributary:local')
      expect(tributary.command, role).toEqual(['start', '--roles', role])
      expect(tributary.restart, role).toBe('unless-stopped')
      const brokers = withDefaults(env(tributary).TRIBUTARY_KAFKA_BROKERS ?? '').split(',')
      expect(brokers.length).toBeGreaterThan(0)
      for (const broker of brokers) {
        expect(broker).toMatch(/^kafka:\d+$/)
        expect(advertised, `${broker} is an advertised Kafka listener`).toContain(`://${broker}`)
      }
      expect(env(tributary).TRIBUTARY_DATA_DIR, role).toBe(dockerEnv.TRIBUTARY_DATA_DIR)
      const check = healthcheckText(tributary)
      expect(check).toMatch(/^CMD node -e .*fetch\(/)
      expect(check).toContain(
        `process.env.TRIBUTARY_MANAGEMENT_PORT || ${variables.managementPort.defaultText}) + '/readyz'`,
      )
    }
  })
})

describe('TRIBUTARY_* settings and ports', () => {
  it('keeps the registry in the postgres service, as the user, database and password it creates', () => {
    const postgres = env(service(doc, 'postgres'))
    const url = env(service(doc, 'tributary-processors')).TRIBUTARY_DATABASE_URL ?? ''
    for (const [role, svc] of tributaryServices(doc)) expect(env(svc).TRIBUTARY_DATABASE_URL, role).toBe(url)
    // Parsed before interpolation: the password must be the postgres service's own expression.
    const m =
      /^postgres:\/\/(?<user>[^:@/]+):(?<password>[^@]+)@(?<host>[^:@/]+):(?<port>\d+)\/(?<db>\w+)$/.exec(url)
    expect(m?.groups, `TRIBUTARY_DATABASE_URL=${url}`).toEqual({
      user: postgres.POSTGRES_USER,
      password: postgres.POSTGRES_PASSWORD,
      host: 'postgres',
      port: '5432',
      db: postgres.POSTGRES_DB,
    })
    expect(postgres.POSTGRES_PASSWORD).toMatch(/^\$\{POSTGRES_PASSWORD:-[^}]+\}$/)
    expect(new URL(withDefaults(url)).hostname).toBe('postgres')
  })

  it('requires the registry key and the admin token from the environment, with no default', () => {
    for (const [role, svc] of tributaryServices(doc)) {
      const settings = env(svc)
      for (const name of Object.keys(required)) {
        expect(known.get(name)?.secret, `${name} is a secret of the schema`).toBe(true)
        expect(settings[name], `${role} ${name}`).toMatch(new RegExp('^\\$\\{' + name + ':\\?[^}]+\\}$'))
        expect(() => interpolate(settings[name] ?? '', {}), name).toThrow(`${name} is required`)
      }
    }
    expect(hardCodedSecrets(doc)).toEqual([])
    // Nothing shaped like a registry key (32 bytes in base64) anywhere in the file.
    expect(text).not.toMatch(/[A-Za-z0-9+/]{43}=/)
  })

  it('notices a secret written into the file, so the check above can fail', () => {
    const broken = structuredClone(doc)
    const settings = { ...service(broken, 'tributary-consumers').environment }
    service(broken, 'tributary-consumers').environment = settings
    settings.TRIBUTARY_REGISTRY_KEY = required.TRIBUTARY_REGISTRY_KEY
    settings.TRIBUTARY_ADMIN_TOKEN = '${TRIBUTARY_ADMIN_TOKEN:-0123456789abcdef}'
    settings.TRIBUTARY_DATABASE_URL = 'postgres://tributary:hunter22@postgres:5432/tributary'
    expect(hardCodedSecrets(broken).sort()).toEqual([
      'TRIBUTARY_ADMIN_TOKEN',
      'TRIBUTARY_DATABASE_URL',
      'TRIBUTARY_REGISTRY_KEY',
    ])
  })

  it('sets only variables the config schema knows, with values it accepts', () => {
    expect(unknownTributaryVariables(doc, dockerEnv)).toEqual([])
    for (const [, svc] of tributaryServices(doc)) {
      const settings = { ...dockerEnv, ...env(svc) }
      for (const [name, value] of Object.entries(settings)) {
        const variable = known.get(name)
        if (variable === undefined) continue
        const parsed = variable.schema.safeParse(withDefaults(value))
        expect(parsed.success, `${name}=${value}: ${parsed.error?.message ?? ''}`).toBe(true)
      }
    }
  })

  it('notices an unknown variable, so the check above can fail', () => {
    const broken = structuredClone(doc)
    service(broken, 'tributary-api').environment = { TRIBUTARY_NOT_A_SETTING: 'x' }
    expect(unknownTributaryVariables(broken, dockerEnv)).toEqual(['TRIBUTARY_NOT_A_SETTING'])
  })

  it('publishes every listener of DESIGN.md on its own port, from the role that opens it, as the Dockerfile exposes', () => {
    const hostPorts = new Set<string>()
    const containerPorts = new Set<string>()
    for (const [role, svc] of tributaryServices(doc)) {
      const published = (svc.ports ?? []).map(parsePort)
      // Each role its own management listener, on a host port of its own; the rest as they are.
      const management = published.filter((p) => p.container === listeners.TRIBUTARY_MANAGEMENT_PORT)
      expect(management.length, `${role} publishes its management listener`).toBe(1)
      const own = published.filter((p) => p.container !== listeners.TRIBUTARY_MANAGEMENT_PORT)
      for (const port of own) expect(port.host, 'host port = container port').toBe(port.container)
      expect(own.map((p) => p.container).sort(), role).toEqual(
        roleListeners[role].map((v) => listeners[v]).sort(),
      )
      for (const port of published) {
        expect(hostPorts.has(port.host ?? ''), `host port ${port.host ?? ''} published once`).toBe(false)
        hostPorts.add(port.host ?? '')
        containerPorts.add(port.container)
      }
    }
    expect([...containerPorts].sort()).toEqual(Object.values(listeners).sort())

    const exposed = dockerfile.stages
      .at(-1)
      ?.filter((i) => /^EXPOSE\s/i.test(i))
      .flatMap((i) => args(i).split(/\s+/))
      .map((p) => (p.includes('/') ? p : `${p}/tcp`))
    expect(exposed?.sort()).toEqual(Object.values(listeners).sort())
  })

  it('publishes the port each *_PORT variable of the schema listens on', () => {
    const settings = env(service(doc, 'tributary-adapters'))
    const ports = Object.values(variables).filter((v) => v.env.endsWith('_PORT'))
    expect(ports.map((v) => v.env)).toContain('TRIBUTARY_MANAGEMENT_PORT')
    for (const variable of ports) {
      const expected = listeners[variable.env]
      expect(
        expected,
        `${variable.env}: add it to DESIGN.md's listeners and docker-compose.yml`,
      ).toBeDefined()
      const value = withDefaults(settings[variable.env] ?? '') || variable.defaultText
      expect(`${value ?? ''}/${expected?.split('/')[1] ?? ''}`, variable.env).toBe(expected)
    }
  })
})

describe('Dockerfile', () => {
  it('has a dependency stage and a runtime stage on the Node release package.json pins', async () => {
    const { stages, globals } = dockerfile
    expect(stages.length).toBeGreaterThanOrEqual(2)
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>
    }
    expect(globals).toContain(`ARG NODE_VERSION=${pkg.devDependencies.node}`)
    for (const stage of stages) expect(stage[0]).toMatch(/^FROM node:\$\{NODE_VERSION\}-slim AS \w+$/)
  })

  it('installs production dependencies with npm ci only', () => {
    const runs = dockerfile.stages.flat().filter((i) => /^RUN\s/i.test(i))
    expect(runs.filter((i) => /\bnpm\s+(install|i|add|update)\b/.test(i))).toEqual([])
    expect(runs.some((i) => /\bnpm ci\b.*--omit=dev/.test(i))).toBe(true)
  })

  it('runs main/cli.ts start as a non-root user with a healthcheck', () => {
    const final = dockerfile.stages.at(-1) ?? []
    const find = (keyword: string) => final.filter((i) => new RegExp(`^${keyword}\\s`, 'i').test(i)).map(args)
    const user = find('USER').at(-1)
    expect(user, 'the final stage sets USER').toBeDefined()
    expect(user).not.toMatch(/^(root|0)(:|$)/)
    expect(find('ENTRYPOINT').map((a) => JSON.parse(a) as unknown)).toEqual([
      ['node', ...NODE_FLAGS, 'main/cli.ts'],
    ])
    expect(find('CMD').map((a) => JSON.parse(a) as unknown)).toEqual([['start']])
    expect(find('HEALTHCHECK').join(' ')).toMatch(/CMD \["node", "-e", ".*fetch\(.*\/livez/)
    expect(find('STOPSIGNAL')).toEqual(['SIGTERM'])
    expect(dockerEnv.NODE_ENV).toBe('production')
    const copied = find('COPY').map((a) => a.split(/\s+/)[0])
    for (const folder of sourceFolders) expect(copied, `copies ${folder}/`).toContain(folder)
    expect(copied).not.toContain('test')
    // The console's static files, built in a stage of their own from the console's sources.
    expect(find('COPY')).toContain('--from=console /app/console/dist ./console/dist')
    const runs = dockerfile.stages.flat().filter((i) => /^RUN\s/i.test(i))
    expect(runs.some((i) => /node scripts\/console-build\.ts --force/.test(i))).toBe(true)
  })

  it('keeps node_modules, data, tests and git out of the build context', async () => {
    const ignored = (await readFile(join(root, '.dockerignore'), 'utf8')).split('\n').map((l) => l.trim())
    for (const entry of ['**/node_modules', 'data', '.git', 'test', '.env']) expect(ignored).toContain(entry)
    for (const folder of sourceFolders) expect(ignored).not.toContain(folder)
    // The console is built inside the image, never taken from the host's build.
    expect(ignored).not.toContain('console')
    expect(ignored).toContain('console/dist')
  })
})

describe('.env.example', () => {
  const readExample = async (): Promise<{ text: string; vars: Record<string, string> }> => {
    const example = await readFile(join(root, '.env.example'), 'utf8')
    const vars: Record<string, string> = {}
    for (const line of example.split('\n')) {
      const m = /^(\w+)=(.*)$/.exec(line)
      if (m) vars[m[1] ?? ''] = m[2] ?? ''
    }
    return { text: example, vars }
  }

  it('names every variable docker-compose.yml reads', async () => {
    const { text: example } = await readExample()
    const referenced = new Set([...text.replace(/\$\$/g, '').matchAll(/\$\{(\w+)/g)].map((m) => m[1] ?? ''))
    expect(referenced.size).toBeGreaterThan(3)
    for (const name of referenced) expect(example, name).toMatch(new RegExp(`^(# )?${name}=`, 'm'))
  })

  it('as copied, makes Compose refuse to start until the secrets are filled in; filled in, it starts', async () => {
    const { vars } = await readExample()
    const copied = await composeConfig(composePath, vars)
    expect(copied.ok).toBe(false)
    expect(copied.ok ? '' : copied.stderr).toMatch(/TRIBUTARY_(REGISTRY_KEY|ADMIN_TOKEN)/)
    expect(await composeConfig(composePath, { ...vars, ...required })).toMatchObject({ ok: true })
  })
})
