// Writes command status events (io.tributary.command.status.v1) to the ingress topic, where the
// processors pass them on to the tenant's topic, and tells an API call waiting on the command's
// request id (see waiters.ts) when the command expired or failed, so it need not wait it out.
import type { EventBus } from '../core/bus/bus.ts'
import type { ClusterState } from '../core/cluster/cluster.ts'
import type { StatusInput } from '../core/events/commands.ts'
import { buildStatusEvent } from '../core/events/commands.ts'
import { encodeBinary } from '../core/events/kafka-codec.ts'
import type { Logger } from '../core/log.ts'
import type { CommandMetrics } from './metrics.ts'
import { notifyWaiter } from './waiters.ts'

export interface StatusWriter {
  /** Resolves once the events are durable (one publish); throws when the bus cannot take them. */
  write(...inputs: StatusInput[]): Promise<void>
  /** write(), but a failure is logged and counted instead of thrown (the commands have ended anyway). */
  record(...inputs: StatusInput[]): Promise<void>
}

export interface StatusDeps {
  readonly bus: Pick<EventBus, 'publish'>
  readonly topic: string
  readonly cluster: Pick<ClusterState, 'getValue' | 'send'>
  readonly metrics: CommandMetrics
  readonly log: Logger
}

export function createStatusWriter(deps: StatusDeps): StatusWriter {
  const { bus, topic, cluster, metrics, log } = deps

  async function write(...inputs: StatusInput[]): Promise<void> {
    if (inputs.length === 0) return
    await bus.publish(
      inputs.map((input) => {
        const { key, value, headers } = encodeBinary(buildStatusEvent(input))
        return { topic, key: key?.toString(), value, headers }
      }),
    )
    for (const input of inputs) {
      metrics.status(input.status, input.protocol, input.reason)
      const { command } = input
      if (command.requestId !== undefined && (input.status === 'expired' || input.status === 'failed')) {
        await notifyWaiter(cluster, command.tenant, command.requestId, {
          kind: 'ended',
          tenant: command.tenant,
          device: command.device,
          status: input.status,
          reason: input.reason ?? '',
        }).catch((err: unknown) => log.debug({ err }, 'could not tell a waiting request'))
      }
    }
  }

  return {
    write,
    async record(...inputs) {
      try {
        await write(...inputs)
      } catch (err) {
        metrics.statusLost(inputs.length)
        for (const { command, status } of inputs) {
          log.error(
            { err, tenant: command.tenant, device: command.device, command: command.id, status },
            'command status event not written',
          )
        }
      }
    },
  }
}
