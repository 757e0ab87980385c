#!/usr/bin/env -S node --liftoff-only
// The `tributary` command as installed (package.json "bin", npx tributary): plain JavaScript that any
// Node can read, checking the version before it loads the TypeScript entry, which only Node 24's
// type stripping can run (an older Node fails on it with a bare ERR_UNKNOWN_FILE_EXTENSION).
/* global process */
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
if (major < 24 || (major === 24 && minor < 6)) {
  process.stderr.write(
    `Tributary needs Node 24: use npm start or npx tributary, which run the Node 24 that npm ci put in node_modules/.bin (this is Node ${process.versions.node})\n`,
  )
  process.exitCode = 1
} else {
  await import('./cli.ts')
}
