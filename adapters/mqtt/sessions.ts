// One live session per device across every instance: a new connection of a device takes the
// session over and the previous connection closes, here or on the instance that held it (the
// cluster state tells that one). Also the tenant's connection slots, and ending connections.
import type { ClusterState, SessionKey, SessionOwner } from '../../core/cluster/cluster.ts'
import type { Logger } from '../../core/log.ts'
import type { Connection, ConnectionTable, Session } from './connection.ts'
import type { ConnectRefusal } from './outcome.ts'

export interface SessionsDeps {
  readonly cluster: ClusterState
  readonly table: ConnectionTable
  readonly maxConnectionsPerTenant: number
  /** Bound on waiting for a taken-over connection to end before the new one goes on. */
  readonly closeTimeoutMs: number
  readonly log: Logger
}

export interface CloseOptions {
  /** Do not publish the device's last will (it did not fail: it was revoked, taken over, or we stop). */
  readonly dropWill?: boolean | undefined
}

const slotScope = (tenant: string): string => `mqtt:${tenant}`
const keyOf = (s: Session): SessionKey => ({ tenant: s.tenant, device: s.device })

export function createSessions(deps: SessionsDeps) {
  const { cluster, table, log } = deps
  const owner = (conn: Connection): SessionOwner => ({ instance: cluster.instance, connection: conn.id })

  /** Ends a connection; resolves once its end was handled. The first reason given is the one reported. */
  function close(conn: Connection, reason: string, options: CloseOptions = {}): Promise<void> {
    conn.closeReason ??= reason
    if (options.dropWill === true) conn.dropWill = true
    if (conn.end !== undefined) conn.end(conn.closeReason)
    else if (conn.client !== undefined) conn.client.close()
    else conn.stream.destroy()
    return conn.finished
  }

  function bounded(done: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, deps.closeTimeoutMs)))
    return Promise.race([done, timeout]).finally(() => clearTimeout(timer))
  }

  /** Gives back what open() took; safe to call more than once. */
  async function release(conn: Connection): Promise<void> {
    const session = conn.session
    if (session === undefined) return
    const jobs: Array<Promise<void>> = []
    if (conn.claimed) {
      conn.claimed = false
      jobs.push(cluster.releaseSession(keyOf(session), owner(conn)))
    }
    if (conn.slot) {
      conn.slot = false
      jobs.push(cluster.releaseSlot(slotScope(session.tenant), conn.id))
    }
    for (const result of await Promise.allSettled(jobs)) {
      if (result.status === 'rejected') {
        log.warn(
          { err: result.reason, tenant: session.tenant, device: session.device },
          'could not release MQTT session state',
        )
      }
    }
  }

  return {
    close,
    release,

    /**
     * Takes a connection slot of the tenant and the device's session for an authenticated
     * connection, closing the connection that held the session on this instance. Throws when the
     * cluster state is unavailable (the caller releases and refuses with 3).
     */
    async open(conn: Connection, session: Session): Promise<ConnectRefusal | undefined> {
      conn.session = session
      if (!(await cluster.acquireSlot(slotScope(session.tenant), conn.id, deps.maxConnectionsPerTenant)))
        return 'connection-limit'
      conn.slot = true
      if (conn.closed) return release(conn).then(() => 'unavailable' as const)
      const previous = await cluster.claimSession(keyOf(session), owner(conn))
      conn.claimed = true
      if (conn.closed) return release(conn).then(() => 'unavailable' as const)
      const local = previous?.instance === cluster.instance ? table.get(previous.connection) : undefined
      const holder = table.byDevice(session.tenant, session.device)
      table.setDevice(conn)
      for (const old of new Set([local, holder])) {
        if (old !== undefined && old !== conn) {
          log.info(
            { tenant: session.tenant, device: session.device, previous: old.id, by: conn.id },
            'MQTT session taken over',
          )
          await bounded(close(old, 'takeover', { dropWill: true }))
        }
      }
      return undefined
    },

    /** Closes this instance's connection when another instance took its session over. */
    listen(): () => void {
      return cluster.onTakeover((notice) => {
        const conn = table.get(notice.previous.connection)
        const session = conn?.session
        if (conn === undefined || session?.tenant !== notice.tenant || session.device !== notice.device)
          return
        log.info(
          { tenant: notice.tenant, device: notice.device, by: notice.by },
          'MQTT session taken over by another instance',
        )
        void close(conn, 'takeover', { dropWill: true })
      })
    },
  }
}

export type Sessions = ReturnType<typeof createSessions>
