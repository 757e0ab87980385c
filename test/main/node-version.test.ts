// Running Tributary on the machine's own Node and npm, as a new user does: `npx tributary` prints
// nothing but its answer (no EBADENGINE lines about the Node that runs npm), and the installed
// command under a Node older than 24 says what to use instead of failing on the .ts extension.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const LAUNCHER = join(ROOT, 'main/tributary.js')
// The PATH without the project's node_modules/.bin: the system Node and npm a user starts from.
const systemPath = (process.env['PATH'] ?? '')
  .split(delimiter)
  .filter((dir) => !dir.includes('node_modules'))
  .join(delimiter)

function which(command: string): string {
  const found = systemPath
    .split(delimiter)
    .map((dir) => join(dir, command))
    .find((file) => existsSync(file))
  if (found === undefined)
    throw new Error(`no ${command} on the PATH (${systemPath}): install Node.js and npm`)
  return found
}

function run(
  file: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      file,
      args,
      { cwd: ROOT, timeout: 60_000, env: { HOME: process.env['HOME'] ?? '/tmp', PATH: systemPath, ...env } },
      (err, stdout, stderr) =>
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
    ),
  )
}

describe('the Node a user has', () => {
  it('runs npx tributary without engine warnings', async () => {
    const result = await run(which('npx'), ['tributary', 'version'])
    expect(result).toEqual({ code: 0, stdout: '0.1.0\n', stderr: '' })
  }, 60_000)

  it('tells a direct run on a Node older than 24 what to use', async () => {
    const node = which('node')
    const version = await run(node, ['-p', 'process.versions.node'])
    const [major = 0, minor = 0] = version.stdout.trim().split('.').map(Number)
    const result = await run(node, [LAUNCHER, 'version'])
    if (major < 24 || (major === 24 && minor < 6)) {
      expect(result.code).toBe(1)
      expect(result.stderr).toContain('Tributary needs Node 24: use npm start or npx tributary')
      expect(result.stderr).not.toContain('ERR_UNKNOWN_FILE_EXTENSION')
    } else expect(result).toMatchObject({ code: 0, stdout: '0.1.0\n' })
  })

  it('runs the launcher on the pinned Node 24', async () => {
    const result = await run(process.execPath, [LAUNCHER, 'version'])
    expect(result).toEqual({ code: 0, stdout: '0.1.0\n', stderr: '' })
  })
})
