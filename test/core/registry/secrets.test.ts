// Secrets at rest: scrypt password hashes, AES-256-GCM with the registry key, bearer tokens stored
// as hashes, and where the registry key comes from.
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { isTributaryError } from '../../../core/errors.ts'
import { uuidv7 } from '../../../core/events/ids.ts'
import { createSecrets, loadRegistryKey } from '../../../core/registry/secrets.ts'

const key = randomBytes(32)
// Cheap scrypt for the tests that are not about its cost; verification reads parameters from the hash.
const secrets = createSecrets(key, { scryptLogN: 10 })

describe('password hashes', () => {
  it('are PHC-like scrypt strings with the documented default parameters', async () => {
    const hash = await createSecrets(key).hashPassword('correct horse')
    expect(hash).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/)
    expect(hash).not.toContain('correct horse')
    expect(await secrets.verifyPassword('correct horse', hash)).toBe(true)
  })

  it('verify the right password only, with a fresh salt per hash', async () => {
    const a = await secrets.hashPassword('s3cret-pass')
    const b = await secrets.hashPassword('s3cret-pass')
    expect(a).not.toBe(b)
    expect(await secrets.verifyPassword('s3cret-pass', a)).toBe(true)
    expect(await secrets.verifyPassword('s3cret-pass', b)).toBe(true)
    expect(await secrets.verifyPassword('s3cret-Pass', a)).toBe(false)
    expect(await secrets.verifyPassword('', a)).toBe(false)
  })

  it('refuse passwords over 256 characters (bounded work), when hashing and verifying', async () => {
    const long = 'x'.repeat(257)
    await expect(secrets.hashPassword(long)).rejects.toThrow(/too long/)
    const hash = await secrets.hashPassword('x'.repeat(256))
    expect(await secrets.verifyPassword('x'.repeat(256), hash)).toBe(true)
    expect(await secrets.verifyPassword(long, hash)).toBe(false)
  })

  it('treat unreadable or out-of-bounds hashes as a mismatch, never an exception', async () => {
    const hash = await secrets.hashPassword('s3cret-pass')
    expect(await secrets.verifyPassword('s3cret-pass', 'plain-text')).toBe(false)
    expect(await secrets.verifyPassword('s3cret-pass', hash.replace('ln=10', 'ln=30'))).toBe(false)
    expect(await secrets.verifyPassword('s3cret-pass', hash.replace('r=8', 'r=99'))).toBe(false)
    expect(await secrets.verifyPassword('s3cret-pass', hash.slice(0, -8) + 'AAAAAAA=')).toBe(false)
  })

  it('reject an invalid cost or key length up front', () => {
    expect(() => createSecrets(key, { scryptLogN: 30 })).toThrow(RangeError)
    expect(() => createSecrets(randomBytes(16))).toThrow(/32 bytes/)
  })
})

describe('encryption with the registry key', () => {
  it('round-trips in the versioned v1.<iv>.<tag>.<ct> format with a fresh IV each time', () => {
    const plain = randomBytes(32)
    const a = secrets.encrypt(plain, 'dev@acme')
    const b = secrets.encrypt(plain, 'dev@acme')
    expect(a).toMatch(/^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/)
    expect(a).not.toBe(b)
    expect(a).not.toContain(plain.toString('base64url'))
    expect(secrets.decrypt(a, 'dev@acme').equals(plain)).toBe(true)
  })

  it('fails for another context, another key, altered bytes or another format', () => {
    const sealed = secrets.encrypt(Buffer.from('psk key'), 'dev@acme')
    expect(() => secrets.decrypt(sealed, 'other@acme')).toThrow()
    expect(() => secrets.decrypt(sealed)).toThrow()
    expect(() => createSecrets(randomBytes(32)).decrypt(sealed, 'dev@acme')).toThrow()
    const parts = sealed.split('.')
    const ct = Buffer.from(parts[3]!, 'base64url')
    ct[0] = ct[0]! ^ 1
    expect(() =>
      secrets.decrypt([...parts.slice(0, 3), ct.toString('base64url')].join('.'), 'dev@acme'),
    ).toThrow()
    expect(() => secrets.decrypt(sealed.replace(/^v1/, 'v2'), 'dev@acme')).toThrow(/v1/)
  })
})

