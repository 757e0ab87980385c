// The live spy: a tenant's events over the event WebSocket, filtered by device, channel and type,
// paused and resumed, replayed from a time, and (when asked) the refused events of the dead-letter
// index beside them. Rows are bounded (events.ts); the page redraws at most once a frame.
import { useEffect, useRef, useState } from 'preact/hooks'
import type { CloudEventJson, DeadLetter, Page } from './api.ts'
import { call, enc } from './api.ts'
import type { Row } from './events.ts'
import { MAX_ROWS, RowBuffer, asHex, asJson, asText, eventRow, letterRow, payloadBytes } from './events.ts'
import { ProblemView } from './problem.tsx'

export interface StreamProps {
  readonly token: string
  readonly tenant: string
  /** A device page watches one device: no device filter is offered. */
  readonly device?: string | undefined
  /** Where the stream starts: `latest` (default), `earliest` or an RFC 3339 time. */
  readonly from?: string | undefined
  readonly onEvent?: ((event: CloudEventJson) => void) | undefined
}

interface Filters {
  readonly device: string
  readonly channel: string
  readonly type: string
  readonly from: string
}

const REFUSED_POLL_MS = 2000
type View = 'event' | 'text' | 'json' | 'hex'
const VIEWS: ReadonlyArray<[View, string]> = [
  ['event', 'Event JSON'],
  ['text', 'Payload as text'],
  ['json', 'Payload as JSON'],
  ['hex', 'Payload as hex'],
]

function socketUrl(tenant: string, filters: Filters): URL {
  const url = new URL(`/api/v1/tenants/${enc(tenant)}/events`, location.href)
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:'
  for (const key of ['device', 'channel', 'type'] as const) {
    if (filters[key] !== '') url.searchParams.set(key, filters[key])
  }
  url.searchParams.set('from', filters.from)
  return url
}

/**
 * A browser cannot set Authorization on a WebSocket: the token rides in a subprotocol offered
 * beside cloudevents.json (`bearer.<base64url token>`), which the server reads and never selects,
 * so it stays out of URLs and logs.
 */
function socketProtocols(token: string): string[] {
  const bytes = new TextEncoder().encode(token)
  let binary = ''
  for (const byte of bytes) binary += String.fromCharCode(byte)
  const encoded = btoa(binary).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
  return ['cloudevents.json', `bearer.${encoded}`]
}

/** The channel filter as the API applies it: equal, or an MQTT filter (`+`, `#`). */
function channelMatches(filter: string, channel: string): boolean {
  if (filter === '') return true
  const want = filter.split('/')
  const have = channel.split('/')
  for (let i = 0; i < want.length; i++) {
    if (want[i] === '#') return true
    if (i >= have.length || (want[i] !== '+' && want[i] !== have[i])) return false
  }
  return want.length === have.length
}

/** A `from` as the form shows it: a time goes into the local date-time field. */
function draftOf(from: string): Filters & { replayAt: string } {
  const base = { device: '', channel: '', type: '' }
  if (from === 'latest' || from === 'earliest') return { ...base, from, replayAt: '' }
  const at = new Date(from)
  const local = new Date(at.getTime() - at.getTimezoneOffset() * 60_000).toISOString().slice(0, 19)
  return { ...base, from: 'time', replayAt: local }
}

