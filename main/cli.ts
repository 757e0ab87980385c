#!/usr/bin/env node
// The `tributary` command: the process entrypoint, the only place that reads process.env and argv
// or sets the exit code.
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { isTributaryError } from '../core/errors.ts'
import { demoEnvironment, seedDemo } from './demo.ts'
import { demoInstructions } from './demo-banner.ts'
import { REGISTRY_USAGE, registryCommands } from './cli/registry-commands.ts'
import { moveLine } from './ports.ts'
import { parseRoles } from './roles.ts'
import { startTributary } from './start.ts'

const USAGE = `Usage: tributary <command> [options]

Commands:
  start [--roles all|processors,consumers,api,adapters] [--demo]
                     Run Tributary. Configuration comes from TRIBUTARY_* environment
                     variables (see the README's configuration table). --demo creates
                     tenant demo, device device1 (password secret) and an API token, and
                     prints commands to try them with.
  tenant | device | token
                     Administer the registry through the management API (below).
  help               Show this help.
  version            Print the version.

${REGISTRY_USAGE}`

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
    case 'tenant':
    case 'device':
    case 'token': {
      const [sub, ...args] = rest
      const handler = sub === undefined ? undefined : registryCommands[command]?.[sub]
      if (handler === undefined) {
        const subs = Object.keys(registryCommands[command] ?? {}).join('|')
        process.stderr.write(`tributary: ${command} takes one of ${subs}\n\n${REGISTRY_USAGE}`)
        return 2
      }
      return handler(args, {
        env: process.env,
        out: (text) => void process.stdout.write(text),
        readStdin: async () => {
          const chunks: Buffer[] = []
          for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
          return Buffer.concat(chunks).toString('utf8')
        },
      })
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
  const { values } = parseArgs({
    args,
    options: { roles: { type: 'string', default: 'all' }, demo: { type: 'boolean', default: false } },
    strict: true,
  })
  const roles = parseRoles(values.roles)
  const demo = values.demo ? await demoEnvironment(process.env) : undefined
  const running = await startTributary({ env: demo?.env ?? process.env, roles })
  if (demo !== undefined) {
    if (!roles.includes('api'))
      running.log.warn('--demo without the api role: the API commands it prints need one')
    const { apiToken } = await seedDemo(running.registry, running.lookups, demo)
    running.log.info({ ports: running.ports, moved: running.moves.map((m) => m.variable) }, 'demo ready')
    process.stderr.write(
      demoInstructions({
        apiToken,
        adminToken: demo.adminToken,
        file: demo.file,
        allowsPrivateWebhooks: demo.allowsPrivateWebhooks,
        ports: running.ports,
        moves: running.moves,
        kafkaBrokers: running.config.kafkaBrokers,
        topicPrefix: running.config.topicPrefix,
      }),
    )
  } else {
    // Said to the person at the terminal, not only in the JSON log on stdout.
    for (const move of running.moves) process.stderr.write(`${moveLine(move, move.bound)}\n`)
  }
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
