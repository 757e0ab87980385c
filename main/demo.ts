// `tributary start --demo`: seeds tenant `demo` with device `device1` (password `secret`) and an
// API token, gives the process an admin token and lets webhooks reach local receivers. The tokens
// are kept in `<data dir>/demo.json` (owner-only), so a restart on the same data dir keeps them.
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import type { CallerLookups } from '../core/auth/bearer.ts'
import { variables } from '../core/config/schema.ts'
import { isTributaryError } from '../core/errors.ts'
import type { RegistryService } from '../core/registry/service.ts'

export const DEMO_TENANT = 'demo'
export const DEMO_DEVICE = 'device1'
export const DEMO_PASSWORD = 'secret'
export const DEMO_FILE = 'demo.json'
const DEMO_TOKEN_NAME = 'demo'

/** What the demo keeps between runs. */
export interface DemoState {
  /** The admin token the demo gave the process (absent when the user set TRIBUTARY_ADMIN_TOKEN). */
  adminToken?: string | undefined
  /** The demo tenant's API token. */
  apiToken?: string | undefined
}

export interface DemoEnvironment {
  readonly env: Record<string, string | undefined>
  readonly file: string
  readonly state: DemoState
  /** True when the demo turned TRIBUTARY_WEBHOOK_ALLOW_PRIVATE on (the user left it unset). */
  readonly allowsPrivateWebhooks: boolean
  /** The admin token the demo set; undefined when the user set TRIBUTARY_ADMIN_TOKEN. */
  readonly adminToken: string | undefined
}

const isSet = (value: string | undefined): value is string => value !== undefined && value.trim() !== ''

async function readState(file: string): Promise<DemoState> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw err
  }
  try {
    const parsed = JSON.parse(text) as Record<string, unknown>
    const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)
    return { adminToken: str(parsed['adminToken']), apiToken: str(parsed['apiToken']) }
  } catch {
    throw new Error(`${file} is not valid JSON: fix or delete it (the demo then makes new tokens)`)
  }
}

/** Writes the state readable by its owner only, replacing the file in one step. */
export async function saveDemoState(file: string, state: DemoState): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`
  const handle = await open(temporary, 'w', 0o600)
  try {
    await handle.writeFile(`${JSON.stringify(state, null, 2)}\n`)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temporary, file)
  // An older file may have been made with wider permissions.
  await chmod(file, 0o600)
}

/**
 * The environment of a demo run: the stored (or a new) admin token unless the user set one, and
 * webhooks allowed to private addresses unless the user decided. Listener ports move by themselves
 * (main/ports.ts), as on every start.
 */
export async function demoEnvironment(
  env: Readonly<Record<string, string | undefined>>,
): Promise<DemoEnvironment> {
  const dataDir = isSet(env['TRIBUTARY_DATA_DIR'])
    ? env['TRIBUTARY_DATA_DIR']
    : variables.dataDir.defaultText!
  await mkdir(dataDir, { recursive: true })
  const file = join(dataDir, DEMO_FILE)
  const state = await readState(file)
  const out: Record<string, string | undefined> = { ...env }
  let adminToken: string | undefined
  if (!isSet(env['TRIBUTARY_ADMIN_TOKEN'])) {
    adminToken = state.adminToken ?? `demo-admin-${randomBytes(24).toString('base64url')}`
    out['TRIBUTARY_ADMIN_TOKEN'] = adminToken
    if (state.adminToken !== adminToken) {
      state.adminToken = adminToken
      await saveDemoState(file, state)
    }
  }
  const allowsPrivateWebhooks = !isSet(env['TRIBUTARY_WEBHOOK_ALLOW_PRIVATE'])
  if (allowsPrivateWebhooks) out['TRIBUTARY_WEBHOOK_ALLOW_PRIVATE'] = 'true'
  return { env: out, file, state, allowsPrivateWebhooks, adminToken }
}

async function ignoreConflict<T>(create: () => Promise<T>): Promise<void> {
  try {
    await create()
  } catch (err) {
    if (!isTributaryError(err, 'REGISTRY_CONFLICT')) throw err
  }
}

/**
 * Creates what the demo needs, or leaves it as it is when it exists. The stored API token is kept
 * while it is valid; otherwise the previous demo tokens are replaced by a new one, stored.
 */
export async function seedDemo(
  registry: RegistryService,
  lookups: Pick<CallerLookups, 'apiToken'>,
  demo: Pick<DemoEnvironment, 'file' | 'state'>,
): Promise<{ apiToken: string }> {
  // `secret` is shorter than the default password policy allows; the demo tenant relaxes it.
  const settings = { passwordMinLength: DEMO_PASSWORD.length }
  await ignoreConflict(() => registry.createTenant(DEMO_TENANT, { enabled: true, settings }))
  const tenant = await registry.getTenant(DEMO_TENANT)
  if (tenant.settings['passwordMinLength'] !== settings.passwordMinLength) {
    await registry.updateTenant(DEMO_TENANT, { settings: { ...tenant.settings, ...settings } })
  }
  await ignoreConflict(() =>
    registry.createDevice(DEMO_TENANT, DEMO_DEVICE, { enabled: true, labels: { demo: 'true' } }),
  )
  await registry.setPassword(DEMO_TENANT, DEMO_DEVICE, DEMO_PASSWORD)
  const stored = demo.state.apiToken
  if (stored !== undefined && (await lookups.apiToken(stored))?.tenant === DEMO_TENANT)
    return { apiToken: stored }
  let after: string | undefined
  do {
    const page = await registry.listApiTokens(DEMO_TENANT, { limit: 1000, after })
    for (const token of page.items) {
      if (token.name === DEMO_TOKEN_NAME) await registry.deleteApiToken(DEMO_TENANT, token.id)
    }
    after = page.next ?? undefined
  } while (after !== undefined)
  const created = await registry.createApiToken(DEMO_TENANT, { name: DEMO_TOKEN_NAME, role: 'admin' })
  demo.state.apiToken = created.secret
  await saveDemoState(demo.file, demo.state)
  return { apiToken: created.secret }
}