describe('bearer tokens', () => {
  it('carry 32 random bytes; only their SHA-256 is meant for storage', () => {
    const { secret, hash } = secrets.newTokenSecret()
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(hash).toBe(createHash('sha256').update(secret).digest('hex'))
    expect(secrets.newTokenSecret().secret).not.toBe(secret)
  })

  it('format and parse back, even when the secret holds _ and -', () => {
    const id = uuidv7()
    const secret = `_-${'a'.repeat(39)}_-`
    const token = secrets.formatToken('device', id, secret)
    expect(token).toBe(`tdt_${id}_${secret}`)
    expect(secrets.parseToken(token)).toEqual({ kind: 'device', id, secret })
    expect(secrets.parseToken(secrets.formatToken('api', id, secret))).toEqual({ kind: 'api', id, secret })
  })

  it('parse only well-formed tokens of our two kinds', () => {
    const id = uuidv7()
    const secret = secrets.newTokenSecret().secret
    for (const bad of [
      '',
      `xyz_${id}_${secret}`,
      `tdt_${id}_${secret.slice(1)}`,
      `tdt_${id}_${secret}x`,
      `tdt__${secret}`,
      `tdt_${id}`,
      `tdt_${id}_${secret} `,
      `tdt_${'a'.repeat(200)}_${secret}`,
      `Bearer tdt_${id}_${secret}`,
    ]) {
      expect(secrets.parseToken(bad), bad).toBeUndefined()
    }
  })

  it('verify a presented secret against the stored hash', () => {
    const { secret, hash } = secrets.newTokenSecret()
    expect(secrets.verifyTokenSecret(secret, hash)).toBe(true)
    expect(secrets.verifyTokenSecret(secrets.newTokenSecret().secret, hash)).toBe(false)
    expect(secrets.verifyTokenSecret(secret, hash.slice(2))).toBe(false)
    expect(secrets.verifyTokenSecret(secret, 'not hex')).toBe(false)
  })
})

describe('loadRegistryKey', () => {
  const dirs: string[] = []
  const tempDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tributary-key-'))
    dirs.push(dir)
    return dir
  }
  afterEach(async () => {
    await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
  })

  it('takes a configured base64 key of 32 bytes', async () => {
    const configured = randomBytes(32)
    const loaded = await loadRegistryKey({
      dataDir: await tempDir(),
      registryKey: configured.toString('base64'),
      databaseUrl: 'postgres://x@127.0.0.1/test',
    })
    expect(loaded.equals(configured)).toBe(true)
  })

  it('refuses a configured key that is not 32 bytes of base64, naming the variable', async () => {
    const dataDir = await tempDir()
    for (const registryKey of [
      randomBytes(16).toString('base64'),
      'not base64!',
      randomBytes(33).toString('base64'),
    ]) {
      const err = await loadRegistryKey({ dataDir, registryKey }).catch((e: unknown) => e)
      expect(isTributaryError(err, 'CONFIG_INVALID')).toBe(true)
      expect((err as Error).message).toContain('TRIBUTARY_REGISTRY_KEY')
    }
  })

  it('generates a key once into <dataDir>/registry.key (0600) and reuses it', async () => {
    const dataDir = join(await tempDir(), 'nested')
    const [a, b] = await Promise.all([loadRegistryKey({ dataDir }), loadRegistryKey({ dataDir })])
    expect(a.length).toBe(32)
    expect(a.equals(b)).toBe(true)
    const file = join(dataDir, 'registry.key')
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect(Buffer.from((await readFile(file, 'utf8')).trim(), 'base64').equals(a)).toBe(true)
    expect((await loadRegistryKey({ dataDir })).equals(a)).toBe(true)
  })

  it('fails clearly on a damaged key file rather than making a new key', async () => {
    const dataDir = await tempDir()
    await writeFile(join(dataDir, 'registry.key'), 'short\n')
    await expect(loadRegistryKey({ dataDir })).rejects.toThrow(/registry\.key must be 32 bytes/)
  })

  it('requires a configured key with PostgreSQL: processes sharing a database share the key', async () => {
    const dataDir = await tempDir()
    const err = await loadRegistryKey({ dataDir, databaseUrl: 'postgres://x@127.0.0.1/test' }).catch(
      (e: unknown) => e,
    )
    expect(isTributaryError(err, 'CONFIG_INVALID')).toBe(true)
    expect((err as Error).message).toMatch(/set|required/)
    expect((err as Error).message).toContain('TRIBUTARY_REGISTRY_KEY')
  })
})
