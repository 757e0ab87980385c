// A TCP proxy a test owns, in front of a shared service (PostgreSQL, Redis, a Kafka broker that
// advertises the proxy): the test takes the service away from the process it drives (cut: every
// connection reset, new ones refused), hangs it (freeze: connections open, nothing forwarded) and
// brings it back on the same port (restore), while everyone else keeps using the service.
import { connect, createServer } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'

export interface TcpProxy {
  readonly host: string
  /** The port the proxy listens on; stays the same across cut() and restore(). */
  readonly port: number
  /** Connections the proxy accepted so far (each one forwarded to the target). */
  readonly accepted: number
  /** Resets every connection and stops listening: clients see the server crash, then ECONNREFUSED. */
  cut(): Promise<void>
  /** Keeps connections open but forwards nothing more: clients see a hung server. */
  freeze(): void
  /** Listens again on the same port (after cut) and forwards again (after freeze). */
  restore(): Promise<void>
  close(): Promise<void>
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<Socket>()
  let frozen = false
  let accepted = 0
  const host = '127.0.0.1'

  const server = createServer((client) => {
    accepted += 1
    const upstream = connect({ host: target.host, port: target.port })
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
      socket.on('error', () => {
        client.destroy()
        upstream.destroy()
      })
    }
    client.on('end', () => upstream.end())
    upstream.on('end', () => client.end())
    client.on('data', (chunk: Buffer) => {
      if (!frozen) upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (!frozen) client.write(chunk)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  const port = (server.address() as AddressInfo).port

  const stopListening = (): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) return resolve()
      server.close(() => resolve())
    })

  return {
    host,
    port,
    get accepted() {
      return accepted
    },
    async cut() {
      const closed = stopListening()
      for (const socket of sockets) socket.resetAndDestroy()
      await closed
    },
    freeze() {
      frozen = true
    },
    async restore() {
      frozen = false
      if (!server.listening) await new Promise<void>((resolve) => server.listen(port, host, resolve))
    },
    async close() {
      const closed = stopListening()
      for (const socket of sockets) socket.destroy()
      await closed
    },
  }
}
