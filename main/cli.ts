#!/usr/bin/env node
// The `tributary` command: the process entrypoint, the only place that reads process.env and argv
// or sets the exit code.
import { parseArgs } from 'node:util'
import { isTributaryError } from '../core/errors.ts'
import { eventsTail } from './cli/events-tail.ts'
import { commandHelp, mainHelp, subcommandHelp } from './cli/help.ts'
import type { CliHandler, CliIo } from './cli/registry-commands.ts'
import { demoEnvironment, seedDemo } from './demo.ts'
import { consoleAddress } from '../api/console.ts'
import { demoInstructions } from './demo-banner.ts'
import { configCommands } from './cli/config-commands.ts'
import { registryCommands } from './cli/registry-commands.ts'
import { filesCommands } from './cli/files-commands.ts'
import { moveLine } from './ports.ts'
import { VERSION } from './version.ts'

const io = (signal?: AbortSignal): CliIo => ({
  env: process.env,
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
  readStdin: async () => {
    const chunks: Buffer[] = []
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
    return Buffer.concat(chunks).toString('utf8')
  },
  signal,
})

const subcommands: Record<string, Record<string, CliHandler>> = {
  ...registryCommands,
  ...configCommands,
  files: filesCommands,
  events: { tail: eventsTail },
}

const wantsHelp = (args: readonly string[]): boolean => args.includes('--help') || args.includes('-h')

/** Help asked for: on stdout, exit 0. */
function help(text: string | undefined): number {
  process.stdout.write(text ?? mainHelp())
  return 0
}

/** A usage error: what was wrong and where the help is, exit 2. */
function usage(message: string, help: string): number {
  process.stderr.write(`tributary: ${message}\n(${help})\n`)
  return 2
}

/** parseArgs's own errors (an unknown option, a missing value) are usage errors. */
const isParseError = (err: unknown): boolean =>
  err instanceof TypeError && String((err as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS')

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    const topic = command === 'help' ? rest[0] : undefined
    return help(topic === undefined ? undefined : commandHelp(topic))
  }
  if (command === 'version' || command === '--version') {
    if (wantsHelp(rest)) return help(commandHelp('version'))
    process.stdout.write(`${VERSION}\n`)
    return 0
  }
  if (command === 'start') {
    if (wantsHelp(rest)) return help(commandHelp('start'))
    try {
      return await start(rest)
    } catch (err) {
      if (isParseError(err)) return usage((err as Error).message, 'tributary start --help')
      throw err
    }
  }
  const group = subcommands[command]
  if (group === undefined) {
    return usage(`unknown command ${JSON.stringify(command)}`, 'tributary --help lists the commands')
  }
  const [sub, ...args] = rest
  if (sub === undefined) {
    process.stderr.write(`tributary: ${command} needs a subcommand\n\n${commandHelp(command)}`)
    return 2
  }
  if (sub === '--help' || sub === '-h') return help(commandHelp(command))
  const handler = group[sub]
  if (handler === undefined) {
    return usage(
      `${command} takes one of ${Object.keys(group).join('|')}, not ${JSON.stringify(sub)}`,
      `tributary ${command} --help`,
    )
  }
  if (wantsHelp(args)) return help(subcommandHelp(command, sub))
  const interrupted = new AbortController()
  const onSignal = (): void => interrupted.abort()
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    return await handler(args, io(interrupted.signal))
  } catch (err) {
    if (isParseError(err)) return usage((err as Error).message, `tributary ${command} ${sub} --help`)
    throw err
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

async function start(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { roles: { type: 'string', default: 'all' }, demo: { type: 'boolean', default: false } },
    strict: true,
  })
  // Loaded here, not at the top: the other commands and every --help stay quick to start.
  const [{ parseRoles }, { startTributary }] = await Promise.all([import('./roles.ts'), import('./start.ts')])
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
    if (roles.includes('api'))
      process.stderr.write(`Web console: ${consoleAddress(running.config.host, running.ports.api)}\n`)
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
  // Every component was stopped or given up on within the drain deadline. A handle one of them could
  // not close in time (a socket to a broker that stopped answering) must not keep the process alive.
  setTimeout(() => {
    running.log.warn('handles still open 2 s after the stop; exiting anyway')
    process.exit(0)
  }, 2_000).unref()
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
