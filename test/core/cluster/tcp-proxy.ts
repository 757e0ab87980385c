// The shared test TCP proxy (test/helpers/tcp-proxy.ts) in front of Redis, as the cluster suites
// name its operations: kill (reset and refuse), freeze (hang) and revive (back on the same port).
import { startTcpProxy as startProxy } from '../../helpers/tcp-proxy.ts'

export interface TcpProxy {
  /** redis://127.0.0.1:<proxy port> */
  readonly url: string
  /** Resets every connection and stops listening: the client sees a crash of the server. */
  kill(): Promise<void>
  /** Keeps connections open but forwards nothing more: the client sees a hung server. */
  freeze(): void
  /** Listens again on the same port (after kill) and forwards again. */
  revive(): Promise<void>
  close(): Promise<void>
}

export async function startTcpProxy(targetUrl: string): Promise<TcpProxy> {
  const target = new URL(targetUrl)
  const proxy = await startProxy({ host: target.hostname, port: Number(target.port || 6379) })
  return {
    url: `redis://${proxy.host}:${proxy.port}`,
    kill: () => proxy.cut(),
    freeze: () => proxy.freeze(),
    revive: () => proxy.restore(),
    close: () => proxy.close(),
  }
}
