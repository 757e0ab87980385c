// The aedes instance and everything this adapter relies on that aedes 1.x does not type: kept in
// this one module so that moving to aedes 2 (MQTT 5) touches one place (docs/mqtt.md).
import { Aedes } from 'aedes'
import type { AedesOptions, Client } from 'aedes'
import type { MqttConfig } from './config.ts'

export type Hooks = Required<
  Pick<
    AedesOptions,
    'preConnect' | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe' | 'authorizeForward'
  >
>

/** Packets a client may send before its CONNECT is answered (aedes's default is 42). */
const QUEUE_LIMIT = 100

export async function createBroker(config: MqttConfig, hooks: Hooks): Promise<Aedes> {
  return Aedes.createBroker({
    ...hooks,
    connectTimeout: config.connectTimeoutMs,
    drainTimeout: config.drainTimeoutMs,
    queueLimit: QUEUE_LIMIT,
    // MQTT 3.1 limited client ids to 23 characters; ours are replaced by `<tenant>/<device>` anyway.
    maxClientsIdLength: 256,
  })
}

/** Whether the client ended with a DISCONNECT packet (aedes keeps it in `_disconnected`). */
export function sentDisconnect(client: Client | undefined): boolean {
  return (client as { _disconnected?: boolean } | undefined)?._disconnected === true
}

/**
 * Whether aedes already holds this QoS 2 message (a retransmission before PUBREL): its incoming
 * store resolves when it has the packet id and rejects when not (aedes-persistence API).
 */
export async function holdsQos2(broker: Aedes, client: Client, messageId: number): Promise<boolean> {
  const persistence = (broker as unknown as { persistence?: { incomingGetPacket?: unknown } }).persistence
  const get = persistence?.incomingGetPacket
  if (typeof get !== 'function') return false
  try {
    await (get as (c: Client, p: { messageId: number }) => Promise<unknown>).call(persistence, client, {
      messageId,
    })
    return true
  } catch {
    return false
  }
}

/** Sets the id aedes registers the client under (the same id means aedes's own takeover, too). */
export function setClientId(client: Client, id: string): void {
  ;(client as { id: string }).id = id
}

/** The topic filters aedes holds for a client, with their granted QoS (aedes's `client.subscriptions`). */
export function subscriptionsOf(client: Client): Array<[string, number]> {
  const subscriptions = (client as { subscriptions?: Record<string, { qos?: number } | undefined> })
    .subscriptions
  if (subscriptions === undefined) return []
  return Object.entries(subscriptions).map(([filter, sub]) => [filter, sub?.qos ?? 0])
}

/** Whether a write to the client failed (aedes sets `errored` before it calls the write's callback). */
export function writeFailed(client: Client): boolean {
  return (client as { errored?: boolean }).errored === true || client.closed
}
