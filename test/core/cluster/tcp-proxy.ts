// A TCP proxy in front of Redis, so that a test can take Redis away from one client abruptly
// (reset every connection and refuse new ones), freeze it (connections open, nothing answers)
// and bring it back on the same port, without touching the shared Redis server.
import { connect, createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'

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
  const sockets = new Set<Socket>()
  let frozen = false

  const server = createServer((client) => {
    const upstream = connect({ host: target.hostname, port: Number(target.port || 6379) })
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
    }
    client.on('data', (chunk: Buffer) => {
      if (!frozen) upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (!frozen) client.write(chunk)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port

  const stopListening = (): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) return resolve()
      server.close(() => resolve())
    })

  return {
    url: `redis://127.0.0.1:${port}`,
    async kill() {
      const closed = stopListening()
      for (const socket of sockets) socket.resetAndDestroy()
      await closed
    },
    freeze() {
      frozen = true
    },
    async revive() {
      frozen = false
      if (!server.listening) await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    },
    async close() {
      const closed = stopListening()
      for (const socket of sockets) socket.destroy()
      await closed
    },
  }
}
