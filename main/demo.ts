// `tributary start --demo`: moves off taken default ports, seeds tenant `demo` with device
// `device1` (password `secret`) and an API token, and prints commands to try it with (API, MQTT).
import { createSocket } from 'node:dgram'
import { createServer } from 'node:net'
import { isTributaryError } from '../core/errors.ts'
import type { RegistryService } from '../core/registry/service.ts'

export const DEMO_TENANT = 'demo'
export const DEMO_DEVICE = 'device1'
export const DEMO_PASSWORD = 'secret'
const DEMO_TOKEN_NAME = 'demo'

/** Listener ports whose defaults the demo moves to a free port when they are taken. */
const DEMO_PORTS: Record<string, number> = {
  TRIBUTARY_MANAGEMENT_PORT: 9400,
  TRIBUTARY_API_PORT: 8080,
  // Mosquitto holds 1883 on many development machines.
  TRIBUTARY_MQTT_PORT: 1883,
  TRIBUTARY_MQTTS_PORT: 8883,
  TRIBUTARY_MQTT_WS_PORT: 8083,
  TRIBUTARY_HTTP_PORT: 8088,
  TRIBUTARY_APP_MQTT_PORT: 1884,
}

/** UDP listener ports, checked with a UDP bind. */
const DEMO_UDP_PORTS: Record<string, number> = {
  TRIBUTARY_COAP_PORT: 5683,
}

function isFreeUdp(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket(host.includes(':') ? 'udp6' : 'udp4')
    socket.once('error', () => {
      socket.close()
      resolve(false)
    })
    socket.bind(port, host, () => socket.close(() => resolve(true)))
  })
}

function isFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, host, () => server.close(() => resolve(true)))
  })
}

/**
 * The environment for a demo run: every listener port the caller did not set and whose default is
 * taken becomes 0 (any free port); the bound ports are printed once the process runs.
 */
export async function demoEnvironment(
  env: Readonly<Record<string, string | undefined>>,
): Promise<{ env: Record<string, string | undefined>; moved: string[] }> {
  const out: Record<string, string | undefined> = { ...env }
  const moved: string[] = []
  const host = env['TRIBUTARY_HOST'] ?? '0.0.0.0'
  const checks = [
    ...Object.entries(DEMO_PORTS).map(([v, p]) => [v, () => isFree(host, p)] as const),
    ...Object.entries(DEMO_UDP_PORTS).map(([v, p]) => [v, () => isFreeUdp(host, p)] as const),
  ]
  for (const [variable, free] of checks) {
    if (env[variable] !== undefined && env[variable] !== '') continue
    if (!(await free())) {
      out[variable] = '0'
      moved.push(variable)
    }
  }
  return { env: out, moved }
}

async function ignoreConflict<T>(create: () => Promise<T>): Promise<void> {
  try {
    await create()
  } catch (err) {
    if (!isTributaryError(err, 'REGISTRY_CONFLICT')) throw err
  }
}

/**
 * Creates what the demo needs, or leaves it as it is when it exists. The API token's secret is
 * shown only when it is created, so each run replaces the previous demo token with a new one.
 */
export async function seedDemo(registry: RegistryService): Promise<{ apiToken: string }> {
  // `secret` is shorter than the default password policy allows; the demo tenant relaxes it.
  const settings = { passwordMinLength: DEMO_PASSWORD.length }
  await ignoreConflict(() => registry.createTenant(DEMO_TENANT, { enabled: true, settings }))
  const tenant = await registry.getTenant(DEMO_TENANT)
  if (tenant.settings['passwordMinLength'] !== settings.passwordMinLength) {
    await registry.updateTenant(DEMO_TENANT, { settings: { ...tenant.settings, ...settings } })
  }
  await ignoreConflict(() =>
    registry.createDevice(DEMO_TENANT, DEMO_DEVICE, { enabled: true, labels: { demo: 'true' } }),
  )
  await registry.setPassword(DEMO_TENANT, DEMO_DEVICE, DEMO_PASSWORD)
  let after: string | undefined
  do {
    const page = await registry.listApiTokens(DEMO_TENANT, { limit: 1000, after })
    for (const token of page.items) {
      if (token.name === DEMO_TOKEN_NAME) await registry.deleteApiToken(DEMO_TENANT, token.id)
    }
    after = page.next ?? undefined
  } while (after !== undefined)
  const created = await registry.createApiToken(DEMO_TENANT, { name: DEMO_TOKEN_NAME, role: 'admin' })
  return { apiToken: created.secret }
}

export interface DemoFacts {
  readonly apiToken: string
  /** Bound ports; the MQTT ones (`mqtt`, `mqtts`, `mqttWs`) when those listeners run. */
  readonly ports: { readonly management: number; readonly api: number; readonly [listener: string]: number }
  readonly kafkaBrokers: readonly string[] | undefined
  readonly topicPrefix: string
}

