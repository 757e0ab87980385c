#!/usr/bin/env node
// The `tributary` command: the process entrypoint, the only place that reads process.env and argv
// or sets the exit code.
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { isTributaryError } from '../core/errors.ts'
import { parseRoles } from './roles.ts'
import { startTributary } from './start.ts'

const USAGE = `Usage: tributary <command> [options]

Commands:
  start [--roles all|processors,consumers,api,adapters]
                     Run Tributary. Configuration comes from TRIBUTARY_* environment
                     variables (see the README's configuration table).
  help               Show this help.
  version            Print the version.
`

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'start':
      return start(rest)
    case 'version':
    case '--version': {
      const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
        version: string
      }
      process.stdout.write(`${pkg.version}\n`)
      return 0
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE)
      return 0
    default:
      process.stderr.write(`tributary: unknown command ${JSON.stringify(command)}\n\n${USAGE}`)
      return 2
  }
}

async function start(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { roles: { type: 'string', default: 'all' } }, strict: true })
  const running = await startTributary({ env: process.env, roles: parseRoles(values.roles) })
  const stopped = Promise.withResolvers<void>()
  let stopping = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      running.log.warn({ signal }, 'second signal: exiting without waiting for the drain')
      process.exit(1)
    }
    stopping = true
    running.log.info({ signal }, 'signal received')
    running.stop().then(stopped.resolve, stopped.reject)
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)
  await stopped.promise
  return 0
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    const message = isTributaryError(err) || err instanceof Error ? err.message : String(err)
    process.stderr.write(`tributary: ${message}\n`)
    process.exitCode = 1
  },
)
