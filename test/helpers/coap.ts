// Debian's coap-client (libcoap3-bin, the build without TLS) driven as a device would, with what it
// received read from its PDU log (-v 7): response codes, message types and the Max-Age option.
import { execFile } from 'node:child_process'

export const COAP_CLIENT = 'coap-client-notls'

export interface CoapResult {
  readonly exit: number | null
  readonly stdout: string
  readonly stderr: string
  /** The final response code (2.31 Continue of a block-wise body is not final). */
  readonly code: string | undefined
  /** The Max-Age option of the final response, in seconds, when it had one. */
  readonly maxAge: number | undefined
}

/** Runs coap-client to its end (bounded with -B and a kill timer) against `url`. */
export function coapClient(args: readonly string[], url: string): Promise<CoapResult> {
  return new Promise((resolve, reject) => {
    execFile(
      COAP_CLIENT,
      ['-v', '7', '-B', '10', ...args, url],
      { timeout: 20_000 },
      (err, stdout, stderr) => {
        if (err !== null && typeof err.code !== 'number' && err.killed !== true) {
          reject(new Error(`${COAP_CLIENT} could not run (apt-get install libcoap3-bin)`, { cause: err }))
          return
        }
        // Responses only: the client's own requests (c:POST) do not match, its empty ACKs are 0.00.
        const responses = [
          ...`${stdout}\n${stderr}`.matchAll(/^v:1 t:(?:CON|NON|ACK|RST) c:(\d\.\d\d) .*$/gm),
        ]
          .filter((m) => !m[1]!.startsWith('0.') && m[1] !== '2.31')
          .map((m) => ({ code: m[1]!, line: m[0] }))
        const last = responses.at(-1)
        const maxAge = last === undefined ? undefined : /Max-Age:(\d+)/.exec(last.line)?.[1]
        resolve({
          exit: err === null ? 0 : typeof err.code === 'number' ? err.code : null,
          stdout,
          stderr,
          code: last?.code,
          maxAge: maxAge === undefined ? undefined : Number(maxAge),
        })
      },
    )
  })
}

/** Option 4209 with Basic credentials, as coap-client arguments. */
export const coapBasic = (device: string, tenant: string, password: string): string[] => [
  '-O',
  `4209,Basic ${Buffer.from(`${device}@${tenant}:${password}`).toString('base64')}`,
]
