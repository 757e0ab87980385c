// A device's configuration on its page: the effective document with the levels merged into it,
// whether the device has it (delivered, applied or rejected), and for managers an editor of the
// device's own level, written with If-Match so that a concurrent change is refused, not lost.
import { useEffect, useState } from 'preact/hooks'
import type { ConfigDocument, EffectiveConfig } from './api.ts'
import { ApiError, call } from './api.ts'
import type { ConfigLevel } from './types.ts'
import { ProblemView } from './problem.tsx'

export interface ConfigPanelProps {
  readonly token: string
  /** `/tenants/{t}/devices/{d}`, encoded. */
  readonly base: string
  readonly canEdit: boolean
}

const when = (at: string): string => new Date(at).toLocaleString()

const levelName = (l: ConfigLevel): string =>
  l.level === 'app-version'
    ? `app version ${l.appVersion ?? ''}`
    : l.level === 'rule'
      ? `rule ${l.rule ?? ''}`
      : l.level

/** applied or rejected when the device reported the desired id; pending until then. */
export function configStatus(e: EffectiveConfig): { status: string; note: string } {
  const applied = e.state?.applied ?? null
  if (applied !== null && applied.configId === e.configId) {
    const reason = applied.reasonPhrase === null ? '' : `: ${applied.reasonPhrase}`
    return applied.statusCode < 300
      ? { status: 'applied', note: `reported ${applied.statusCode}${reason}` }
      : { status: 'rejected', note: `reported ${applied.statusCode}${reason}` }
  }
  if (e.state?.delivered.configId === e.configId)
    return { status: 'pending', note: 'delivered, not reported yet' }
  return { status: 'pending', note: 'not delivered yet' }
}

export function ConfigPanel({ token, base, canEdit }: ConfigPanelProps) {
  const [effective, setEffective] = useState<EffectiveConfig>()
  const [document, setDocument] = useState<ConfigDocument>()
  const [loadError, setLoadError] = useState<unknown>()
  const [draft, setDraft] = useState('')
  const [saveError, setSaveError] = useState<unknown>()
  const [saved, setSaved] = useState<number>()
  const [generation, setGeneration] = useState(0)

  useEffect(() => {
    let current = true
    Promise.all([
      call<EffectiveConfig>(token, `${base}/config/effective`),
      call<ConfigDocument>(token, `${base}/config`),
    ]).then(
      ([e, d]) => {
        if (!current) return
        setEffective(e)
        setDocument(d)
        setDraft(JSON.stringify(d.config, null, 2))
        setLoadError(undefined)
      },
      (err: unknown) => current && setLoadError(err),
    )
    return () => {
      current = false
    }
  }, [token, base, generation])

  const save = async (e: Event): Promise<void> => {
    e.preventDefault()
    setSaved(undefined)
    let config: unknown
    try {
      config = JSON.parse(draft) as unknown
    } catch (err) {
      setSaveError(new ApiError({ title: 'Not JSON', status: 0, detail: String(err) }))
      return
    }
    try {
      const written = await call<ConfigDocument>(token, `${base}/config`, {
        method: 'PUT',
        json: config,
        ifMatch: `"${document?.version ?? 0}"`,
      })
      setSaveError(undefined)
      setSaved(written.version)
      setGeneration((g) => g + 1)
    } catch (err) {
      setSaveError(err)
    }
  }

  const state = effective?.state ?? null
  const status = effective === undefined ? undefined : configStatus(effective)
  return (
    <section class="card" aria-labelledby="config-title">
      <h3 id="config-title">Configuration</h3>
      <ProblemView error={loadError} />
      {effective !== undefined && status !== undefined && (
        <>
          <dl class="facts" aria-label="Configuration state">
            <dt>Config id</dt>
            <dd>
              <code>{effective.configId}</code>
            </dd>
            <dt>Status</dt>
            <dd>
              <strong class={`config-${status.status}`}>{status.status}</strong> ({status.note})
            </dd>
            <dt>Levels merged</dt>
            <dd>
              {effective.levels
                .map((l) => `${levelName(l)} v${l.version}${l.version === 0 ? ' (never written)' : ''}`)
                .join(', ')}
            </dd>
            <dt>Last delivered</dt>
            <dd>
              {state === null
                ? 'never'
                : `${state.delivered.configId} at ${when(state.delivered.time)} over ${state.delivered.protocol}`}
            </dd>
            <dt>Last reported</dt>
            <dd>
              {state?.applied == null
                ? 'never'
                : `${state.applied.configId}: ${state.applied.statusCode}${
                    state.applied.reasonPhrase === null ? '' : ` ${state.applied.reasonPhrase}`
                  } at ${when(state.applied.time)}`}
            </dd>
          </dl>
          <pre aria-label="Effective configuration">{JSON.stringify(effective.config, null, 2)}</pre>
          <button type="button" onClick={() => setGeneration((g) => g + 1)}>
            Refresh configuration
          </button>
        </>
      )}
      {canEdit && document !== undefined && (
        <form aria-label="Edit the device configuration" onSubmit={(e) => void save(e)}>
          <label>
            Device document (JSON, version {document.version})
            <textarea
              name="deviceConfig"
              rows={8}
              spellcheck={false}
              value={draft}
              onInput={(e) => setDraft(e.currentTarget.value)}
            />
          </label>
          <button type="submit">Save configuration</button>
          {saved !== undefined && <p role="status">Saved as version {saved}.</p>}
          <ProblemView error={saveError} />
        </form>
      )}
    </section>
  )
}
