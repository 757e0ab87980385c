// The README's configuration table, generated from the schema so the two cannot drift.
import { variables } from './schema.ts'

export function configTable(): string {
  const rows = Object.values(variables).map((v) => {
    const fallback = v.defaultText === undefined ? '' : `\`${v.defaultText}\``
    const secret = v.secret ? ' (secret: redacted from logs)' : ''
    return `| \`${v.env}\` | ${fallback} | ${v.description.replaceAll('|', '\\|')}${secret} |`
  })
  return ['| variable | default | description |', '|---|---|---|', ...rows].join('\n')
}
