// The registry's secrets at rest: scrypt password hashes, AES-256-GCM encryption of PSK keys with
// the registry key, and random bearer tokens of which only a SHA-256 of the secret part is stored.
import type { BinaryLike, ScryptOptions } from 'node:crypto'
import { link, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { TributaryError } from '../errors.ts'
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  randomBytes,
  scrypt,
  timingSafeEqual,
} from 'node:crypto'

export const PASSWORD_MAX_LENGTH = 256
/** Device tokens authenticate devices, API tokens applications; the prefix says which. */
export const TOKEN_PREFIXES = { device: 'tdt', api: 'tat' } as const
export type TokenKind = keyof typeof TOKEN_PREFIXES

export interface ParsedToken {
  readonly kind: TokenKind
  /** The public part: the credential or API token id the store looks it up by. */
  readonly id: string
  readonly secret: string
}

export interface Secrets {
  hashPassword(password: string): Promise<string>
  /** False for a wrong password and for a hash it cannot read; never throws on input. */
  verifyPassword(password: string, hash: string): Promise<boolean>
  /** `context` is bound as associated data: a ciphertext only decrypts under the same context. */
  encrypt(plaintext: Buffer, context?: string): string
  /** Throws when the ciphertext was altered, made with another key or for another context. */
  decrypt(ciphertext: string, context?: string): Buffer
  /** A new `tdt_`/`tat_` secret with the hash to store; the token is formatToken(kind, id, secret). */
  newTokenSecret(): { secret: string; hash: string }
  formatToken(kind: TokenKind, id: string, secret: string): string
  /** Splits a token; undefined when it is not one of ours. */
  parseToken(token: string): ParsedToken | undefined
  hashTokenSecret(secret: string): string
  /** Constant-time comparison of a presented secret with a stored hash. */
  verifyTokenSecret(secret: string, hash: string): boolean
}

export interface SecretsOptions {
  /** log2 of scrypt's N for new hashes (default 15: 32 MiB and ~100 ms per hash). */
  readonly scryptLogN?: number | undefined
}

const SCRYPT_KEY_BYTES = 32
const SALT_BYTES = 16
const IV_BYTES = 12
const TAG_BYTES = 16
// Bounds on parameters read back from a stored hash, so a tampered row cannot ask for unbounded work.
const SCRYPT_LIMITS = { lnMin: 10, lnMax: 20, rMax: 16, pMax: 4 }
const PHC = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/
const CIPHERTEXT = /^v1\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)$/
// 32 random bytes in base64url are 43 characters; ids are the store's UUIDs.
const TOKEN = /^(tdt|tat)_([0-9A-Za-z-]{1,64})_([A-Za-z0-9_-]{43})$/

function scryptAsync(password: BinaryLike, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, SCRYPT_KEY_BYTES, options, (err, key) => (err ? reject(err) : resolve(key))),
  )
}

// scrypt needs 128·N·r bytes; Node's default maxmem (32 MiB) is just short of N=2^15, r=8.
const maxmem = (ln: number, r: number): number => 128 * 2 ** ln * r + 16 * 1024 * 1024

