// The cache the tests share with every tributary process they start: ready-made registry
// databases (core/registry/pglite-template.ts), built once per schema in the repository's .cache.
import { fileURLToPath } from 'node:url'

export const TEST_CACHE_DIR = fileURLToPath(new URL('../../.cache/tributary', import.meta.url))
