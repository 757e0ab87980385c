// Binding listeners: port 0 picks a free port, a taken port fails fast naming the variable to change.
import type { Server } from 'node:net'
import { TributaryError } from './errors.ts'

export interface ListenOptions {
  readonly host: string
  readonly port: number
  /** The TRIBUTARY_* variable that sets this port, named in the error when it is taken. */
  readonly variable: string
  /** The listener, for messages. */
  readonly name: string
}

/** Resolves with the bound port. */
export function listen(server: Server, options: ListenOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      server.off('listening', onListening)
      if (err.code === 'EADDRINUSE' || err.code === 'EACCES') {
        reject(
          new TributaryError(
            'PORT_IN_USE',
            `the ${options.name} listener cannot bind ${options.host}:${options.port} (${err.code === 'EACCES' ? 'permission denied' : 'the port is taken'}); set ${options.variable} to another port, or 0 for any free port`,
            { cause: err, details: { variable: options.variable, port: options.port } },
          ),
        )
      } else reject(err)
    }
    const onListening = (): void => {
      server.off('error', onError)
      const address = server.address()
      resolve(typeof address === 'object' && address !== null ? address.port : options.port)
    }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen(options.port, options.host)
  })
}
