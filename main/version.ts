// The version of Tributary, from package.json: printed by `tributary version` and in the API document.
import { readFileSync } from 'node:fs'

export const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version
