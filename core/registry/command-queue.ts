// The CommandQueue port: commands waiting for their device, durable in the registry database
// (PGlite or PostgreSQL), in the order they were routed per device. A delivering instance claims a
// device's next commands for a lease, so that two instances never deliver the same command at once
// and a crashed one's claims lapse; a delivered, expired or failed command is completed (removed).
import type { Command } from '../events/commands.ts'

/** The most commands that wait for one device; more are refused (status failed, queue-full). */
export const MAX_QUEUED_PER_DEVICE = 1000

export interface QueuedCommand extends Command {
  /** Position in the queue: routing order. */
  readonly seq: number
}

export interface CommandQueue {
  /**
   * Adds a routed command. `queued` also when it was there already (a redelivered record);
   * `full` when the device has MAX_QUEUED_PER_DEVICE waiting.
   */
  enqueue(command: Command): Promise<'queued' | 'full'>
  /**
   * Claims the device's oldest unexpired commands for `holder` until `now + leaseMs`, in order —
   * none while another holder's claim on the device is live, so that order holds across instances.
   */
  claim(
    tenant: string,
    device: string,
    holder: string,
    now: Date,
    leaseMs: number,
    limit: number,
  ): Promise<QueuedCommand[]>
  /** Claims expired commands (of any device) that nobody holds, oldest first. */
  claimExpired(holder: string, now: Date, leaseMs: number, limit: number): Promise<QueuedCommand[]>
  /** Gives claimed commands back (they were not delivered). */
  release(holder: string, ids: readonly string[]): Promise<void>
  /** Removes commands that ended (delivered, expired, failed). */
  complete(ids: readonly string[]): Promise<void>
  /** Devices of the tenant with waiting commands (to find those a gateway can take). */
  pendingDevices(tenant: string, limit: number): Promise<string[]>
  /** Waiting commands in all. */
  depth(): Promise<number>
}
