// A minimal client of a Node process's inspector (started with --inspect=127.0.0.1:0): runs a full
// garbage collection in it and reads its process.memoryUsage(), so a memory figure can be split
// into live data and garbage not yet collected. Bench-only: the inspector is never on in production.
import { BenchError, withTimeout } from './harness.ts'

export interface RemoteMemory {
  readonly rss: number
  readonly heapUsed: number
  readonly heapTotal: number
  /** Memory of C++ objects bound to JS objects, ArrayBuffers (WebAssembly memory) included. */
  readonly external: number
  readonly arrayBuffers: number
}

export interface Inspector {
  /** HeapProfiler.collectGarbage: a full, compacting collection in the inspected process. */
  collectGarbage(): Promise<void>
  memoryUsage(): Promise<RemoteMemory>
  close(): void
}

const REQUEST_TIMEOUT_MS = 30_000

/** The ws:// address Node prints on stderr when it starts with --inspect. */
export const INSPECTOR_LINE = /Debugger listening on (ws:\/\/\S+)/

export async function connectInspector(url: string): Promise<Inspector> {
  const socket = new WebSocket(url)
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      socket.addEventListener('open', () => resolve(), { once: true })
      socket.addEventListener('error', () => reject(new BenchError(`cannot reach the inspector at ${url}`)), {
        once: true,
      })
    }),
    REQUEST_TIMEOUT_MS,
    `no inspector connection to ${url}`,
  )
  let nextId = 1
  const pending = new Map<number, { resolve: (result: unknown) => void; reject: (err: Error) => void }>()
  socket.addEventListener('message', (event: MessageEvent) => {
    const message = JSON.parse(String(event.data)) as {
      id?: number
      result?: unknown
      error?: { message: string }
    }
    const waiter = message.id === undefined ? undefined : pending.get(message.id)
    if (waiter === undefined) return
    pending.delete(message.id!)
    if (message.error !== undefined) waiter.reject(new BenchError(`inspector: ${message.error.message}`))
    else waiter.resolve(message.result)
  })
  const call = (method: string, params: Record<string, unknown> = {}): Promise<unknown> => {
    const id = nextId++
    const reply = new Promise<unknown>((resolve, reject) => pending.set(id, { resolve, reject }))
    socket.send(JSON.stringify({ id, method, params }))
    return withTimeout(reply, REQUEST_TIMEOUT_MS, `inspector: no answer to ${method}`)
  }
  return {
    async collectGarbage() {
      await call('HeapProfiler.collectGarbage')
    },
    async memoryUsage() {
      const result = (await call('Runtime.evaluate', {
        expression: 'JSON.stringify(process.memoryUsage())',
        returnByValue: true,
      })) as { result: { value: string } }
      return JSON.parse(result.result.value) as RemoteMemory
    },
    close() {
      socket.close()
    },
  }
}
