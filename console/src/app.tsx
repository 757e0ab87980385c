// The console's shell: sign in with an API token (or the admin token, which then picks a tenant),
// the navigation, and the page the location's hash names (#/spy, #/devices, #/devices/<id>).
import { useEffect, useState } from 'preact/hooks'
import type { Identity, Page } from './api.ts'
import { call } from './api.ts'
import { DevicePage } from './device.tsx'
import { Devices } from './devices.tsx'
import { ProblemView } from './problem.tsx'
import { canEdit, session } from './session.ts'
import { EventStream } from './spy.tsx'

function useHash(): string {
  const [hash, setHash] = useState(location.hash)
  useEffect(() => {
    const changed = (): void => setHash(location.hash)
    addEventListener('hashchange', changed)
    return () => removeEventListener('hashchange', changed)
  }, [])
  return hash
}

function SignIn({ onSignedIn }: { onSignedIn: (token: string, identity: Identity) => void }) {
  const [token, setToken] = useState('')
  const [error, setError] = useState<unknown>()
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault()
    try {
      const identity = await call<Identity>(token.trim(), '/whoami')
      onSignedIn(token.trim(), identity)
    } catch (err) {
      setError(err)
    }
  }
  return (
    <main class="signin">
      <h1>Tributary console</h1>
      <form onSubmit={(e) => void submit(e)} aria-label="Sign in">
        <label>
          API token
          <input
            type="password"
            name="token"
            autocomplete="off"
            required
            autofocus
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
          />
        </label>
        <p class="hint">
          An API token of your tenant (<code>tat_…</code>) or the admin token. It stays in this tab only
          (session storage).
        </p>
        <button type="submit">Sign in</button>
        <ProblemView error={error} />
      </form>
    </main>
  )
}

function TenantPicker(props: { token: string; tenant: string | undefined; onPick: (t: string) => void }) {
  const [tenants, setTenants] = useState<string[]>()
  const [error, setError] = useState<unknown>()
  useEffect(() => {
    call<Page<{ id: string }>>(props.token, '/tenants', { query: { limit: '1000' } }).then(
      (page) => setTenants(page.items.map((t) => t.id)),
      setError,
    )
  }, [props.token])
  return (
    <>
      <label class="inline">
        Tenant
        <select
          name="tenant"
          value={props.tenant ?? ''}
          onChange={(e) => props.onPick(e.currentTarget.value)}
        >
          <option value="" disabled>
            choose a tenant
          </option>
          {(tenants ?? []).map((t) => (
            <option key={t} value={t}>
              {t}
            </option>
          ))}
        </select>
      </label>
      {tenants !== undefined && tenants.length === 0 && (
        <span class="hint">No tenants yet: npx tributary tenant create acme</span>
      )}
      <ProblemView error={error} />
    </>
  )
}

export function App() {
  const [token, setToken] = useState(session.token())
  const [identity, setIdentity] = useState<Identity>()
  const [tenant, setTenant] = useState(session.tenant())
  const [restoreError, setRestoreError] = useState<unknown>()
  const hash = useHash()

  // A reload keeps the tab's token: ask again who it is.
  useEffect(() => {
    if (token === undefined || identity !== undefined) return
    call<Identity>(token, '/whoami').then(setIdentity, (err: unknown) => {
      session.clear()
      setToken(undefined)
      setRestoreError(err)
    })
  }, [token, identity])

  const signOut = (): void => {
    session.clear()
    setToken(undefined)
    setIdentity(undefined)
    setTenant(undefined)
  }

  if (token === undefined) {
    return (
      <>
        <SignIn
          onSignedIn={(t, who) => {
            session.save(t)
            setToken(t)
            setIdentity(who)
            if (who.tenant !== null) setTenant(who.tenant)
          }}
        />
        <ProblemView error={restoreError} />
      </>
    )
  }
  if (identity === undefined) return <p role="status">Signing in…</p>

  const active = identity.tenant ?? tenant
  const edit = canEdit(identity)
  const device = /^#\/devices\/(.+)$/.exec(hash)?.[1]
  const page = device !== undefined ? 'device' : hash === '#/devices' ? 'devices' : 'spy'
  return (
    <>
      <header>
        <h1>Tributary console</h1>
        <nav aria-label="Main">
          <a href="#/spy" aria-current={page === 'spy' ? 'page' : undefined}>
            Live events
          </a>
          <a href="#/devices" aria-current={page === 'devices' || page === 'device' ? 'page' : undefined}>
            Devices
          </a>
        </nav>
        <div class="who">
          {identity.globalAdmin ? (
            <TenantPicker
              token={token}
              tenant={tenant}
              onPick={(t) => {
                session.chooseTenant(t)
                setTenant(t)
              }}
            />
          ) : (
            <span>
              Tenant <strong>{identity.tenant}</strong>
            </span>
          )}
          <span class="role">{identity.globalAdmin ? 'admin token' : identity.roles.join(', ')}</span>
          <button type="button" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main>
        {active === undefined ? (
          <p class="empty">Choose a tenant above to see its events and devices.</p>
        ) : page === 'device' && device !== undefined ? (
          <DevicePage
            key={`${active}/${device}`}
            token={token}
            tenant={active}
            id={decodeURIComponent(device)}
            canEdit={edit}
          />
        ) : page === 'devices' ? (
          <Devices key={active} token={token} tenant={active} canEdit={edit} />
        ) : (
          <>
            <h2>Live events</h2>
            <EventStream key={active} token={token} tenant={active} />
          </>
        )}
      </main>
    </>
  )
}
