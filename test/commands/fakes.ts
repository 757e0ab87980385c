// Doubles at the command ports for unit tests: an in-memory CommandQueue with the contract's
// claim rules (the real ones run the contract suite), a status writer that records, and sinks.
import type { DeliveryResult, CommandSink, DeviceCommand } from '../../commands/outlet.ts'
import type { StatusWriter } from '../../commands/status.ts'
import type { Protocol } from '../../core/events/build.ts'
import type { Command, StatusInput } from '../../core/events/commands.ts'
import type { CommandQueue, QueuedCommand } from '../../core/registry/command-queue.ts'

interface Row {
  command: QueuedCommand
  holder?: string | undefined
  until?: number | undefined
}

export function fakeQueue(): CommandQueue & { rows: Row[] } {
  const rows: Row[] = []
  let seq = 0
  const live = (r: Row, at: number) => r.until !== undefined && r.until >= at
  return {
    rows,
    async enqueue(command: Command) {
      if (!rows.some((r) => r.command.id === command.id)) rows.push({ command: { ...command, seq: ++seq } })
      return 'queued'
    },
    async claim(tenant, device, holder, now, leaseMs, limit) {
      const at = now.getTime()
      const mine = rows.filter((r) => r.command.tenant === tenant && r.command.device === device)
      if (mine.some((r) => live(r, at) && r.holder !== holder)) return []
      const taken = mine
        .filter((r) => r.command.expiresAt.getTime() > at && (!live(r, at) || r.holder === holder))
        .slice(0, limit)
      for (const r of taken) Object.assign(r, { holder, until: at + leaseMs })
      return taken.map((r) => r.command)
    },
    async claimExpired(holder, now, leaseMs, limit) {
      const at = now.getTime()
      const taken = rows.filter((r) => r.command.expiresAt.getTime() <= at && !live(r, at)).slice(0, limit)
      for (const r of taken) Object.assign(r, { holder, until: at + leaseMs })
      return taken.map((r) => r.command)
    },
    async release(holder, ids) {
      for (const r of rows)
        if (ids.includes(r.command.id) && r.holder === holder)
          Object.assign(r, { holder: undefined, until: undefined })
    },
    async complete(ids) {
      for (let i = rows.length - 1; i >= 0; i--) if (ids.includes(rows[i]!.command.id)) rows.splice(i, 1)
    },
    async pendingDevices(tenant) {
      return [...new Set(rows.filter((r) => r.command.tenant === tenant).map((r) => r.command.device))]
    },
    async depth() {
      return rows.length
    },
  }
}

export function recordingStatuses(): StatusWriter & { seen: StatusInput[]; of: (id: string) => string[] } {
  const seen: StatusInput[] = []
  return {
    seen,
    of: (id) =>
      seen
        .filter((s) => s.command.id === id)
        .map((s) => (s.reason === undefined ? s.status : `${s.status}:${s.reason}`)),
    async write(...inputs) {
      seen.push(...inputs)
    },
    async record(...inputs) {
      seen.push(...inputs)
    },
  }
}

/** A sink that answers with `results` in turn (then `delivered`) and records what it got. */
export function recordingSink(
  protocol: Protocol = 'mqtt',
  results: DeliveryResult[] = [],
): CommandSink & { got: DeviceCommand[] } {
  const got: DeviceCommand[] = []
  return {
    protocol,
    got,
    async deliver(command) {
      got.push(command)
      return results.shift() ?? { kind: 'delivered' }
    },
  }
}

export function command(over: Partial<Command> = {}): Command {
  const time = over.time ?? new Date('2026-06-01T12:00:00.000Z')
  return {
    id: `c-${Math.random().toString(36).slice(2)}`,
    tenant: 'acme',
    device: 'd1',
    name: 'reboot',
    payload: Buffer.from('go'),
    time,
    expiresAt: new Date(time.getTime() + 60_000),
    origin: 'api',
    ...over,
  }
}
