// Where a device's SUBSCRIBE filters and PUBLISHes go, the same on both endpoints (aedes through
// hooks.ts for 3.1.1, v5/endpoint.ts for MQTT 5): a filter to the module that owns it
// (configuration, upload tokens, else commands), a PUBLISH on `config/applied`, `config/req…` or
// `files/…/req/…` to its module, and every other PUBLISH to publish.ts.
import { isCommandFilter } from './command-topics.ts'
import type { CommandChannel } from './commands.ts'
import type { ConfigPush } from './config-push.ts'
import { appliedDeviceOf, configRequestOf } from './config-push.ts'
import type { Connection, Session } from './connection.ts'
import type { FilesToken } from './files-token.ts'
import { ownsFilesFilter, tokenRequestOf } from './files-token.ts'
import type { IncomingPublish, PublishHandler, PublishResult } from './publish.ts'
import type { Refusals } from './refusals.ts'

export interface DeviceRoutesDeps {
  readonly commands: Pick<CommandChannel, 'authorizeSubscribe' | 'subscriptionsChanged'>
  readonly config: Pick<ConfigPush, 'owns' | 'authorizeSubscribe' | 'subscribed' | 'applied' | 'request'>
  readonly files: Pick<FilesToken, 'authorizeSubscribe' | 'request'>
  readonly publish: PublishHandler
  readonly refusals: Refusals
}

export function createDeviceRoutes(deps: DeviceRoutesDeps) {
  const { refusals } = deps

  async function decide(
    conn: Connection,
    session: Session,
    filter: string,
    qos: number,
  ): Promise<0 | 1 | null> {
    const module = deps.config.owns(filter)
      ? { name: 'config', authorize: deps.config.authorizeSubscribe }
      : ownsFilesFilter(filter)
        ? { name: 'files', authorize: deps.files.authorizeSubscribe }
        : undefined
    // Devices read their commands otherwise (docs/commands-mqtt.md); that module logs its refusals.
    if (module === undefined) return deps.commands.authorizeSubscribe(conn, session, filter, qos)
    const granted = await module.authorize(session, filter, qos)
    if (granted === null)
      refusals.message(conn, 'subscribe-refused', `${module.name} filter ${filter.slice(0, 300)}`)
    return granted
  }

  return {
    /** The QoS granted to a filter (at most 1), or null: not the device's to hold. */
    async authorizeSubscribe(
      conn: Connection,
      session: Session,
      filter: string,
      qos: number,
    ): Promise<0 | 1 | null> {
      try {
        return await decide(conn, session, filter, qos)
      } catch (err) {
        refusals.message(conn, 'subscribe-unavailable', `subscription not checked: ${String(err)}`)
        return null
      }
    },

    /** Filters were granted: a command sink attached, configurations observed sent. */
    subscribed(conn: Connection, filters: readonly string[]): void {
      deps.commands.subscriptionsChanged(conn, filters.some(isCommandFilter))
      deps.config.subscribed(conn, filters)
    },

    /** Filters were removed: the command sink goes with the last command filter. */
    unsubscribed(conn: Connection): void {
      deps.commands.subscriptionsChanged(conn, false)
    },

    /** A device's PUBLISH: a configuration report or request, an upload-token request, or an event. */
    publish(conn: Connection, session: Session, packet: IncomingPublish, at: Date): Promise<PublishResult> {
      const { topic, retain, payload } = packet
      // Retained ones go on to publish.ts, which refuses them.
      if (retain) return deps.publish(conn, session, packet, at)
      const reportFor = appliedDeviceOf(topic, session.device)
      if (reportFor !== undefined) return deps.config.applied(conn, session, reportFor, payload)
      const tokenRequest = tokenRequestOf(topic)
      if (tokenRequest !== undefined) return deps.files.request(conn, session, tokenRequest, payload)
      const asked = configRequestOf(topic, session.device)
      if (asked !== undefined)
        return deps.config.request(conn, session, asked.device, asked.requestId, payload)
      return deps.publish(conn, session, packet, at)
    },
  }
}

export type DeviceRoutes = ReturnType<typeof createDeviceRoutes>
