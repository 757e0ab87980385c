// The console's static files on the API app: the page and hashed assets with their types, caching
// and policy; names outside the build refused; a missing build answered with how to make it.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createApiApp } from '../../api/app.ts'
import { consoleAddress } from '../../api/console.ts'
import { createBearerAuthenticator } from '../../core/auth/bearer.ts'
import { createOidcVerifier } from '../../core/auth/oidc.ts'
import { silentLogger } from '../../core/log.ts'
import { noLookups, stubRegistry } from './stubs.ts'

const dir = mkdtempSync(join(tmpdir(), 'tributary-console-'))
mkdirSync(join(dir, 'dist', 'assets'), { recursive: true })
writeFileSync(join(dir, 'dist', 'index.html'), '<!doctype html><title>console</title>')
writeFileSync(join(dir, 'dist', 'assets', 'index-AbC123.js'), 'export {}')
writeFileSync(join(dir, 'dist', 'assets', 'index-AbC123.map'), '{}')
writeFileSync(join(dir, 'secret.txt'), 'not served')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const appFor = (consoleDir: string) =>
  createApiApp({
    registry: stubRegistry(),
    auth: createBearerAuthenticator({
      lookups: noLookups,
      oidc: createOidcVerifier({ jwksCacheMs: 60_000, log: silentLogger }),
    }),
    lookups: noLookups,
    maxBodyBytes: 65_536,
    log: silentLogger,
    consoleDir,
  }).app
const app = appFor(join(dir, 'dist'))

describe('console files', () => {
  it('serves the page at /console and /console/, never cached, under a policy without inline scripts', async () => {
    for (const path of ['/console', '/console/']) {
      const res = await app.request(path)
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8')
      expect(res.headers.get('cache-control')).toBe('no-cache')
      expect(res.headers.get('x-content-type-options')).toBe('nosniff')
      const policy = res.headers.get('content-security-policy') ?? ''
      expect(policy).toMatch(/script-src 'self'(;|$)/)
      expect(policy).toContain("frame-ancestors 'none'")
      expect(policy).not.toContain('unsafe')
      expect(await res.text()).toContain('<title>console</title>')
    }
  })

  it('serves hashed assets with their type, cached for a year', async () => {
    const res = await app.request('/console/assets/index-AbC123.js')
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    expect(await res.text()).toBe('export {}')
  })

  it('refuses names outside the build, unknown types and missing files with a problem', async () => {
    for (const path of [
      '/console/assets/..%2F..%2Fsecret.txt',
      '/console/assets/.hidden',
      '/console/assets/index-AbC123.map',
      '/console/assets/missing.js',
      '/console/secret.txt',
    ]) {
      const res = await app.request(path)
      expect(res.status, path).toBe(404)
      expect(res.headers.get('content-type'), path).toBe('application/problem+json')
      expect(await res.text(), path).not.toContain('not served')
    }
  })

  it('says how to build the console when it is not built', async () => {
    const res = await appFor(join(dir, 'none')).request('/console')
    expect(res.status).toBe(404)
    expect(((await res.json()) as { detail: string }).detail).toContain('npm run console:build')
  })

  it('names the address a person opens', () => {
    expect(consoleAddress('0.0.0.0', 8080)).toBe('http://127.0.0.1:8080/console')
    expect(consoleAddress('::', 8080)).toBe('http://127.0.0.1:8080/console')
    expect(consoleAddress('::1', 8080)).toBe('http://[::1]:8080/console')
    expect(consoleAddress('10.0.0.5', 80)).toBe('http://10.0.0.5:80/console')
  })
})
