// A device's uploaded files on its page, with a download link asked for each on demand: the API
// hands out a short-lived signed URL, so the link carries a signature and never the token.
import { useEffect, useState } from 'preact/hooks'
import type { DeviceFile, FileUrl, Page } from './api.ts'
import { call, enc } from './api.ts'
import { ProblemView } from './problem.tsx'

export interface FilesPanelProps {
  readonly token: string
  readonly tenant: string
  readonly device: string
}

const PAGE = '100'

export const byteSize = (n: number): string =>
  n < 1024
    ? `${n} B`
    : n < 1024 * 1024
      ? `${(n / 1024).toFixed(1)} KiB`
      : `${(n / 1024 / 1024).toFixed(1)} MiB`

export function FilesPanel({ token, tenant, device }: FilesPanelProps) {
  const files = `/tenants/${enc(tenant)}/files`
  const [items, setItems] = useState<DeviceFile[]>([])
  const [next, setNext] = useState<string | null>(null)
  const [loaded, setLoaded] = useState(false)
  const [error, setError] = useState<unknown>()
  const [links, setLinks] = useState<Record<string, FileUrl>>({})

  const load = async (after: string | null): Promise<void> => {
    try {
      const page = await call<Page<DeviceFile>>(token, files, {
        query: { device, limit: PAGE, ...(after === null ? {} : { after }) },
      })
      setItems((list) => (after === null ? page.items : [...list, ...page.items]))
      setNext(page.next)
      setError(undefined)
    } catch (err) {
      setError(err)
    }
    setLoaded(true)
  }

  useEffect(() => {
    void load(null)
  }, [token, files, device])

  const link = async (file: DeviceFile): Promise<void> => {
    try {
      const url = await call<FileUrl>(token, `${files}/${enc(file.id)}/url`)
      setError(undefined)
      setLinks((all) => ({ ...all, [file.id]: url }))
    } catch (err) {
      setError(err)
    }
  }

  return (
    <section class="card" aria-labelledby="files-title">
      <h3 id="files-title">Files</h3>
      <ProblemView error={error} />
      {loaded && items.length === 0 && error === undefined && (
        <p class="empty">
          No files uploaded by this device (see docs/files.md for how a device uploads one).
        </p>
      )}
      {items.length > 0 && (
        <table aria-label="Device files">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Size</th>
              <th scope="col">State</th>
              <th scope="col">Created</th>
              <th scope="col">Download</th>
            </tr>
          </thead>
          <tbody>
            {items.map((f) => {
              const url = links[f.id]
              return (
                <tr key={f.id}>
                  <td>
                    <code>{f.name}</code>
                  </td>
                  <td>{byteSize(f.size)}</td>
                  <td>uploaded {new Date(f.uploadedAt).toLocaleString()}</td>
                  <td>{new Date(f.createdAt).toLocaleString()}</td>
                  <td>
                    {url === undefined ? (
                      <button
                        type="button"
                        aria-label={`Download link for ${f.name}`}
                        onClick={() => void link(f)}
                      >
                        Get link
                      </button>
                    ) : (
                      <>
                        <a href={url.url} download={f.name} rel="noreferrer">
                          Download {f.name}
                        </a>{' '}
                        <span class="hint">until {new Date(url.expiresAt).toLocaleTimeString()}</span>
                      </>
                    )}
                  </td>
                </tr>
              )
            })}
          </tbody>
        </table>
      )}
      {next !== null && (
        <button type="button" onClick={() => void load(next)}>
          More files
        </button>
      )}
    </section>
  )
}
