// A recording stand-in for the coap library's ObserveWriteStream, for the observation tests.
import { EventEmitter } from 'node:events'
import type { NotificationStream } from '../../../adapters/coap/observe.ts'

export interface Sent {
  readonly code: string
  readonly payload: string
  readonly messageId: number | undefined
  readonly options: Record<string, string[]>
}

/** Records what the library's ObserveWriteStream would send: code, payload, message id, options. */
export function recordingStream(confirmable: boolean) {
  const emitter = new EventEmitter()
  const options = new Map<string, string[]>()
  const sent: Sent[] = []
  let ended = false
  const stream: NotificationStream & { sent: Sent[]; readonly ended: boolean } = {
    _packet: { confirmable: true, ack: true },
    statusCode: '',
    sent,
    get ended() {
      return ended
    },
    setOption(name, value) {
      const values = Array.isArray(value) ? value : [value]
      if (values.length === 0) options.delete(name)
      else options.set(name, values.map(String))
    },
    write(payload) {
      sent.push({
        code: stream.statusCode,
        payload: payload.toString(),
        messageId: stream._packet.messageId,
        options: Object.fromEntries(options),
      })
      // As the library does after its first message: later ones are CON when the request was.
      stream._packet.confirmable = confirmable
      stream._packet.messageId = undefined
    },
    end() {
      if (ended) return
      ended = true
      emitter.emit('finish')
    },
    once(event, listener) {
      emitter.once(event, listener)
    },
  }
  return stream
}
