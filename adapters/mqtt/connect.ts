// A CONNECT, from credentials to CONNACK: authenticate, check the last will, take the tenant's
// connection slot and the device's session (closing the one it replaces), and make the connected
// event durable before the device may send anything, so that it precedes the device's data.
import type { Ingest } from '../adapter.ts'
import { failureOutcome } from '../adapter.ts'
import type { LastSeen } from '../device-limits.ts'
import type { Logger } from '../../core/log.ts'
import type { ConnectAuthenticator } from './auth.ts'
import type { Connection } from './connection.ts'
import { routeTopic } from './map.ts'
import type { MqttMetrics } from './metrics.ts'
import type { ConnectRefusal } from './outcome.ts'
import type { Refusals } from './refusals.ts'
import type { Sessions } from './sessions.ts'

export interface ConnectDeps {
  readonly authenticator: ConnectAuthenticator
  readonly sessions: Sessions
  readonly ingest: Pick<Ingest, 'connection' | 'unavailable'>
  readonly refusals: Refusals
  readonly metrics: MqttMetrics
  /** The device's last-seen time, recorded on connect. */
  readonly lastSeen: Pick<LastSeen, 'seen'>
  readonly maxPayloadBytes: number
  readonly stopping: () => boolean
  readonly log: Logger
}

/** A will is a PUBLISH the broker sends later for the device: it must pass the same checks now. */
function willProblem(will: Connection['will'], maxPayloadBytes: number): string | undefined {
  if (will === undefined) return undefined
  if (will.retain) return 'retained will'
  if (will.payload.length > maxPayloadBytes) return 'will payload too large'
  const route = routeTopic(will.topic)
  return route.ok ? undefined : `will topic: ${route.detail}`
}

export function createConnectHandler(deps: ConnectDeps) {
  const { sessions, log } = deps

  return async function connect(
    conn: Connection,
    username: string | undefined,
    password: Buffer | undefined,
  ): Promise<ConnectRefusal | undefined> {
    const refuse = (reason: ConnectRefusal): ConnectRefusal => {
      // A client that left while we were deciding was not refused.
      if (!conn.closed) deps.refusals.connect(conn, reason, username)
      return reason
    }
    if (deps.stopping()) return refuse('shutting-down')
    // The connected event could not be written: refuse now, before authenticating, and before the
    // session is taken from a connection of the same device that is still up.
    if (deps.ingest.unavailable() !== undefined) return refuse('unavailable')
    let decision
    try {
      decision = await deps.authenticator.authenticate(conn, username, password)
    } catch (err) {
      // MQTT 3.1.1 has one code for "not now" and for a fault of ours alike: 3.
      if (failureOutcome(err) !== undefined)
        log.warn({ err }, 'cannot authenticate now; refusing with server unavailable')
      else log.error({ err }, 'device authentication failed; refusing with server unavailable')
      return refuse('unavailable')
    }
    if (!decision.ok) return refuse(decision.reason)
    const session = decision.session
    const problem = willProblem(conn.will, deps.maxPayloadBytes)
    if (problem !== undefined) {
      log.debug({ problem }, 'will refused')
      return refuse('will-refused')
    }
    try {
      const refusal = await sessions.open(conn, session)
      if (refusal !== undefined) return refuse(refusal)
    } catch (err) {
      log.warn({ err }, 'cluster state unavailable; refusing with server unavailable')
      await sessions.release(conn)
      return refuse('unavailable')
    }
    const { tenant, device } = session
    const outcome = await deps.ingest.connection({
      tenant,
      device,
      protocol: 'mqtt',
      status: 'connected',
      listener: conn.listener,
      remote: conn.remote,
    })
    if (outcome.kind !== 'accepted') {
      log.warn(
        { tenant, device, detail: outcome.detail },
        'connected event not written; refusing the connection',
      )
      await sessions.release(conn)
      return refuse('unavailable')
    }
    conn.announced = true
    deps.metrics.connected(conn.listener, tenant)
    deps.lastSeen.seen(tenant, device)
    log.info(
      {
        tenant,
        device,
        listener: conn.listener,
        remote: conn.remote,
        method: session.method,
        clientId: conn.clientId,
      },
      'device connected',
    )
    return undefined
  }
}

export type ConnectHandler = ReturnType<typeof createConnectHandler>
