// The device list: search by id, filter by labels, last seen; managers create and delete devices.
import { useEffect, useState } from 'preact/hooks'
import type { Device, Page } from './api.ts'
import { call, enc } from './api.ts'
import { ProblemView } from './problem.tsx'

export interface DevicesProps {
  readonly token: string
  readonly tenant: string
  readonly canEdit: boolean
}

/** `a=b, c=d` as a label map; a pair without `=` is refused by the API, so it is kept as a key. */
export function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {}
  for (const pair of text.split(',').map((p) => p.trim())) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    labels[eq < 0 ? pair : pair.slice(0, eq).trim()] = eq < 0 ? '' : pair.slice(eq + 1).trim()
  }
  return labels
}

export const lastSeen = (at: string | null): string => (at === null ? 'never' : new Date(at).toLocaleString())

export function Devices({ token, tenant, canEdit }: DevicesProps) {
  const [devices, setDevices] = useState<Device[]>()
  const [loadError, setLoadError] = useState<unknown>()
  const [search, setSearch] = useState('')
  const [labelDraft, setLabelDraft] = useState('')
  const [label, setLabel] = useState('')
  const [reload, setReload] = useState(0)
  const [created, setCreated] = useState({ id: '', labels: '' })
  const [createError, setCreateError] = useState<unknown>()
  const [deleting, setDeleting] = useState<string>()
  const [deleteError, setDeleteError] = useState<unknown>()

  useEffect(() => {
    let current = true
    call<Page<Device>>(token, `/tenants/${enc(tenant)}/devices`, { query: { limit: '1000', label } }).then(
      (page) => {
        if (!current) return
        setDevices(page.items)
        setLoadError(undefined)
      },
      (err: unknown) => current && setLoadError(err),
    )
    return () => {
      current = false
    }
  }, [token, tenant, label, reload])

  const create = async (e: Event): Promise<void> => {
    e.preventDefault()
    try {
      await call(token, `/tenants/${enc(tenant)}/devices`, {
        method: 'POST',
        json: { id: created.id.trim(), labels: parseLabels(created.labels) },
      })
      setCreateError(undefined)
      setCreated({ id: '', labels: '' })
      setReload((n) => n + 1)
    } catch (err) {
      setCreateError(err)
    }
  }

  const remove = async (id: string): Promise<void> => {
    try {
      await call(token, `/tenants/${enc(tenant)}/devices/${enc(id)}`, { method: 'DELETE' })
      setDeleteError(undefined)
      setDeleting(undefined)
      setReload((n) => n + 1)
    } catch (err) {
      setDeleteError(err)
    }
  }

  const shown = (devices ?? []).filter((d) => d.id.toLowerCase().includes(search.trim().toLowerCase()))
  return (
    <section aria-labelledby="devices-title">
      <h2 id="devices-title">Devices</h2>
      {canEdit && (
        <form class="card" onSubmit={(e) => void create(e)} aria-label="Create a device">
          <h3>Create a device</h3>
          <label>
            Device id
            <input
              name="id"
              required
              value={created.id}
              onInput={(e) => setCreated({ ...created, id: e.currentTarget.value })}
            />
          </label>
          <label>
            Labels (key=value, comma-separated)
            <input
              name="labels"
              value={created.labels}
              onInput={(e) => setCreated({ ...created, labels: e.currentTarget.value })}
            />
          </label>
          <button type="submit">Create device</button>
          <ProblemView error={createError} />
        </form>
      )}
      <form
        class="filters"
        aria-label="Find devices"
        onSubmit={(e) => {
          e.preventDefault()
          setLabel(labelDraft.trim())
        }}
      >
        <label>
          Search by id
          <input
            type="search"
            name="search"
            value={search}
            onInput={(e) => setSearch(e.currentTarget.value)}
          />
        </label>
        <label>
          Label filter (key=value)
          <input name="label" value={labelDraft} onInput={(e) => setLabelDraft(e.currentTarget.value)} />
        </label>
        <button type="submit">Filter</button>
      </form>
      <ProblemView error={loadError} />
      <ProblemView error={deleteError} />
      {devices !== undefined && shown.length === 0 && (
        <div class="empty">
          {devices.length === 0 && label === '' ? (
            <p>
              No devices yet. {canEdit ? 'Create one above' : 'Ask a manager to create one'}, or from a
              terminal: <code>npx tributary device create --tenant {tenant} device1</code>
            </p>
          ) : (
            <p>No device matches. Clear the search or the label filter.</p>
          )}
        </div>
      )}
      {shown.length > 0 && (
        <table>
          <caption class="visually-hidden">Devices of {tenant}</caption>
          <thead>
            <tr>
              <th scope="col">Device</th>
              <th scope="col">Enabled</th>
              <th scope="col">Labels</th>
              <th scope="col">Last seen</th>
              {canEdit && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {shown.map((d) => (
              <tr key={d.id}>
                <td>
                  <a href={`#/devices/${enc(d.id)}`}>{d.id}</a>
                </td>
                <td>{d.enabled ? 'yes' : 'no'}</td>
                <td>
                  {Object.entries(d.labels)
                    .map(([k, v]) => `${k}=${v}`)
                    .join(', ')}
                </td>
                <td>{lastSeen(d.lastSeen)}</td>
                {canEdit && (
                  <td>
                    {deleting === d.id ? (
                      <>
                        <button type="button" class="danger" onClick={() => void remove(d.id)}>
                          Confirm delete of {d.id}
                        </button>{' '}
                        <button type="button" onClick={() => setDeleting(undefined)}>
                          Cancel
                        </button>
                      </>
                    ) : (
                      <button type="button" aria-label={`Delete ${d.id}`} onClick={() => setDeleting(d.id)}>
                        Delete
                      </button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  )
}
