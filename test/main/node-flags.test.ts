// Every way of running the server passes the same Node flags (main/node-flags.ts): npm start,
// npm run tributary, the installed command's shebang and the container image's entrypoint.
import { readFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { NODE_FLAGS } from '../../main/node-flags.ts'

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')
const flags = NODE_FLAGS.join(' ')

describe('Node flags of a tributary process', () => {
  it('are in the npm scripts that run the server', () => {
    const { scripts } = JSON.parse(read('package.json')) as { scripts: Record<string, string> }
    expect(scripts['start']).toBe(`node ${flags} main/cli.ts start`)
    expect(scripts['tributary']).toBe(`node ${flags} main/cli.ts`)
  })

  it('are in the installed command, through env -S in its shebang', () => {
    expect(read('main/tributary.js').split('\n')[0]).toBe(`#!/usr/bin/env -S node ${flags}`)
  })

  it("are in the image's entrypoint", () => {
    const entrypoint = read('Dockerfile')
      .split('\n')
      .find((line) => line.startsWith('ENTRYPOINT '))
    expect(JSON.parse(entrypoint!.slice('ENTRYPOINT '.length))).toEqual([
      'node',
      ...NODE_FLAGS,
      'main/cli.ts',
    ])
  })

  it('are accepted by this Node', () => {
    const run = spawnSync(process.execPath, [...NODE_FLAGS, '-e', 'process.exit(0)'], { encoding: 'utf8' })
    expect(run.stderr).toBe('')
    expect(run.status).toBe(0)
  })
})
