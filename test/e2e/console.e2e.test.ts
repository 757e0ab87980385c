// The web console as a user drives it: Debian's Chromium (playwright-core) against a running
// `tributary start`, with mosquitto_pub and mosquitto_sub as the device. Sign in with an API token,
// create a device and set its password, watch its telemetry in the spy (payload views, pause and
// resume), see a refused event with its reason, send a command and follow its status, read API
// errors as their problem documents, and check that a reader is offered no edit controls and the
// admin token picks a tenant. The device page shows the device's configuration (set through the
// API, edited in its panel, delivered and applied over HTTP with curl) and a file it uploaded with
// curl, with a download link that carries no token. Every control must have a label; sign-in and navigation work from the
// keyboard. Screenshots of each page go to .cache/console-screenshots (not committed).
import { execFile } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { BrowserContext, Page } from 'playwright-core'
import { chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { curl } from '../helpers/curl.ts'
import type { MqttTributary } from '../helpers/mqtt.ts'
import { ADMIN_TOKEN, mosquitto, startMqttTributary } from '../helpers/mqtt.ts'
import { waitUntil } from '../helpers/wait.ts'

const run = promisify(execFile)
const root = fileURLToPath(new URL('../../', import.meta.url))
const SHOTS = join(root, '.cache', 'console-screenshots')
const CHROMIUM = '/usr/bin/chromium'
const TENANT = 'acme'
const WAIT = { timeout: 20_000 }

let tributary: MqttTributary
let context: BrowserContext
let profile: string
let consoleUrl: string
let managerToken: string
let readerToken: string
const pageErrors: string[] = []

async function apiToken(role: string): Promise<string> {
  const reply = await tributary.api.request('POST', `/tenants/${TENANT}/tokens`, {
    name: `console-${role}`,
    role,
  })
  expect(reply.status).toBe(201)
  return reply.body.secret as string
}

/** The URL of every WebSocket a page opened. */
const socketUrls: string[] = []

async function newPage(): Promise<Page> {
  const page = await context.newPage()
  page.on('console', (m) => {
    if (m.type() === 'error' && m.text().includes('Content Security Policy')) pageErrors.push(m.text())
  })
  page.on('pageerror', (err) => pageErrors.push(err.message))
  page.on('websocket', (ws) => socketUrls.push(ws.url()))
  return page
}

const shot = (page: Page, name: string): Promise<Buffer> =>
  page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true })

/** Controls without an accessible name (aria-label, aria-labelledby, a <label>, or their text). */
const unlabelled = (page: Page): Promise<string[]> =>
  page.evaluate<string[]>(`(() => {
    const named = (el) => {
      if ((el.getAttribute('aria-label') ?? '').trim() !== '') return true
      const by = el.getAttribute('aria-labelledby')
      if (by !== null && (document.getElementById(by)?.textContent ?? '').trim() !== '') return true
      if (el.labels && [...el.labels].some((l) => l.textContent.trim() !== '')) return true
      return (el.tagName === 'BUTTON' || el.tagName === 'A') && el.textContent.trim() !== ''
    }
    return [...document.querySelectorAll('input, select, textarea, button, a[href]')]
      .filter((el) => !named(el))
      .map((el) => el.outerHTML.slice(0, 160))
  })()`)

/** Presses Tab until the focused element is named `name` (its label or text). */
async function tabTo(page: Page, name: string): Promise<void> {
  for (let i = 0; i < 40; i++) {
    await page.keyboard.press('Tab')
    const focused = await page.evaluate<string>(
      `((el) => (el?.getAttribute('aria-label') || el?.textContent || '').trim())(document.activeElement)`,
    )
    if (focused === name) return
  }
  throw new Error(`Tab never reached ${name}`)
}

/** Signs in from the keyboard alone: the token field has focus, Enter submits. */
async function signIn(page: Page, token: string): Promise<void> {
  await page.goto(consoleUrl)
  await page.getByLabel('API token').waitFor(WAIT)
  await shot(page, 'sign-in')
  expect(await page.evaluate<string>('document.activeElement?.getAttribute("name") ?? ""')).toBe('token')
  await page.keyboard.type(token)
  await page.keyboard.press('Enter')
  await page.getByRole('button', { name: 'Sign out' }).waitFor(WAIT)
  expect(page.url()).not.toContain(token)
}

