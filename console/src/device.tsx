// One device: its registry entry, its configuration and files, its recent events (the spy for that
// device), and for managers its password and commands, each command followed by the status events
// that answer it.
import { useEffect, useState } from 'preact/hooks'
import type { CloudEventJson, Device } from './api.ts'
import { call, enc } from './api.ts'
import { ConfigPanel } from './device-config.tsx'
import { FilesPanel } from './device-files.tsx'
import { lastSeen } from './devices.tsx'
import { ProblemView } from './problem.tsx'
import { EventStream } from './spy.tsx'

export interface DeviceProps {
  readonly token: string
  readonly tenant: string
  readonly id: string
  readonly canEdit: boolean
}

interface SentCommand {
  readonly id: string
  readonly name: string
  readonly statuses: string[]
}

const RECENT_MS = 24 * 3600_000
const COMMAND_STATUS = 'io.tributary.command.status.v1'

export function DevicePage({ token, tenant, id, canEdit }: DeviceProps) {
  const base = `/tenants/${enc(tenant)}/devices/${enc(id)}`
  const [device, setDevice] = useState<Device>()
  const [loadError, setLoadError] = useState<unknown>()
  const [password, setPassword] = useState('')
  const [passwordError, setPasswordError] = useState<unknown>()
  const [passwordSet, setPasswordSet] = useState(false)
  const [command, setCommand] = useState({
    name: '',
    payload: '',
    contentType: 'application/json',
    ttl: '60',
  })
  const [commandError, setCommandError] = useState<unknown>()
  const [sent, setSent] = useState<SentCommand[]>([])
  const [from] = useState(() => new Date(Date.now() - RECENT_MS).toISOString())

  useEffect(() => {
    let current = true
    call<Device>(token, base).then(
      (d) => current && setDevice(d),
      (err: unknown) => current && setLoadError(err),
    )
    return () => {
      current = false
    }
  }, [token, base])

  const savePassword = async (e: Event): Promise<void> => {
    e.preventDefault()
    setPasswordSet(false)
    try {
      await call(token, `${base}/password`, { method: 'PUT', json: { password } })
      setPasswordError(undefined)
      setPassword('')
      setPasswordSet(true)
    } catch (err) {
      setPasswordError(err)
    }
  }

  const send = async (e: Event): Promise<void> => {
    e.preventDefault()
    try {
      const accepted = await call<{ id: string }>(token, `${base}/commands/${enc(command.name.trim())}`, {
        method: 'POST',
        raw: command.payload,
        contentType: command.contentType,
        query: { ttl: command.ttl },
      })
      setCommandError(undefined)
      setSent((list) => [{ id: accepted.id, name: command.name.trim(), statuses: ['sent'] }, ...list])
    } catch (err) {
      setCommandError(err)
    }
  }

  const onEvent = (event: CloudEventJson): void => {
    if (event.type !== COMMAND_STATUS || typeof event['commandid'] !== 'string') return
    const status = typeof event['status'] === 'string' ? event['status'] : 'unknown'
    const reason = (event.data as { reason?: unknown } | undefined)?.reason
    const text = typeof reason === 'string' ? `${status} (${reason})` : status
    setSent((list) =>
      list.map((c) => (c.id === event['commandid'] ? { ...c, statuses: [...c.statuses, text] } : c)),
    )
  }

  return (
    <section aria-labelledby="device-title">
      <p>
        <a href="#/devices">All devices</a>
      </p>
      <h2 id="device-title">Device {id}</h2>
      <ProblemView error={loadError} />
      {device !== undefined && (
        <dl class="facts">
          <dt>Enabled</dt>
          <dd>{device.enabled ? 'yes' : 'no'}</dd>
          <dt>Last seen</dt>
          <dd>{lastSeen(device.lastSeen)}</dd>
          <dt>Labels</dt>
          <dd>
            {Object.entries(device.labels)
              .map(([k, v]) => `${k}=${v}`)
              .join(', ') || 'none'}
          </dd>
          <dt>Gateways</dt>
          <dd>{device.gateways.join(', ') || 'none'}</dd>
        </dl>
      )}
      <div class="cards">
        <ConfigPanel token={token} base={base} canEdit={canEdit} />
        <FilesPanel token={token} tenant={tenant} device={id} />
      </div>
      {canEdit && (
        <div class="cards">
          <form class="card" aria-label="Set the password" onSubmit={(e) => void savePassword(e)}>
            <h3>Password</h3>
            <label>
              New password
              <input
                type="password"
                name="password"
                autocomplete="new-password"
                required
                value={password}
                onInput={(e) => setPassword(e.currentTarget.value)}
              />
            </label>
            <button type="submit">Set password</button>
            {passwordSet && <p role="status">The password is set.</p>}
            <ProblemView error={passwordError} />
          </form>
          <form class="card" aria-label="Send a command" onSubmit={(e) => void send(e)}>
            <h3>Send a command</h3>
            <label>
              Command name
              <input
                name="command"
                required
                placeholder="reboot"
                value={command.name}
                onInput={(e) => setCommand({ ...command, name: e.currentTarget.value })}
              />
            </label>
            <label>
              Payload
              <textarea
                name="payload"
                rows={3}
                value={command.payload}
                onInput={(e) => setCommand({ ...command, payload: e.currentTarget.value })}
              />
            </label>
            <label>
              Content type
              <select
                name="contentType"
                value={command.contentType}
                onChange={(e) => setCommand({ ...command, contentType: e.currentTarget.value })}
              >
                <option value="application/json">application/json</option>
                <option value="text/plain">text/plain</option>
                <option value="application/octet-stream">application/octet-stream</option>
              </select>
            </label>
            <label>
              Time to live (seconds)
              <input
                type="number"
                name="ttl"
                min="0"
                value={command.ttl}
                onInput={(e) => setCommand({ ...command, ttl: e.currentTarget.value })}
              />
            </label>
            <button type="submit">Send command</button>
            <ProblemView error={commandError} />
            {sent.length > 0 && (
              <ul class="commands" aria-label="Sent commands" aria-live="polite">
                {sent.map((c) => (
                  <li key={c.id}>
                    <code>{c.name}</code> {c.id}: <span class="command-status">{c.statuses.join(' → ')}</span>
                  </li>
                ))}
              </ul>
            )}
          </form>
        </div>
      )}
      <h3>Recent events</h3>
      <EventStream token={token} tenant={tenant} device={id} from={from} onEvent={onEvent} />
    </section>
  )
}
