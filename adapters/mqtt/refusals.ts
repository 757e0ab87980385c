// Every refusal is counted by reason and logged with it — never with a secret. Refusals of
// messages and subscriptions are logged at most once a second per connection (with how many were
// left out), so a misbehaving device cannot flood the log; the counter sees every one.
import type { Logger } from '../../core/log.ts'
import type { Connection } from './connection.ts'
import type { MqttMetrics } from './metrics.ts'

const LOG_INTERVAL_MS = 1_000

export function createRefusals(metrics: Pick<MqttMetrics, 'refused'>, log: Logger) {
  const where = (conn: Connection) => ({
    listener: conn.listener,
    remote: conn.remote,
    clientId: conn.clientId,
    ...(conn.session === undefined ? {} : { tenant: conn.session.tenant, device: conn.session.device }),
  })

  return {
    /** A refused CONNECT; `username` identifies who tried (it is not a secret). */
    connect(conn: Connection, reason: string, username: string | undefined): void {
      metrics.refused(reason)
      log.warn({ ...where(conn), username: username?.slice(0, 200), reason }, 'MQTT connection refused')
    },

    /** A refused PUBLISH or SUBSCRIBE, or a connection ended for breaking a limit. */
    message(conn: Connection, reason: string, detail: string): void {
      metrics.refused(reason)
      const now = Date.now()
      if (now - conn.lastRefusalLog < LOG_INTERVAL_MS) {
        conn.suppressedRefusals++
        return
      }
      const suppressed = conn.suppressedRefusals
      conn.lastRefusalLog = now
      conn.suppressedRefusals = 0
      log.warn(
        { ...where(conn), reason, detail, ...(suppressed > 0 ? { suppressed } : {}) },
        'MQTT message refused',
      )
    },

    /** A refused handshake (TLS-PSK, WebSocket upgrade) before there is an MQTT connection. */
    handshake(reason: string, detail: Record<string, unknown>): void {
      metrics.refused(reason)
      log.warn({ ...detail, reason }, 'MQTT handshake refused')
    },
  }
}

export type Refusals = ReturnType<typeof createRefusals>
