// What the spy keeps and shows: a bounded list of rows (events and refused events), and an
// event's payload as bytes, text, JSON or a hex dump.
import type { CloudEventJson, DeadLetter } from './types.ts'

/** The spy keeps this many rows; older ones are dropped, and the page says so. */
export const MAX_ROWS = 500

export interface Row {
  readonly key: string
  readonly refused: boolean
  readonly time: string
  readonly type: string
  readonly device: string
  readonly channel: string
  readonly event?: CloudEventJson
  readonly letter?: DeadLetter
}

export const eventRow = (event: CloudEventJson): Row => ({
  key: `e:${event.id}:${event.source}`,
  refused: false,
  time: event.time ?? new Date().toISOString(),
  type: event.type,
  device: typeof event.device === 'string' ? event.device : '',
  channel: event.subject ?? '',
  event,
})

export const letterRow = (letter: DeadLetter): Row => ({
  key: `d:${letter.partition}:${letter.offset}`,
  refused: true,
  time: letter.deadLetteredAt,
  type: letter.type ?? '(no CloudEvent)',
  device: letter.device ?? '',
  channel: letter.subject ?? '',
  letter,
})

/** Newest first, at most MAX_ROWS; `received` counts every row ever added. */
export class RowBuffer {
  rows: Row[] = []
  received = 0
  private readonly keys = new Set<string>()

  add(row: Row): boolean {
    if (this.keys.has(row.key)) return false
    this.keys.add(row.key)
    this.received += 1
    this.rows.unshift(row)
    if (this.rows.length > MAX_ROWS) {
      for (const dropped of this.rows.splice(MAX_ROWS)) this.keys.delete(dropped.key)
    }
    return true
  }

  clear(): void {
    this.rows = []
    this.received = 0
    this.keys.clear()
  }
}

const fromBase64 = (text: string): Uint8Array => Uint8Array.from(atob(text), (c) => c.charCodeAt(0))

/** The payload's bytes: `data_base64`, a text `data`, or JSON `data` serialized. */
export function payloadBytes(row: Row): Uint8Array {
  if (row.letter !== undefined)
    return row.letter.data === null ? new Uint8Array() : fromBase64(row.letter.data)
  const event = row.event
  if (event === undefined) return new Uint8Array()
  if (typeof event.data_base64 === 'string') return fromBase64(event.data_base64)
  if (event.data === undefined) return new Uint8Array()
  if (typeof event.data === 'string' && !(event.datacontenttype ?? '').includes('json'))
    return new TextEncoder().encode(event.data)
  return new TextEncoder().encode(JSON.stringify(event.data))
}

export const asText = (bytes: Uint8Array): string => new TextDecoder('utf-8').decode(bytes)

export function asJson(bytes: Uint8Array): string {
  try {
    return JSON.stringify(JSON.parse(asText(bytes)), null, 2)
  } catch {
    return 'The payload is not JSON.'
  }
}

/** 16 bytes a line: offset, hex, printable ASCII; at most 4 KiB shown. */
export function asHex(bytes: Uint8Array): string {
  const lines: string[] = []
  const shown = bytes.subarray(0, 4096)
  for (let at = 0; at < shown.length; at += 16) {
    const chunk = [...shown.subarray(at, at + 16)]
    const hex = chunk.map((b) => b.toString(16).padStart(2, '0')).join(' ')
    const ascii = chunk.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('')
    lines.push(`${at.toString(16).padStart(8, '0')}  ${hex.padEnd(47)}  ${ascii}`)
  }
  if (bytes.length > shown.length) lines.push(`… ${bytes.length - shown.length} more bytes`)
  return lines.length === 0 ? '(no payload)' : lines.join('\n')
}