export function createSecrets(key: Buffer, options: SecretsOptions = {}): Secrets {
  if (key.length !== 32) throw new RangeError('the registry key must be 32 bytes')
  const registryKey = Buffer.from(key)
  const ln = options.scryptLogN ?? 15
  if (ln < SCRYPT_LIMITS.lnMin || ln > SCRYPT_LIMITS.lnMax)
    throw new RangeError(`scryptLogN ${ln} is out of range`)
  const r = 8
  const p = 1

  const hashTokenSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex')

  return {
    async hashPassword(password) {
      if (password.length > PASSWORD_MAX_LENGTH) throw new RangeError('password too long')
      const salt = randomBytes(SALT_BYTES)
      const hash = await scryptAsync(password, salt, { N: 2 ** ln, r, p, maxmem: maxmem(ln, r) })
      return `$scrypt$ln=${ln},r=${r},p=${p}$${salt.toString('base64')}$${hash.toString('base64')}`
    },

    async verifyPassword(password, stored) {
      if (password.length > PASSWORD_MAX_LENGTH) return false
      const match = PHC.exec(stored)
      if (match === null) return false
      const [hashLn, hashR, hashP] = [Number(match[1]), Number(match[2]), Number(match[3])]
      if (hashLn < SCRYPT_LIMITS.lnMin || hashLn > SCRYPT_LIMITS.lnMax) return false
      if (hashR < 1 || hashR > SCRYPT_LIMITS.rMax || hashP < 1 || hashP > SCRYPT_LIMITS.pMax) return false
      const salt = Buffer.from(match[4]!, 'base64')
      const expected = Buffer.from(match[5]!, 'base64')
      if (expected.length !== SCRYPT_KEY_BYTES) return false
      const actual = await scryptAsync(password, salt, {
        N: 2 ** hashLn,
        r: hashR,
        p: hashP,
        maxmem: maxmem(hashLn, hashR),
      })
      return timingSafeEqual(actual, expected)
    },

    encrypt(plaintext, context) {
      const iv = randomBytes(IV_BYTES)
      const cipher = createCipheriv('aes-256-gcm', registryKey, iv, { authTagLength: TAG_BYTES })
      if (context !== undefined) cipher.setAAD(Buffer.from(context))
      const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()])
      const tag = cipher.getAuthTag()
      return `v1.${iv.toString('base64url')}.${tag.toString('base64url')}.${ciphertext.toString('base64url')}`
    },

    decrypt(value, context) {
      const match = CIPHERTEXT.exec(value)
      if (match === null) throw new Error('not a v1 registry ciphertext')
      const iv = Buffer.from(match[1]!, 'base64url')
      const tag = Buffer.from(match[2]!, 'base64url')
      if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new Error('malformed registry ciphertext')
      const decipher = createDecipheriv('aes-256-gcm', registryKey, iv, { authTagLength: TAG_BYTES })
      decipher.setAuthTag(tag)
      if (context !== undefined) decipher.setAAD(Buffer.from(context))
      // final() throws when the tag does not verify: wrong key, wrong context or altered bytes.
      return Buffer.concat([decipher.update(Buffer.from(match[3]!, 'base64url')), decipher.final()])
    },

    newTokenSecret() {
      const secret = randomBytes(32).toString('base64url')
      return { secret, hash: hashTokenSecret(secret) }
    },

    formatToken(kind, id, secret) {
      return `${TOKEN_PREFIXES[kind]}_${id}_${secret}`
    },

    parseToken(token) {
      if (token.length > 128) return undefined
      const match = TOKEN.exec(token)
      if (match === null) return undefined
      return { kind: match[1] === 'tdt' ? 'device' : 'api', id: match[2]!, secret: match[3]! }
    },

    hashTokenSecret,

    verifyTokenSecret(secret, hash) {
      const expected = Buffer.from(hash, 'hex')
      const actual = createHash('sha256').update(secret).digest()
      return expected.length === actual.length && timingSafeEqual(actual, expected)
    },
  }
}

export interface RegistryKeyOptions {
  readonly dataDir: string
  /** TRIBUTARY_REGISTRY_KEY: 32 bytes, base64. */
  readonly registryKey?: string | undefined
  readonly databaseUrl?: string | undefined
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/

function decodeKey(value: string, where: string): Buffer {
  const text = value.trim()
  const key = BASE64.test(text) ? Buffer.from(text, 'base64') : Buffer.alloc(0)
  if (key.length !== 32) {
    throw new TributaryError(
      'CONFIG_INVALID',
      `${where} must be 32 bytes in base64 (make one with \`openssl rand -base64 32\`)`,
    )
  }
  return key
}

/**
 * The key that encrypts PSK keys: from configuration; else, for the embedded registry only, one
 * generated into `<dataDir>/registry.key` on first start. Processes sharing a PostgreSQL database
 * must share the key, so there it must be configured.
 */
export async function loadRegistryKey(options: RegistryKeyOptions): Promise<Buffer> {
  if (options.registryKey !== undefined && options.registryKey !== '') {
    return decodeKey(options.registryKey, 'TRIBUTARY_REGISTRY_KEY')
  }
  if (options.databaseUrl !== undefined && options.databaseUrl !== '') {
    throw new TributaryError(
      'CONFIG_INVALID',
      'TRIBUTARY_REGISTRY_KEY is required with TRIBUTARY_DATABASE_URL: every process sharing the database must use the same key (make one with `openssl rand -base64 32`)',
    )
  }
  const file = join(options.dataDir, 'registry.key')
  const existing = await readFile(file, 'utf8').catch((err: unknown) => {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new TributaryError('CONFIG_INVALID', `cannot read the registry key ${file}`, { cause: err })
  })
  if (existing !== undefined) return decodeKey(existing, file)
  await mkdir(options.dataDir, { recursive: true })
  // Written whole to a temporary file, then linked into place: link() fails when the key exists,
  // so two processes starting at once both end up with the first key, never a half-written one.
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`
  try {
    await writeFile(temporary, `${randomBytes(32).toString('base64')}\n`, { flag: 'wx', mode: 0o600 })
    await link(temporary, file).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    })
  } catch (err) {
    throw new TributaryError('CONFIG_INVALID', `cannot write the registry key to ${file}`, { cause: err })
  } finally {
    await rm(temporary, { force: true })
  }
  return decodeKey(await readFile(file, 'utf8'), file)
}
