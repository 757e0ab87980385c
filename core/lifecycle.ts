// Ordered start and reverse-ordered, deadline-bounded stop of a process's components.
import type { Logger } from './log.ts'

export interface Component {
  readonly name: string
  start(): Promise<void>
  /** Drains in-flight work and releases resources. */
  stop(): Promise<void>
}

export interface Lifecycle {
  /** Starts the component now and remembers it for stopAll(). */
  start(component: Component): Promise<void>
  /** Stops started components in reverse order; each gets what is left of the deadline. */
  stopAll(deadlineMs: number): Promise<{ timedOut: string[]; failed: string[] }>
  readonly stopping: boolean
}

export function createLifecycle(log: Logger): Lifecycle {
  const started: Component[] = []
  let stopping = false
  return {
    get stopping() {
      return stopping
    },
    async start(component) {
      const begin = performance.now()
      await component.start()
      started.push(component)
      log.debug({ component: component.name, ms: Math.round(performance.now() - begin) }, 'started')
    },
    async stopAll(deadlineMs) {
      stopping = true
      const deadline = Date.now() + deadlineMs
      const timedOut: string[] = []
      const failed: string[] = []
      for (const component of started.splice(0).reverse()) {
        const left = Math.max(0, deadline - Date.now())
        let timer: NodeJS.Timeout | undefined
        const outcome = await Promise.race([
          component.stop().then(
            () => 'stopped' as const,
            (err: unknown) => {
              log.error({ err, component: component.name }, 'stop failed')
              return 'failed' as const
            },
          ),
          new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), left))),
        ])
        clearTimeout(timer)
        if (outcome === 'timeout') {
          timedOut.push(component.name)
          log.warn({ component: component.name }, 'stop deadline passed; moving on')
        } else if (outcome === 'failed') failed.push(component.name)
        else log.debug({ component: component.name }, 'stopped')
      }
      return { timedOut, failed }
    },
  }
}