beforeAll(async () => {
  await run(process.execPath, [join(root, 'scripts', 'console-build.ts')], { cwd: root })
  mkdirSync(SHOTS, { recursive: true })
  tributary = await startMqttTributary({})
  consoleUrl = `http://127.0.0.1:${tributary.ports.api}/console`
  await tributary.api.createTenant(TENANT)
  managerToken = await apiToken('manager')
  readerToken = await apiToken('reader')
  const schema = { type: 'object', required: ['celsius'], properties: { celsius: { type: 'number' } } }
  expect((await tributary.api.request('PUT', `/tenants/${TENANT}/schemas/strict`, { schema })).status).toBe(
    201,
  )
  profile = mkdtempSync(join(tmpdir(), 'tributary-chromium-'))
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
})

afterAll(async () => {
  await context?.close()
  await tributary?.proc.stop()
  if (profile !== undefined) rmSync(profile, { recursive: true, force: true })
})

describe('web console (e2e, Chromium)', () => {
  it('is served with a strict policy, cached assets and its problem for a missing file', async () => {
    // The start banner links it.
    await waitUntil(() => tributary.proc.stderr.includes(`Web console: ${consoleUrl}`))
    const page = await fetch(consoleUrl)
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(page.headers.get('cache-control')).toBe('no-cache')
    const policy = page.headers.get('content-security-policy') ?? ''
    expect(policy).toContain("script-src 'self'")
    expect(policy).not.toContain('unsafe-inline')
    const html = await page.text()
    const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)?.[1]
    expect(script).toBeDefined()
    expect(html).not.toMatch(/<script>|<script type="module">/)
    const asset = await fetch(`http://127.0.0.1:${tributary.ports.api}${script}`)
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    const missing = await fetch(`${consoleUrl}/assets/none-123.js`)
    expect(missing.status).toBe(404)
    expect(missing.headers.get('content-type')).toBe('application/problem+json')
  })

  it('signs in with a token, creates a device, spies on its events and refusals, and sends it a command', async () => {
    const page = await newPage()
    await signIn(page, managerToken)
    expect(await page.evaluate<number>('localStorage.length')).toBe(0)
    expect(await page.evaluate<string | null>('sessionStorage.getItem("tributary-console-token")')).toBe(
      managerToken,
    )
    await page.getByText(`Tenant ${TENANT}`).waitFor(WAIT)

    // Devices, reached from the keyboard; an invalid id shows the API's problem next to the form.
    await tabTo(page, 'Devices')
    await page.keyboard.press('Enter')
    await page.getByRole('heading', { name: 'Devices' }).waitFor(WAIT)
    await page.getByText('No devices yet').waitFor(WAIT)
    expect(await unlabelled(page)).toEqual([])
    await page.getByLabel('Device id').fill('bad id!')
    await page.getByRole('button', { name: 'Create device' }).click()
    const refusal = page.getByRole('form', { name: 'Create a device' }).getByRole('alert')
    await refusal.waitFor(WAIT)
    expect(await refusal.textContent()).toMatch(/Invalid request \(400\).*body\.id/)
    await page.getByLabel('Device id').fill('press-7')
    await page.getByLabel('Labels').fill('line=a, site=north')
    await page.getByRole('button', { name: 'Create device' }).click()
    await page.getByRole('link', { name: 'press-7' }).waitFor(WAIT)
    expect(await page.getByRole('row', { name: /press-7/ }).textContent()).toContain('line=a, site=north')
    await shot(page, 'devices')

    // Its password, set on the device page.
    await page.getByRole('link', { name: 'press-7' }).click()
    await page.getByRole('heading', { name: 'Device press-7' }).waitFor(WAIT)
    await page.getByLabel('New password').fill('press-7-secret')
    await page.getByRole('button', { name: 'Set password' }).click()
    await page.getByText('The password is set.').waitFor(WAIT)

    // The spy: telemetry published by the device appears; its payload in every view.
    await page.getByRole('link', { name: 'Live events' }).click()
    await page.getByText('Stream: live').waitFor(WAIT)
    expect(await unlabelled(page)).toEqual([])
    const login = ['-h', '127.0.0.1', '-p', String(tributary.ports.mqtt), '-u', `press-7@${TENANT}`]
    const publish = async (topic: string, message: string): Promise<void> => {
      const result = await mosquitto('mosquitto_pub', [
        ...login,
        '-P',
        'press-7-secret',
        '-q',
        '1',
        '-t',
        topic,
        '-m',
        message,
      ])
      expect(result.code, result.stderr).toBe(0)
    }
    await publish('sensors/temperature', '{"celsius":21.5}')
    const telemetry = page.getByRole('row', {
      name: /io\.tributary\.telemetry\.v1.*press-7.*sensors\/temperature/,
    })
    await telemetry.waitFor(WAIT)
    await telemetry.getByRole('button').click()
    await page.getByRole('button', { name: 'Payload as JSON' }).click()
    const content = page.getByLabel('Event content')
    expect(await content.textContent()).toContain('"celsius": 21.5')
    await page.getByRole('button', { name: 'Payload as hex' }).click()
    expect(await content.textContent()).toContain('7b 22 63 65 6c 73 69 75')
    await page.getByRole('button', { name: 'Event JSON' }).click()
    expect(await content.textContent()).toContain('"subject": "sensors/temperature"')
    await shot(page, 'spy')
    // The spy's socket carries the token in a subprotocol, never in its URL.
    expect(socketUrls.length).toBeGreaterThan(0)
    for (const url of socketUrls) expect(url).not.toContain(managerToken)

    // Telemetry only (not the connection events); paused, a new event is counted but not shown;
    // resumed, it is.
    await page.getByLabel('Type').fill('io.tributary.telemetry.v1')
    await page.getByRole('button', { name: 'Apply' }).click()
    await page.getByText('Stream: live').waitFor(WAIT)
    await page.getByRole('button', { name: 'Pause' }).click()
    await publish('sensors/temperature', '{"celsius":22.5}')
    await page.getByText('1 new kept, not shown').waitFor(WAIT)
    expect(await page.getByRole('row', { name: /telemetry/ }).count()).toBe(0)
    await page.getByRole('button', { name: 'Resume' }).click()
    await page
      .getByRole('row', { name: /telemetry/ })
      .nth(0)
      .waitFor(WAIT)
    expect(await page.getByRole('row', { name: /connection/ }).count()).toBe(0)
    expect(await page.getByRole('row', { name: /telemetry/ }).count()).toBe(1)
    await page.getByLabel('Type').fill('')

    // A device filter on the stream: only that device's events.
    await page.getByLabel('Device', { exact: true }).fill('someone-else')
    await page.getByRole('button', { name: 'Apply' }).click()
    await page.getByText('Stream: live').waitFor(WAIT)
    await page.getByText('No events yet').waitFor(WAIT)
    expect(await page.getByText(`-u someone-else@${TENANT}`).count()).toBe(1)
    await page.getByLabel('Device', { exact: true }).fill('')
    await page.getByRole('button', { name: 'Apply' }).click()

    // A message the channel's schema refuses shows up with its step and reason.
    await page.getByLabel('Show refused events').check()
    await publish('strict', '{"celsius":"warm"}')
    const refused = page.getByRole('row', { name: /press-7.*strict.*validate: schema-invalid/ })
    await refused.waitFor(WAIT)
    await refused.getByRole('button').click()
    await page.getByRole('button', { name: 'Payload as text' }).click()
    expect(await content.textContent()).toContain('{"celsius":"warm"}')
    await shot(page, 'spy-refused')

    // A command to the connected device: delivered, and the page follows its status.
    const received = mosquitto('mosquitto_sub', [
      ...login,
      '-P',
      'press-7-secret',
      '-t',
      'command/#',
      '-C',
      '1',
      '-v',
      '-W',
      '60',
    ])
    await page.getByRole('link', { name: 'Devices' }).click()
    await page.getByRole('link', { name: 'press-7' }).click()
    await page.getByText('Stream: live').waitFor(WAIT)
    await page.getByLabel('Command name').fill('reboot')
    await page.getByLabel('Payload').fill('{"delay":1}')
    await page.getByRole('button', { name: 'Send command' }).click()
    await page
      .getByRole('list', { name: 'Sent commands' })
      .getByText(/delivered/)
      .waitFor({ timeout: 60_000 })
    const sub = await received
    expect(sub.stdout).toContain('command/reboot {"delay":1}')
    expect(await unlabelled(page)).toEqual([])
    await shot(page, 'device')

    // An invalid command name: the problem's title and field next to the form.
    await page.getByLabel('Command name').fill('res')
    await page.getByRole('button', { name: 'Send command' }).click()
    const commandRefusal = page.getByRole('form', { name: 'Send a command' }).getByRole('alert')
    await commandRefusal.waitFor(WAIT)
    expect(await commandRefusal.textContent()).toContain('reserved')
    await page.close()
  })

  it("shows the device's configuration with its delivery status, edits its document, and lists its files", async () => {
    const device = `/tenants/${TENANT}/devices/press-7`
    const http = `http://127.0.0.1:${tributary.ports.http}`
    const effectiveId = async (): Promise<string> => {
      const reply = await tributary.api.request('GET', `${device}/config/effective`)
      expect(reply.status).toBe(200)
      return reply.body.configId as string
    }
    expect((await tributary.api.request('PUT', `/tenants/${TENANT}/config`, { sampling: 60 })).status).toBe(
      200,
    )
    expect((await tributary.api.request('PUT', `${device}/config`, { led: 'on' })).status).toBe(200)
    const first = await effectiveId()

    // A file the device uploads with curl (a token, then the body).
    const bytes = 'boot ok\nsensors ok\n'
    const local = join(profile, 'boot.log')
    writeFileSync(local, bytes)
    const asked = await curl([
      '-u',
      `press-7@${TENANT}:press-7-secret`,
      '-H',
      'content-type: application/json',
      '--data-binary',
      JSON.stringify({ name: 'boot.log', size: bytes.length, contentType: 'text/plain' }),
      `${http}/v1/files/token`,
    ])
    expect(asked.status, asked.body).toBe(201)
    const uploaded = await curl([
      '-H',
      `x-auth-token: ${asked.json.token}`,
      '--upload-file',
      local,
      asked.json.uploadUrl,
    ])
    expect(uploaded.status, uploaded.body).toBe(201)

    const page = await newPage()
    await signIn(page, managerToken)
    await page.getByRole('link', { name: 'Devices' }).click()
    await page.getByRole('link', { name: 'press-7' }).click()
    await page.getByRole('heading', { name: 'Device press-7' }).waitFor(WAIT)
    const state = page.getByLabel('Configuration state')
    await state.getByText(first).waitFor(WAIT)
    expect(await state.textContent()).toMatch(/Statuspending \(not delivered yet\)/)
    expect(await state.textContent()).toContain('tenant v1, device v1')
    const merged = page.getByLabel('Effective configuration')
    expect(JSON.parse((await merged.textContent()) ?? '')).toEqual({ sampling: 60, led: 'on' })

    // Edited in the panel: a new version and a new id, still pending.
    const editor = page.getByLabel(/Device document/)
    expect(JSON.parse(await editor.inputValue())).toEqual({ led: 'on' })
    await editor.fill('{"led":"off","mode":"eco"}')
    await page.getByRole('button', { name: 'Save configuration' }).click()
    await page.getByText('Saved as version 2.').waitFor(WAIT)
    const second = await effectiveId()
    expect(second).not.toBe(first)
    await state.getByText(second).waitFor(WAIT)
    expect(JSON.parse((await merged.textContent()) ?? '')).toEqual({ sampling: 60, led: 'off', mode: 'eco' })
    expect(await state.textContent()).toContain('pending')

    // Not JSON, and a document changed elsewhere since it was read: each refusal next to the editor.
    const form = page.getByRole('form', { name: 'Edit the device configuration' })
    await editor.fill('{"led":')
    await page.getByRole('button', { name: 'Save configuration' }).click()
    await form.getByRole('alert').getByText('Not JSON').waitFor(WAIT)
    expect((await tributary.api.request('PUT', `${device}/config`, { led: 'blink' })).status).toBe(200)
    await editor.fill('{"led":"on"}')
    await page.getByRole('button', { name: 'Save configuration' }).click()
    await form
      .getByRole('alert')
      .getByText(/\(412\)/)
      .waitFor(WAIT)
    const third = await effectiveId()

    // The device fetches it over HTTP and reports it applied: the panel says so when refreshed.
    const login = ['-u', `press-7@${TENANT}:press-7-secret`]
    const fetched = await curl([...login, `${http}/v1/config`])
    expect(fetched.status).toBe(200)
    expect(fetched.json.configId).toBe(third)
    await page.getByRole('button', { name: 'Refresh configuration' }).click()
    await state.getByText(/over http/).waitFor(WAIT)
    expect(await state.textContent()).toContain('pending (delivered, not reported yet)')
    const report = JSON.stringify({ configId: third, statusCode: 200 })
    const applied = await curl([
      ...login,
      '-H',
      'content-type: application/json',
      '-d',
      report,
      `${http}/v1/config/applied`,
    ])
    expect(applied.status).toBe(202)
    await page.getByRole('button', { name: 'Refresh configuration' }).click()
    await state.getByText('applied (reported 200)').waitFor(WAIT)

    // The uploaded file, and a link to download it that carries no token.
    const files = page.getByRole('table', { name: 'Device files' })
    const row = files.getByRole('row', { name: /boot\.log/ })
    await row.waitFor(WAIT)
    expect(await row.textContent()).toMatch(/boot\.log\d+ Buploaded/)
    await page.getByRole('button', { name: 'Download link for boot.log' }).click()
    const link = page.getByRole('link', { name: 'Download boot.log' })
    await link.waitFor(WAIT)
    const href = (await link.getAttribute('href')) ?? ''
    expect(href).not.toContain(managerToken)
    const downloaded = await curl([href])
    expect(downloaded.status).toBe(200)
    expect(downloaded.body).toBe(bytes)
    expect(await unlabelled(page)).toEqual([])
    await shot(page, 'device-config')
    await page.close()
  })

  it('offers a reader no edit controls, and the admin token a tenant picker', async () => {
    const reader = await newPage()
    await signIn(reader, readerToken)
    await reader.getByRole('link', { name: 'Devices' }).click()
    await reader.getByRole('link', { name: 'press-7' }).waitFor(WAIT)
    const edits = /create|delete|set password|send command|save configuration/i
    expect(await reader.getByRole('button', { name: edits }).count()).toBe(0)
    await shot(reader, 'devices-reader')
    await reader.getByRole('link', { name: 'press-7' }).click()
    await reader.getByRole('heading', { name: 'Device press-7' }).waitFor(WAIT)
    await reader.getByText('Stream: live').waitFor(WAIT)
    expect(await reader.getByRole('button', { name: edits }).count()).toBe(0)
    expect(await reader.getByLabel('New password').count()).toBe(0)
    await reader.getByLabel('Configuration state').waitFor(WAIT)
    expect(await reader.getByLabel(/Device document/).count()).toBe(0)
    await reader.getByRole('row', { name: /boot\.log/ }).waitFor(WAIT)
    await reader.getByRole('button', { name: 'Sign out' }).click()
    await reader.getByLabel('API token').waitFor(WAIT)
    expect(await reader.evaluate<number>('sessionStorage.length')).toBe(0)
    await reader.close()

    const admin = await newPage()
    await signIn(admin, ADMIN_TOKEN)
    await admin.getByText('Choose a tenant above').waitFor(WAIT)
    await admin.getByLabel('Tenant').selectOption(TENANT)
    await admin.getByText('Stream: live').waitFor(WAIT)
    await admin.getByRole('link', { name: 'Devices' }).click()
    await admin.getByRole('link', { name: 'press-7' }).waitFor(WAIT)
    expect(await admin.getByRole('button', { name: 'Create device' }).count()).toBe(1)
    expect(await unlabelled(admin)).toEqual([])
    await shot(admin, 'devices-admin')
    await admin.close()
    expect(pageErrors).toEqual([])
  })
})
