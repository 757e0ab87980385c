// The downlink URLs TTN sends, checked before they are kept: TTN's downlink queue path for the very
// application and device of the message, https, and no loopback, private or special address
// unless private addresses are allowed (tests).
import { describe, expect, it } from 'vitest'
import { checkDownlinkUrls, hostAllowed } from '../../../adapters/http/ttn/downlink-url.ts'

const ids = { application: 'greenhouse-sensors', device: 'eui-70b3d57ed005a1b2' }
const BASE = 'https://eu1.cloud.thethings.network'
const PATH = '/api/v3/as/applications/greenhouse-sensors/webhooks/tributary/devices/eui-70b3d57ed005a1b2/down'
const push = `${BASE}${PATH}/push`
const replace = `${BASE}${PATH}/replace`

const refused = (p: string | undefined, r: string | undefined, allowPrivate = false): string => {
  const result = checkDownlinkUrls(p, r, ids, allowPrivate)
  if (result.ok) throw new Error(`accepted ${p} ${r}`)
  return result.reason
}

describe('checkDownlinkUrls', () => {
  it('accepts the push and replace URLs of the message’s device, as TTN sends them', () => {
    expect(checkDownlinkUrls(push, replace, ids, false)).toEqual({ ok: true, push, replace })
    // A The Things Stack of one's own, on another public host and port.
    const own = 'https://lns.example.com:8443' + PATH
    expect(checkDownlinkUrls(`${own}/push`, `${own}/replace`, ids, false).ok).toBe(true)
    expect(
      checkDownlinkUrls(`https://8.8.8.8${PATH}/push`, `https://8.8.8.8${PATH}/replace`, ids, false).ok,
    ).toBe(true)
  })

  it('refuses http, a user or password, a query and a fragment', () => {
    expect(refused(push.replace('https:', 'http:'), replace)).toMatch(/X-Downlink-Push is not https/)
    expect(refused(push.replace('https://', 'https://u:p@'), replace)).toMatch(/user or password/)
    expect(refused(`${push}?x=1`, replace)).toMatch(/query or fragment/)
    expect(refused(push, `${replace}#x`)).toMatch(/X-Downlink-Replace has a query or fragment/)
    expect(refused('ftp://x/y', replace)).toMatch(/not https/)
    expect(refused('not a url', replace)).toMatch(/not a URL/)
    expect(refused(undefined, replace)).toMatch(/X-Downlink-Push is missing/)
    expect(refused(push, undefined)).toMatch(/X-Downlink-Replace is missing/)
    expect(refused(`${BASE}/${'a'.repeat(2100)}`, replace)).toMatch(/longer than 2048/)
  })

  it.each([
    'https://127.0.0.1',
    'https://10.1.2.3',
    'https://192.168.1.10:8443',
    'https://169.254.169.254',
    'https://[::1]',
    'https://[fd00::1]',
    'https://[::ffff:127.0.0.1]',
    'https://0.0.0.0',
    'https://localhost',
    'https://api.localhost',
  ])('refuses the loopback, private or special host of %s', (origin) => {
    expect(refused(`${origin}${PATH}/push`, `${origin}${PATH}/replace`)).toMatch(
      /may not target .* special-purpose address .*TRIBUTARY_WEBHOOK_ALLOW_PRIVATE/,
    )
  })

  it('allows private hosts and http only when private addresses are allowed (tests)', () => {
    const local = `http://127.0.0.1:4567${PATH}`
    expect(checkDownlinkUrls(`${local}/push`, `${local}/replace`, ids, true)).toEqual({
      ok: true,
      push: `${local}/push`,
      replace: `${local}/replace`,
    })
  })

  it('refuses any path but the TTN downlink queue of this application and device', () => {
    expect(refused(`${BASE}/api/v3/as/applications/greenhouse-sensors/devices/x/down/push`, replace)).toMatch(
      /not a TTN downlink queue path/,
    )
    expect(refused(`${BASE}/steal`, replace)).toMatch(/not a TTN downlink queue path/)
    expect(refused(`${BASE}${PATH}/push/`, replace)).toMatch(/not a TTN downlink queue path/)
    const other = (from: string, to: string) => push.replace(from, to)
    expect(refused(other('greenhouse-sensors', 'another-app'), replace)).toMatch(/another application/)
    expect(refused(other('eui-70b3d57ed005a1b2', 'eui-0000000000000001'), replace)).toMatch(/another device/)
    expect(refused(other('/tributary/', '/Bad_Id/'), replace)).toMatch(/invalid webhook id/)
  })

  it('refuses swapped URLs and two different webhooks or hosts', () => {
    expect(refused(replace, push)).toMatch(/swapped/)
    expect(refused(push, push)).toMatch(/swapped/)
    expect(refused(push, replace.replace('/tributary/', '/other/'))).toMatch(/different webhooks/)
    expect(refused(push, replace.replace('eu1.', 'nam1.'))).toMatch(/different webhooks/)
  })

  it('never repeats the URL in its reason', () => {
    const secretish = `${BASE}/api/v3/secret-path-part`
    expect(refused(secretish, replace)).not.toContain('secret-path-part')
  })
})

describe('hostAllowed', () => {
  it('lets names through (checked when dialled) and refuses private literals', () => {
    expect(hostAllowed('eu1.cloud.thethings.network', false)).toBe(true)
    expect(hostAllowed('LOCALHOST.', false)).toBe(false)
    expect(hostAllowed('[::1]', false)).toBe(false)
    expect(hostAllowed('1.1.1.1', false)).toBe(true)
    expect(hostAllowed('127.0.0.1', true)).toBe(true)
  })
})
