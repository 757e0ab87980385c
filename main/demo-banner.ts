// The banner `tributary start --demo` prints: the demo's identities and tokens, where the listeners
// are, and copy-paste commands to send events (MQTT, HTTP, CoAP) and to receive them (the CLI's
// live tail, application MQTT, a webhook, Kafka).
import { DEMO_DEVICE, DEMO_PASSWORD, DEMO_TENANT } from './demo.ts'
import type { PortMove } from './ports.ts'
import { moveLine } from './ports.ts'

export interface DemoFacts {
  readonly apiToken: string
  /** The admin token the demo set; undefined when the user set TRIBUTARY_ADMIN_TOKEN. */
  readonly adminToken: string | undefined
  /** Where the tokens are kept. */
  readonly file: string
  readonly allowsPrivateWebhooks: boolean
  /** Bound ports; the MQTT ones (`mqtt`, `mqtts`, `mqttWs`) when those listeners run. */
  readonly ports: { readonly management: number; readonly api: number; readonly [listener: string]: number }
  readonly moves: ReadonlyArray<PortMove & { readonly bound: number }>
  readonly kafkaBrokers: readonly string[] | undefined
  readonly topicPrefix: string
}

/** Copy-paste commands for what runs. */
export function demoInstructions(facts: DemoFacts): string {
  const api = `http://127.0.0.1:${facts.ports.api}`
  const exported = facts.adminToken ?? facts.apiToken
  const lines = [
    '',
    'Tributary demo is running.',
    `  tenant:   ${DEMO_TENANT}`,
    `  device:   ${DEMO_DEVICE} (username ${DEMO_DEVICE}@${DEMO_TENANT}, password ${DEMO_PASSWORD})`,
    facts.adminToken === undefined
      ? '  admin token: the TRIBUTARY_ADMIN_TOKEN you set'
      : `  admin token (every tenant): ${facts.adminToken}`,
    `  API token (admin on tenant ${DEMO_TENANT}): ${facts.apiToken}`,
    `  (kept in ${facts.file}, readable by you only: the same after a restart)`,
  ]
  for (const move of facts.moves) lines.push(`  ${moveLine(move, move.bound)}`)
  if (facts.allowsPrivateWebhooks) {
    lines.push(
      '  webhooks may target 127.0.0.1 and private addresses: the demo set TRIBUTARY_WEBHOOK_ALLOW_PRIVATE=true (never the default)',
    )
  }
  lines.push(
    '',
    'In another terminal:',
    `  export TRIBUTARY_API_URL=${api} TRIBUTARY_API_TOKEN=${exported}`,
    `  curl -s http://127.0.0.1:${facts.ports.management}/health`,
    `  npx tributary device list --tenant ${DEMO_TENANT}`,
  )
  if (facts.adminToken !== undefined) lines.push('  npx tributary tenant create acme')
  lines.push(`  open ${api}/api/v1/docs   # the API reference`)
  lines.push(`  open ${api}/console       # the web console: sign in with a token above`)
  lines.push(...deviceInstructions(facts), ...receiveInstructions(facts, api), '')
  return lines.join('\n')
}

/** Device-side commands for the listeners that run (MQTT, HTTP, CoAP). */
function deviceInstructions(facts: DemoFacts): string[] {
  const { mqtt, mqtts, mqttWs, http, coap } = facts.ports
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
  return lines
}

/** How an application receives the events: the CLI's tail, application MQTT, a webhook, Kafka. */
function receiveInstructions(facts: DemoFacts, api: string): string[] {
  const lines = [
    '',
    'Watch the events arrive (processed, as CloudEvents):',
    `  npx tributary events tail --tenant ${DEMO_TENANT}                 # add --from earliest for the past ones, --json for whole events`,
  ]
  const { appMqtt } = facts.ports
  if (appMqtt !== undefined) {
    lines.push(
      `  mosquitto_sub -h 127.0.0.1 -p ${appMqtt} -V mqttv311 -u ${DEMO_TENANT} -P ${facts.apiToken} -t 'app/${DEMO_TENANT}/#' -v`,
    )
  }
  lines.push(
    '',
    'Or have them POSTed to a webhook (here a receiver of yours on 127.0.0.1:9000):',
    `  curl -s -H "Authorization: Bearer $TRIBUTARY_API_TOKEN" -H 'content-type: application/json' -d '{"url":"http://127.0.0.1:9000/events","filter":{"types":["io.tributary.telemetry.v1"]}}' ${api}/api/v1/tenants/${DEMO_TENANT}/subscriptions`,
  )
  if (facts.kafkaBrokers !== undefined) {
    lines.push(
      '',
      'Or read the Kafka topic, as a data engineer would:',
      `  kcat -b ${facts.kafkaBrokers.join(',')} -C -t ${facts.topicPrefix}.events.${DEMO_TENANT} -f '%k %h %s\\n'   # key, ce_ headers, payload`,
    )
  }
  return lines
}
