// Reads every variable at once and reports every problem at once.
import { TributaryError } from '../errors.ts'
import type { Config } from './schema.ts'
import { clientVariables, variables } from './schema.ts'
import type { Variable } from './variables.ts'

const entries = Object.entries(variables) as Array<[keyof Config, Variable<unknown>]>
const known = new Set([...entries.map(([, v]) => v.env), ...Object.keys(clientVariables)])

export function loadConfig(env: Readonly<Record<string, string | undefined>>): Config {
  const problems: string[] = []
  const config: Record<string, unknown> = {}
  for (const [key, variable] of entries) {
    const result = variable.schema.safeParse(env[variable.env])
    if (result.success) config[key] = result.data
    else for (const issue of result.error.issues) problems.push(`${variable.env} ${issue.message}`)
  }
  for (const name of Object.keys(env)) {
    if (name.startsWith('TRIBUTARY_') && !known.has(name)) {
      const hint = closest(name)
      problems.push(
        `${name} is not a Tributary setting${hint === undefined ? '' : ` (did you mean ${hint}?)`}`,
      )
    }
  }
  if (problems.length > 0) {
    throw new TributaryError('CONFIG_INVALID', `invalid configuration:\n  - ${problems.join('\n  - ')}`, {
      details: { problems },
    })
  }
  return config as unknown as Config
}

/** The config with every secret replaced, fit for a log line. */
export function redactedConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, variable] of entries) {
    const value = config[key]
    out[key] = variable.secret && value !== undefined ? '[redacted]' : value
  }
  return out
}

function closest(name: string): string | undefined {
  let best: string | undefined
  let bestDistance = 4
  for (const candidate of known) {
    const d = distance(name, candidate)
    if (d < bestDistance) [best, bestDistance] = [candidate, d]
  }
  return best
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!
    row[0] = i
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1))
      previous = current
    }
  }
  return row[b.length]!
}
