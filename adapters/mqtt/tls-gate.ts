// The TLS listener's handshake: any client certificate is let through (trust is per tenant and
// checked at CONNECT, certificates.ts), and TLS-PSK keys come from the registry. Node asks for a
// PSK key synchronously, so the identity is read from the clear part of the handshake first and
// its key fetched before OpenSSL needs it: TLS 1.3 clients name it in the ClientHello, which is
// peeked before the TLS socket takes the connection over natively; TLS 1.2 PSK clients name it in
// the ClientKeyExchange, so their connections pass through a small inspecting proxy.
import { constants } from 'node:crypto'
import type { Socket } from 'node:net'
import { Transform, duplexPair, pipeline } from 'node:stream'
import type { Duplex } from 'node:stream'
import { DEFAULT_CIPHERS, TLSSocket, createSecureContext } from 'node:tls'
import type { SecureContext } from 'node:tls'
import { TributaryError } from '../../core/errors.ts'
import type { PskAuthResult } from '../../core/registry/auth.ts'
import type { PskProof } from './connection.ts'
import { clientKeyExchangeIdentity, createHandshakeReader, parseClientHello } from './tls-hello.ts'
import type { ClientHelloFacts } from './tls-hello.ts'

/** Node's defaults exclude PSK suites; TLS 1.2 PSK devices (mbedTLS and the like) need them. */
const PSK12_CIPHERS = [
  'PSK-AES128-GCM-SHA256',
  'PSK-AES256-GCM-SHA384',
  'PSK-CHACHA20-POLY1305',
  'PSK-AES128-CCM',
  'PSK-AES128-CCM8',
  'PSK-AES128-CBC-SHA256',
  'ECDHE-PSK-AES128-CBC-SHA256',
  'ECDHE-PSK-CHACHA20-POLY1305',
]
const TLS12_CIPHERS = DEFAULT_CIPHERS.split(':').filter((c) => !c.startsWith('TLS_') && c !== '!PSK')
/**
 * A TLS 1.3 external PSK set through pskCallback is bound to SHA-256 (OpenSSL's compatibility
 * path): offered a SHA-384 suite, OpenSSL would ignore the PSK and fall back to a certificate
 * handshake. ClientHellos that carry a PSK therefore get a context with SHA-256 suites only.
 */
const TLS13_PSK_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_CHACHA20_POLY1305_SHA256']

export interface TlsContexts {
  /** Certificates and passwords (TLS 1.2 PSK suites too, for clients that offer them). */
  readonly standard: SecureContext
  /** ClientHellos with a TLS 1.3 pre_shared_key extension. */
  readonly psk: SecureContext
}

export function createTlsContexts(files: { cert: Buffer; key: Buffer }): TlsContexts {
  const context = (tls13: readonly string[]): SecureContext =>
    createSecureContext({
      ...files,
      ciphers: [...tls13, ...TLS12_CIPHERS, ...PSK12_CIPHERS].join(':'),
      minVersion: 'TLSv1.2',
      // No resumption: every connection proves its certificate or PSK afresh, and a reused
      // session can only be the external PSK (below).
      secureOptions: constants.SSL_OP_NO_TICKET,
      sessionIdContext: 'tributary-mqtt',
    })
  try {
    const standard = DEFAULT_CIPHERS.split(':').filter((c) => c.startsWith('TLS_'))
    return { standard: context(standard), psk: context(TLS13_PSK_SUITES) }
  } catch (cause) {
    throw new TributaryError(
      'CONFIG_INVALID',
      `TRIBUTARY_MQTTS_CERT_FILE / TRIBUTARY_MQTTS_KEY_FILE do not make a TLS server identity: ${(cause as Error).message}`,
      { cause },
    )
  }
}

/** Whether the finished handshake was authenticated by the PSK (not a fallback to certificates). */
function usedPsk(tls: TLSSocket): boolean {
  return tls.getProtocol() === 'TLSv1.3' ? tls.isSessionReused() : tls.getCipher().name.includes('PSK')
}

export interface TlsGateDeps {
  readonly contexts: TlsContexts
  readonly byPsk: (identity: string) => Promise<PskAuthResult>
  /** Bound on the whole handshake. */
  readonly timeoutMs: number
  /** A refused handshake, for the log and the refusal counter. */
  readonly refused: (reason: string, detail: { identity?: string; remote?: string }) => void
}

export interface Upgraded {
  readonly tls: TLSSocket
  readonly psk: PskProof | undefined
}

