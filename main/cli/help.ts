// The CLI's help: one synopsis and description per command and subcommand, rendered for
// `tributary --help`, `tributary <command> --help` and `tributary <command> <subcommand> --help`.
// The README's command summary lists the same synopses (test/docs/readme.test.ts checks).

export interface CommandHelp {
  readonly synopsis: string
  readonly about: string
}

const API_OPTIONS = `Options of every command that talks to the API:
  --url URL      the API listener (default $TRIBUTARY_API_URL or http://127.0.0.1:8080)
  --token TOKEN  an API token of the tenant, or the admin token (default $TRIBUTARY_API_TOKEN)
  --json         print the API's JSON instead of text
  --help         this help
`

/** Commands that run on their own (no subcommand). */
export const SINGLE: Record<string, CommandHelp> = {
  start: {
    synopsis: 'tributary start [--roles all|processors,consumers,api,adapters] [--demo]',
    about: `Runs Tributary: the roles named (default all) on the embedded bus and registry in the data dir,
or on Kafka, PostgreSQL and Redis when their TRIBUTARY_* variables are set (README: Configuration).
A default port that is taken moves (to the default plus 10,000 when free) and a line says where;
a port you set that is taken stops the start, naming its variable.
--demo also creates tenant demo, device device1 (password secret), an admin token and an API
token (kept in <data dir>/demo.json, the same after a restart), lets webhooks reach local
receivers, and prints commands to send and watch events.`,
  },
  help: { synopsis: 'tributary help | --help', about: 'Shows this help.' },
  version: { synopsis: 'tributary version | --version', about: 'Prints the version.' },
}

/** Commands with subcommands, by command and subcommand. */
export const GROUPS: Record<string, { readonly about: string; readonly subs: Record<string, CommandHelp> }> =
  {
    tenant: {
      about: 'Tenants, through the management API (creating one needs the admin token).',
      subs: {
        create: {
          synopsis:
            'tributary tenant create <tenant> [--disabled] [--max-devices N] [--auth-methods password,x509,psk,token]',
          about: `Creates a tenant: 1-63 lowercase letters, digits and inner hyphens. --max-devices caps its
devices; --auth-methods limits how its devices may authenticate (default: all).`,
        },
        list: { synopsis: 'tributary tenant list', about: 'Lists the tenants the token may see.' },
      },
    },
    device: {
      about: "A tenant's devices, through the management API.",
      subs: {
        create: {
          synopsis:
            'tributary device create --tenant T <device> [--label k=v]... [--gateway G]... [--disabled] [--password P | --password-stdin]',
          about: `Creates a device, with a password when one is given (--password-stdin reads it from stdin,
keeping it out of the shell history). --gateway names devices that may send for it.`,
        },
        list: {
          synopsis: 'tributary device list --tenant T [--label k=v]...',
          about: 'Lists the devices of a tenant, those with every given label.',
        },
        delete: { synopsis: 'tributary device delete --tenant T <device>', about: 'Deletes a device.' },
        'set-password': {
          synopsis: 'tributary device set-password --tenant T <device> (--password P | --password-stdin)',
          about: "Sets (replaces) a device's password.",
        },
      },
    },
    files: {
      about: "A tenant's uploaded device files, through the management API (docs/files.md).",
      subs: {
        list: {
          synopsis: 'tributary files list --tenant T [--device D] [--name-prefix P]',
          about: 'Lists uploaded files: id, device, size, upload time and name.',
        },
        get: { synopsis: 'tributary files get --tenant T <file>', about: "Shows a file's metadata." },
        download: {
          synopsis: 'tributary files download --tenant T <file> --output PATH',
          about: 'Saves the content to PATH (which must not exist yet), streamed.',
        },
        url: {
          synopsis: 'tributary files url --tenant T <file> [--expires-in SECONDS]',
          about: 'A short-lived URL that downloads the file without other credentials.',
        },
        delete: {
          synopsis: 'tributary files delete --tenant T <file>',
          about: 'Deletes a file and its content.',
        },
        publish: {
          synopsis: 'tributary files publish --tenant T <file> (--device D | --folder F)',
          about: 'Publishes a file for one device, or for every device through a folder, to download.',
        },
        unpublish: {
          synopsis: 'tributary files unpublish --tenant T <file> (--device D | --folder F)',
          about: 'Takes a publication back.',
        },
        publications: {
          synopsis: 'tributary files publications --tenant T <file>',
          about: 'The devices and folders a file is published to.',
        },
      },
    },
    token: {
      about: "A tenant's API tokens, through the management API.",
      subs: {
        create: {
          synopsis:
            'tributary token create --tenant T --name N [--role admin|manager|reader] [--expires-at ISO-8601]',
          about: 'Creates an API token (default role reader) and prints its secret once: store it.',
        },
      },
    },
    config: {
      about: 'Desired device configuration, through the management API (docs/config.md).',
      subs: {
        get: {
          synopsis: 'tributary config get --tenant T [--app-version V | --rule R | --device D [--effective]]',
          about: `Prints one level's document (the tenant default, an application version's, a rule's with its
selector and priority, or a device's), or with --effective the device's merged configuration and its id.`,
        },
        set: {
          synopsis:
            "tributary config set --tenant T [--app-version V | --device D | --rule R --selector k=v[,k=v] [--priority N]] [--merge] ('<json>' | --stdin)",
          about: `Replaces one level's document with the JSON object given (or read from stdin); --merge applies
it as a JSON merge patch instead (null removes a key). A rule applies to the devices carrying every
--selector label, merged after their application version's document (higher --priority later).
Devices get the change pushed.`,
        },
        rules: {
          synopsis: 'tributary config rules --tenant T',
          about: 'Lists the label-selector rules in the order they merge.',
        },
        rm: {
          synopsis: 'tributary config rm --tenant T --rule R',
          about: 'Deletes a rule; the devices it applied to get their configuration without it.',
        },
        status: {
          synopsis: 'tributary config status --tenant T',
          about: 'Counts devices by the configuration id sent to them last: applied, rejected, pending.',
        },
      },
    },
    events: {
      about: "A tenant's processed events, through the management API's event WebSocket.",
      subs: {
        tail: {
          synopsis:
            'tributary events tail --tenant T [--device D]... [--channel C]... [--type T]... [--from earliest|latest|<time>] [--count N] [--json]',
          about: `Prints the tenant's events as they arrive, one line each (time, device, type, channel, data),
or each whole CloudEvent as one JSON line with --json, until Ctrl-C (or --count events).
--channel takes MQTT-style filters (sensors/+, sensors/#); --type takes io.tributary.telemetry.v1
or just telemetry; --from earliest replays what the topic keeps, --from 2026-01-01T00:00:00Z from a
time (also an offset, or <partition>:<offset>,...).`,
        },
      },
    },
  }

