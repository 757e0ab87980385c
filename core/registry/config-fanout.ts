// Works off the config.changed fan-out (sql/config-fanout.ts) in the background, so that a write
// touching many devices (the tenant default, an application version) answers at once: one page of
// devices per transaction, each page's events and progress committed together, and the event
// outbox relay nudged to publish them. Every process runs one; an advisory lock lets one page run
// at a time across them.
import { createBackoff, createWakeup, sleep } from '../bus/backoff.ts'
import { buildConfigChangedEvent } from '../events/config.ts'
import type { Component } from '../lifecycle.ts'
import type { Logger } from '../log.ts'
import type { RegistryStore } from './store.ts'

/** Devices per fan-out transaction: short transactions, and a tenant of 100,000 devices in 100 pages. */
export const CONFIG_FANOUT_PAGE = 1_000

export interface ConfigFanoutOptions {
  readonly store: Pick<RegistryStore, 'configFanoutPage'>
  readonly log: Logger
  /** Called after a page announced changes (the event outbox relay's nudge). */
  readonly announced: () => void
  readonly pageSize?: number | undefined
  /** How often the jobs are looked for when nobody nudges (writes of other processes). */
  readonly pollMs?: number | undefined
}

export interface ConfigFanout extends Component {
  /** Look for work now: called after every registry write of this process. */
  nudge(): void
}

export function createConfigFanout(options: ConfigFanoutOptions): ConfigFanout {
  const { store, log } = options
  const pageSize = options.pageSize ?? CONFIG_FANOUT_PAGE
  const pollMs = options.pollMs ?? 500
  const backoff = createBackoff(100)
  const stopped = new AbortController()
  const wake = createWakeup()
  let nudged = false
  let running: Promise<void> | undefined

  async function loop(): Promise<void> {
    while (!stopped.signal.aborted) {
      nudged = false
      try {
        const page = await store.configFanoutPage(pageSize, buildConfigChangedEvent)
        backoff.reset()
        if (page.announced > 0) options.announced()
        if (page.pending) continue
        if (!nudged) await sleep(pollMs, AbortSignal.any([wake.signal, stopped.signal]))
      } catch (err) {
        // The page rolled back: its job stays where it was for the next try (or another process).
        if (stopped.signal.aborted) return
        log.error({ err }, 'config fan-out failed; retrying')
        await sleep(backoff.next(), stopped.signal)
      }
    }
  }

  return {
    name: 'config-fanout',
    async start() {
      running ??= loop()
    },
    async stop() {
      stopped.abort()
      await running
    },
    nudge() {
      nudged = true
      wake.fire()
    },
  }
}
