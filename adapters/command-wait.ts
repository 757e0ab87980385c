// One long poll's command, for every adapter whose devices wait for commands on a request (HTTP
// `?ct=` and `GET /v1/command`, CoAP `?ct=`): a one-shot sink attached for the device while the
// request waits. The first command delivered ends the wait and is handed to the adapter, which
// settles the delivery once it knows whether the answer reached the device; a second one finds the
// sink used (`gone`, it stays queued). The wait ends without a command when its time is up or the
// client goes away.
import type { Protocol } from '../core/events/build.ts'
import type { CommandOutlet, CommandSink, DeliveryResult, DeviceCommand } from '../commands/outlet.ts'

export const DELIVERED: DeliveryResult = { kind: 'delivered' }
export const GONE: DeliveryResult = { kind: 'gone' }

/** A command taken off the sink; the dispatcher's deliver resolves with what settle reports. */
export interface Handover {
  readonly command: DeviceCommand
  /** The first call counts; later ones are ignored. */
  settle(result: DeliveryResult): void
}

export interface CommandWaitOptions {
  readonly commands: Pick<CommandOutlet, 'attach'>
  readonly protocol: Protocol
  readonly tenant: string
  readonly device: string
  /** How long to wait for a command. */
  readonly waitMs: number
  /** Aborted when the client goes away: the wait ends at once and the sink is detached. */
  readonly signal?: AbortSignal | undefined
  /** A handover not settled within this long counts as gone (STYLE.md 12: the dispatcher waits on it). */
  readonly settleMs: number
}

/** Resolves with the first command delivered for the device, or undefined when none came in time. */
export function waitForCommand(options: CommandWaitOptions): Promise<Handover | undefined> {
  const { signal } = options
  if (signal?.aborted === true) return Promise.resolve(undefined)
  return new Promise((resolve) => {
    let used = false
    // Set once attach returns; a release before that (a deliver during attach) detaches right after.
    const attachment: { detach?: () => void; detached: boolean } = { detached: false }
    const release = (): void => {
      if (attachment.detached) return
      attachment.detached = true
      attachment.detach?.()
    }
    const stopWaiting = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onEnd)
    }
    function onEnd(): void {
      if (used) return
      used = true
      stopWaiting()
      release()
      resolve(undefined)
    }
    const sink: CommandSink = {
      protocol: options.protocol,
      deliver(command) {
        if (used || signal?.aborted === true) return Promise.resolve(GONE)
        used = true
        stopWaiting()
        return new Promise<DeliveryResult>((settled) => {
          let done = false
          const bound = setTimeout(() => settle(GONE), options.settleMs)
          function settle(result: DeliveryResult): void {
            if (done) return
            done = true
            clearTimeout(bound)
            // Detached before deliver returns: the dispatcher does not offer this sink another one.
            release()
            settled(result)
          }
          resolve({ command, settle })
        })
      },
    }
    const timer = setTimeout(onEnd, options.waitMs)
    signal?.addEventListener('abort', onEnd, { once: true })
    const detach = options.commands.attach(options.tenant, options.device, sink)
    attachment.detach = detach
    if (attachment.detached) detach()
  })
}