const indent = (text: string, by = '    '): string =>
  text
    .split('\n')
    .map((l) => `${by}${l}`)
    .join('\n')

const entry = (help: CommandHelp): string => `  ${help.synopsis}\n${indent(help.about)}\n`

/** `tributary --help`. */
export function mainHelp(): string {
  const sections = [
    'Usage: tributary <command> [options]   (every command takes --help)\n',
    entry(SINGLE['start']!),
    ...Object.values(GROUPS).flatMap((g) => Object.values(g.subs).map(entry)),
    entry(SINGLE['help']!),
    entry(SINGLE['version']!),
    API_OPTIONS,
  ]
  return sections.join('\n')
}

/** `tributary <command> --help`; undefined for an unknown command. */
export function commandHelp(command: string): string | undefined {
  const single = SINGLE[command]
  if (single !== undefined) return `Usage:\n${entry(single)}`
  const group = GROUPS[command]
  if (group === undefined) return undefined
  return [
    `Usage: tributary ${command} <${Object.keys(group.subs).join('|')}> [options]\n${group.about}\n`,
    ...Object.values(group.subs).map(entry),
    API_OPTIONS,
  ].join('\n')
}

/** `tributary <command> <subcommand> --help`; undefined for an unknown one. */
export function subcommandHelp(command: string, sub: string): string | undefined {
  const help = GROUPS[command]?.subs[sub]
  return help === undefined ? undefined : `Usage:\n${entry(help)}\n${API_OPTIONS}`
}

/** Everything the README's command summary must show: each synopsis. */
export function synopses(): string[] {
  return [
    SINGLE['start']!.synopsis,
    ...Object.values(GROUPS).flatMap((g) => Object.values(g.subs).map((s) => s.synopsis)),
  ]
}