export function EventStream(props: StreamProps) {
  const { token, tenant } = props
  const initial: Filters = { device: props.device ?? '', channel: '', type: '', from: props.from ?? 'latest' }
  const [draft, setDraft] = useState(() => draftOf(initial.from))
  const [filters, setFilters] = useState<Filters>(initial)
  const [status, setStatus] = useState('connecting')
  const [paused, setPaused] = useState(false)
  const [showRefused, setShowRefused] = useState(false)
  const [refusedError, setRefusedError] = useState<unknown>()
  const [formError, setFormError] = useState<string>()
  const [selected, setSelected] = useState<Row>()
  const [view, setView] = useState<View>('event')
  const [, setTick] = useState(0)
  const buffer = useRef(new RowBuffer())
  const frozen = useRef<Row[]>([])
  const receivedAtPause = useRef(0)
  const frame = useRef(0)
  const onEvent = useRef(props.onEvent)
  onEvent.current = props.onEvent

  const redraw = (): void => {
    if (frame.current !== 0) return
    frame.current = requestAnimationFrame(() => {
      frame.current = 0
      setTick((t) => t + 1)
    })
  }
  useEffect(() => () => cancelAnimationFrame(frame.current), [])

  useEffect(() => {
    buffer.current.clear()
    setSelected(undefined)
    setStatus('connecting')
    redraw()
    const socket = new WebSocket(socketUrl(tenant, filters), socketProtocols(token))
    socket.onopen = () => setStatus('live')
    socket.onmessage = (message: MessageEvent<string>) => {
      const event = JSON.parse(message.data) as CloudEventJson
      onEvent.current?.(event)
      if (buffer.current.add(eventRow(event))) redraw()
    }
    socket.onclose = (close) =>
      setStatus(
        close.code === 1000
          ? 'closed'
          : `closed (${close.code}${close.reason === '' ? ': the connection was refused or lost' : `: ${close.reason}`})`,
      )
    return () => socket.close(1000)
  }, [token, tenant, filters])

  useEffect(() => {
    if (!showRefused) return undefined
    let stopped = false
    let timer: ReturnType<typeof setTimeout> | undefined
    const poll = async (): Promise<void> => {
      try {
        const page = await call<Page<DeadLetter>>(token, `/tenants/${enc(tenant)}/dead-letters`, {
          query: { limit: '100', device: filters.device === '' ? undefined : filters.device },
        })
        setRefusedError(undefined)
        for (const letter of page.items.toReversed()) {
          if (letter.subscription !== null) continue
          if (!channelMatches(filters.channel, letter.subject ?? '')) continue
          if (filters.type !== '' && letter.type !== filters.type) continue
          if (buffer.current.add(letterRow(letter))) redraw()
        }
      } catch (err) {
        setRefusedError(err)
      }
      if (!stopped) timer = setTimeout(() => void poll(), REFUSED_POLL_MS)
    }
    void poll()
    return () => {
      stopped = true
      clearTimeout(timer)
    }
  }, [showRefused, token, tenant, filters])

  const apply = (e: Event): void => {
    e.preventDefault()
    let from = draft.from
    if (from === 'time') {
      const at = new Date(draft.replayAt)
      if (draft.replayAt === '' || Number.isNaN(at.getTime())) {
        setFormError('Choose the time to replay from.')
        return
      }
      from = at.toISOString()
    }
    setFormError(undefined)
    setFilters({
      device: props.device ?? draft.device.trim(),
      channel: draft.channel.trim(),
      type: draft.type.trim(),
      from,
    })
  }

  const togglePause = (): void => {
    if (!paused) {
      frozen.current = [...buffer.current.rows]
      receivedAtPause.current = buffer.current.received
    }
    setPaused(!paused)
  }

  const rows = paused ? frozen.current : buffer.current.rows
  const received = buffer.current.received
  const who = props.device ?? (filters.device === '' ? '<device>' : filters.device)
  return (
    <section class="stream" aria-label="Events">
      <form class="filters" onSubmit={apply} aria-label="Event filters">
        {props.device === undefined && (
          <label>
            Device
            <input
              name="device"
              value={draft.device}
              onInput={(e) => setDraft({ ...draft, device: e.currentTarget.value })}
            />
          </label>
        )}
        <label>
          Channel
          <input
            name="channel"
            placeholder="sensors/#"
            value={draft.channel}
            onInput={(e) => setDraft({ ...draft, channel: e.currentTarget.value })}
          />
        </label>
        <label>
          Type
          <input
            name="type"
            placeholder="io.tributary.telemetry.v1"
            value={draft.type}
            onInput={(e) => setDraft({ ...draft, type: e.currentTarget.value })}
          />
        </label>
        <label>
          Start
          <select
            name="from"
            value={draft.from}
            onChange={(e) => setDraft({ ...draft, from: e.currentTarget.value })}
          >
            <option value="latest">new events</option>
            <option value="earliest">the oldest kept</option>
            <option value="time">a time (replay)</option>
          </select>
        </label>
        {draft.from === 'time' && (
          <label>
            Replay from
            <input
              type="datetime-local"
              name="replayAt"
              step="1"
              value={draft.replayAt}
              onInput={(e) => setDraft({ ...draft, replayAt: e.currentTarget.value })}
            />
          </label>
        )}
        <button type="submit">Apply</button>
        {formError !== undefined && (
          <p role="alert" class="problem">
            {formError}
          </p>
        )}
      </form>
      <div class="toolbar">
        <button type="button" aria-pressed={paused} onClick={togglePause}>
          {paused ? 'Resume' : 'Pause'}
        </button>
        <label class="inline">
          <input
            type="checkbox"
            name="refused"
            checked={showRefused}
            onChange={(e) => setShowRefused(e.currentTarget.checked)}
          />
          Show refused events
        </label>
        <span role="status" class="stream-status">
          Stream: {status}
          {paused && ` (paused: ${received - receivedAtPause.current} new kept, not shown)`}
        </span>
      </div>
      <ProblemView error={refusedError} />
      {received > MAX_ROWS && (
        <p class="sampling" role="note">
          Showing the newest {MAX_ROWS} of {received} events received; older ones are dropped to keep the page
          responsive.
        </p>
      )}
      {rows.length === 0 ? (
        <div class="empty">
          <p>No events yet. Send one as a device, for example:</p>
          <pre>{`mosquitto_pub -h ${location.hostname} -p 1883 -u ${who}@${tenant} -P <password> -q 1 -t sensors/temperature -m '{"celsius":21.5}'`}</pre>
          <p>(use the MQTT port your process printed when it started; 11883 when 1883 was taken)</p>
        </div>
      ) : (
        <table class="events">
          <caption class="visually-hidden">Events, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Type</th>
              <th scope="col">Device</th>
              <th scope="col">Channel</th>
              <th scope="col">Refused</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((row) => (
              <tr key={row.key} class={row.refused ? 'refused' : undefined}>
                <td>
                  <button
                    type="button"
                    class="link"
                    aria-pressed={selected?.key === row.key}
                    aria-label={`Show ${row.refused ? 'refused ' : ''}event of ${row.device || 'unknown device'} at ${row.time}`}
                    onClick={() => setSelected(row)}
                  >
                    {row.time}
                  </button>
                </td>
                <td>{row.type}</td>
                <td>{row.device}</td>
                <td>{row.channel}</td>
                <td>
                  {row.letter !== undefined && (
                    <span class="reason">
                      {row.letter.step}: {row.letter.reason}
                      {row.letter.detail !== null && <small> {row.letter.detail}</small>}
                    </span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {selected !== undefined && (
        <section class="detail" aria-label="Selected event">
          <div role="group" aria-label="View" class="views">
            {VIEWS.map(([value, label]) => (
              <button key={value} type="button" aria-pressed={view === value} onClick={() => setView(value)}>
                {label}
              </button>
            ))}
          </div>
          <pre tabIndex={0} aria-label="Event content">
            {render(selected, view)}
          </pre>
        </section>
      )}
    </section>
  )
}

function render(row: Row, view: View): string {
  if (view === 'event') return JSON.stringify(row.event ?? row.letter, null, 2)
  const bytes = payloadBytes(row)
  if (view === 'text') return asText(bytes)
  if (view === 'json') return asJson(bytes)
  return asHex(bytes)
}