/** Reads the client's first flight up to its ClientHello; the bytes go back to the socket. */
function peekClientHello(raw: Socket): Promise<ClientHelloFacts | 'plain' | undefined> {
  return new Promise((resolve) => {
    const reader = createHandshakeReader()
    const chunks: Buffer[] = []
    const finish = (facts: ClientHelloFacts | 'plain' | undefined): void => {
      raw.off('readable', onReadable)
      raw.off('close', onClose)
      if (chunks.length > 0) raw.unshift(Buffer.concat(chunks))
      resolve(facts)
    }
    const onClose = (): void => finish(undefined)
    const onReadable = (): void => {
      let chunk: Buffer | null
      while ((chunk = raw.read() as Buffer | null) !== null) {
        chunks.push(chunk)
        const hello = reader.feed(chunk).find((m) => m.type === 1)
        if (hello !== undefined) return finish(parseClientHello(hello) ?? 'plain')
        if (!reader.state.tls) return finish(undefined)
        if (reader.state.done) return finish('plain')
      }
    }
    raw.on('readable', onReadable)
    raw.once('close', onClose)
  })
}

/** Passes the client's bytes on, holding the ClientKeyExchange until `named` has fetched the key. */
function inspectingProxy(raw: Socket, named: (identity: string) => Promise<void>): Duplex {
  const [outer, inner] = duplexPair()
  const reader = createHandshakeReader()
  const inspector = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (reader.state.done) return callback(null, chunk)
      const identity = reader
        .feed(chunk)
        .map(clientKeyExchangeIdentity)
        .find((i) => i !== undefined)
      if (identity === undefined) return callback(null, chunk)
      named(identity).then(
        () => callback(null, chunk),
        (err: Error) => callback(err),
      )
    },
  })
  pipeline(raw, inspector, outer, raw, () => inner.destroy())
  // The TLS socket closing only ends the pair's other side; the client's socket must close too.
  inner.once('close', () => raw.destroySoon())
  return inner
}

export function createTlsGate(deps: TlsGateDeps) {
  return {
    /** Resolves once the handshake succeeded, or undefined when it failed (the socket is gone). */
    async upgrade(raw: Socket, remote: string | undefined): Promise<Upgraded | undefined> {
      const timer = setTimeout(() => raw.destroy(), deps.timeoutMs)
      raw.on('error', () => raw.destroy())
      let fetched: { identity: string; result: PskAuthResult } | undefined
      let handedOut: PskProof | undefined
      let pskRefused = false
      const where = remote === undefined ? {} : { remote }
      const named = async (identity: string): Promise<void> => {
        const result = await deps.byPsk(identity).catch(
          (): PskAuthResult => ({ ok: false, reason: 'unknown' }), // registry down: no key to give
        )
        fetched = { identity, result }
      }
      try {
        const facts = await peekClientHello(raw)
        if (facts === undefined || raw.destroyed) return undefined
        let base: Duplex = raw
        let secureContext = deps.contexts.standard
        if (facts !== 'plain' && facts.pskIdentity !== undefined) {
          await named(facts.pskIdentity)
          secureContext = deps.contexts.psk
        } else if (facts !== 'plain' && facts.offersPsk12) base = inspectingProxy(raw, named)
        // TLSSocket takes a server's pskCallback too, though @types/node lists it for tls.Server only.
        const options = {
          isServer: true,
          secureContext,
          requestCert: true,
          rejectUnauthorized: false,
          pskCallback: (_socket: TLSSocket, identity: string): Buffer | null => {
            if (fetched?.identity === identity && fetched.result.ok) {
              const { tenant, device, credentialId } = fetched.result
              handedOut = { tenant, device, credentialId, identity }
              return fetched.result.key
            }
            const reason =
              fetched?.identity === identity && !fetched.result.ok ? fetched.result.reason : 'unknown'
            pskRefused = true
            deps.refused(`psk-${reason}`, { identity, ...where })
            return null
          },
        }
        const tls = new TLSSocket(base, options)
        const secure = await new Promise<boolean>((resolve) => {
          tls.once('secure', () => resolve(true))
          tls.once('error', () => resolve(false))
          tls.once('close', () => resolve(false))
        })
        if (!secure) {
          // A PSK handed out but the handshake failed: the client's key is not the registered one.
          if (handedOut !== undefined)
            deps.refused('psk-bad-secret', { identity: handedOut.identity, ...where })
          else if (!pskRefused) deps.refused('tls-handshake', where)
          tls.destroy()
          raw.destroy()
          return undefined
        }
        tls.on('error', () => tls.destroy())
        // A key handed out proves nothing unless the handshake used it.
        return { tls, psk: handedOut !== undefined && usedPsk(tls) ? handedOut : undefined }
      } finally {
        clearTimeout(timer)
        if (fetched?.result.ok === true) fetched.result.key.fill(0) // OpenSSL holds its own copy
      }
    },
  }
}

export type TlsGate = ReturnType<typeof createTlsGate>
