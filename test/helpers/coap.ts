// What the CoAP e2e tests drive a running tributary with: Debian's coap-client (libcoap3-bin, the
// build without TLS) run to its end, with what it received read from its PDU log (-v 7): response
// codes, message types and the Max-Age option of the final response.
import { execFile } from 'node:child_process'

export const COAP_CLIENT = 'coap-client-notls'

export interface CoapResult {
  readonly exit: number | null
  readonly stdout: string
  readonly stderr: string
  /** Response codes of every PDU coap-client received, in order. */
  readonly codes: string[]
  /** The final response code (2.31 Continue of a block-wise body is not final). */
  readonly code: string | undefined
  /** Message types (CON, NON, ACK) of the responses, in order. */
  readonly types: string[]
  /** The Max-Age option of the final response, in seconds, when it had one. */
  readonly maxAge: number | undefined
}

/**
 * Runs coap-client against `coap://127.0.0.1:<port><path>` to its end, bounded with -B (10 s unless
 * `args` sets it, the last -B wins) and a kill timer.
 */
export function coapClient(port: number, args: readonly string[], path: string): Promise<CoapResult> {
  const url = `coap://127.0.0.1:${port}${path}`
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
        const pdus = [...`${stdout}\n${stderr}`.matchAll(/^v:1 t:(CON|NON|ACK|RST) c:(\d\.\d\d) .*$/gm)]
        // Responses only: the client's own requests (c:POST) do not match, its empty ACKs are 0.00.
        const responses = pdus.filter((m) => !m[2]!.startsWith('0.'))
        const codes = responses.map((m) => m[2]!)
        const final = responses.filter((m) => m[2] !== '2.31').at(-1)
        const maxAge = final === undefined ? undefined : /Max-Age:(\d+)/.exec(final[0])?.[1]
        resolve({
          exit: err === null ? 0 : typeof err.code === 'number' ? err.code : null,
          stdout,
          stderr,
          codes,
          code: final?.[2],
          types: responses.map((m) => m[1]!),
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
