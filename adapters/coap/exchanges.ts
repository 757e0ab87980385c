// The fate of confirmable messages the adapter sends with commands (a separate response to a `?ct=`
// request, a notification of an observation): each gets a message id of our choosing, and the
// datagram gate reports every ACK and RST it sees, so a command counts as delivered when the device
// acknowledged it (RFC 7252 §4.2), not merely when it was sent. The `coap` library still runs the
// retransmissions; this only listens.
import { generate, parse } from 'coap-packet'

export type Fate = 'ack' | 'reset' | 'timeout'

/**
 * RFC 7252 §4.8.2 MAX_TRANSMIT_WAIT: from the first transmission of a confirmable message until the
 * sender gives up waiting for its acknowledgement (93 s with the default parameters).
 */
export const MAX_TRANSMIT_WAIT_MS = 93_000

export interface Exchanges {
  /**
   * A fresh message id, drawn from coap-packet's own counter (the one the library numbers its
   * messages with), so that it is never one the library has in use.
   */
  nextId(): number
  /** Resolves when `peer` (`address:port`) acknowledged or reset message `id`, or after `timeoutMs`. */
  expect(peer: string, id: number, timeoutMs?: number): Promise<Fate>
  /** The gate saw an ACK (reset false) or RST for message `id` from `peer`. */
  answered(peer: string, id: number, reset: boolean): void
  /** Messages waiting for their answer now. */
  readonly pending: number
  /** Ends every wait as timed out (stop). */
  clear(): void
}

export function createExchanges(): Exchanges {
  const waiting = new Map<string, { resolve: (fate: Fate) => void; timer: NodeJS.Timeout }>()
  const finish = (key: string, fate: Fate): void => {
    const entry = waiting.get(key)
    if (entry === undefined) return
    waiting.delete(key)
    clearTimeout(entry.timer)
    entry.resolve(fate)
  }
  return {
    nextId: () => parse(generate({})).messageId,
    expect(peer, id, timeoutMs = MAX_TRANSMIT_WAIT_MS) {
      const key = `${peer}#${id}`
      finish(key, 'timeout')
      return new Promise((resolve) => {
        const timer = setTimeout(() => finish(key, 'timeout'), timeoutMs)
        waiting.set(key, { resolve, timer })
      })
    },
    answered(peer, id, reset) {
      finish(`${peer}#${id}`, reset ? 'reset' : 'ack')
    },
    get pending() {
      return waiting.size
    },
    clear() {
      for (const key of [...waiting.keys()]) finish(key, 'timeout')
    },
  }
}