/** Copy-paste commands for what runs today. */
export function demoInstructions(facts: DemoFacts): string {
  const api = `http://127.0.0.1:${facts.ports.api}`
  const lines = [
    '',
    'Tributary demo is running.',
    `  tenant:   ${DEMO_TENANT}`,
    `  device:   ${DEMO_DEVICE} (username ${DEMO_DEVICE}@${DEMO_TENANT}, password ${DEMO_PASSWORD})`,
    `  API token (admin on tenant ${DEMO_TENANT}, shown once):`,
    `    export TRIBUTARY_API_URL=${api} TRIBUTARY_API_TOKEN=${facts.apiToken}`,
    '',
    'Try:',
    `  curl -s http://127.0.0.1:${facts.ports.management}/health`,
    `  curl -s -H "Authorization: Bearer $TRIBUTARY_API_TOKEN" ${api}/api/v1/tenants/${DEMO_TENANT}/devices`,
    `  npx tributary device create --tenant ${DEMO_TENANT} device2 --password s3cret-pass`,
    `  npx tributary device list --tenant ${DEMO_TENANT}`,
    `  open ${api}/api/v1/docs   # the API reference`,
  ]
  if (facts.kafkaBrokers !== undefined) {
    lines.push(
      `  kcat -b ${facts.kafkaBrokers.join(',')} -C -t ${facts.topicPrefix}.registry -f '%k %h\\n'   # registry changes`,
    )
  }
  lines.push(...deviceInstructions(facts))
  lines.push('')
  return lines.join('\n')
}

/** Device-side commands for the listeners that run (MQTT, HTTP, CoAP), and where their events land. */
function deviceInstructions(facts: DemoFacts): string[] {
  const { mqtt, mqtts, mqttWs } = facts.ports
  const login = `-u ${DEMO_DEVICE}@${DEMO_TENANT} -P ${DEMO_PASSWORD}`
  const lines: string[] = []
  if (mqtt !== undefined || mqtts !== undefined || mqttWs !== undefined) {
    lines.push(
      '',
      'Send telemetry as the demo device over MQTT (QoS 1 is acknowledged once the event is stored):',
    )
  }
  if (mqtt !== undefined) {
    lines.push(
      `  mosquitto_pub -h 127.0.0.1 -p ${mqtt} ${login} -q 1 -t sensors/temperature -m '{"celsius":21.5}'`,
    )
    lines.push(
      `  mosquitto_pub -h 127.0.0.1 -p ${mqtt} ${login} -q 1 -t gw/${DEMO_DEVICE}/status -m ok   # the gw/<device>/ form, as a gateway for itself`,
    )
  }
  if (mqtts !== undefined) {
    lines.push(
      `  mosquitto_pub -h 127.0.0.1 -p ${mqtts} --cafile <your server CA> ${login} -q 1 -t secure/ch -m hi`,
    )
  }
  if (mqttWs !== undefined)
    lines.push(
      `  MQTT over WebSocket: ws://127.0.0.1:${mqttWs}/mqtt (subprotocol mqtt), same username and password`,
    )
  const { http, coap } = facts.ports
  if (http !== undefined || coap !== undefined) lines.push('', 'Or over HTTP and CoAP:')
  if (http !== undefined) {
    lines.push(
      `  curl -si -u ${DEMO_DEVICE}@${DEMO_TENANT}:${DEMO_PASSWORD} -H 'content-type: application/json' -d '{"celsius":21.5}' http://127.0.0.1:${http}/v1/sensors/temperature`,
    )
  }
  if (coap !== undefined) {
    const basic = Buffer.from(`${DEMO_DEVICE}@${DEMO_TENANT}:${DEMO_PASSWORD}`).toString('base64')
    lines.push(
      `  coap-client-notls -m post -O 4209,'Basic ${basic}' -t json -e '{"celsius":21.5}' coap://127.0.0.1:${coap}/v1/sensors/temperature`,
    )
  }
  lines.push('', 'Watch what arrives on the ingress topic:')
  if (facts.kafkaBrokers !== undefined) {
    lines.push(
      `  kcat -b ${facts.kafkaBrokers.join(',')} -C -t ${facts.topicPrefix}.ingress -f '%k %h %s\\n'   # key, ce_ headers, payload`,
    )
  } else {
    lines.push(
      '  (the embedded bus keeps events in the data dir, readable by this process only: start with',
      '   TRIBUTARY_KAFKA_BROKERS=host:9092 to tap them with kcat, as a data engineer would)',
    )
  }
  return lines
}
