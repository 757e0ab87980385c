// What the HTTP and TTN e2e tests drive a running tributary with: curl (status, headers, body as
// curl received them) and kcat's offset query, to show that a refused request wrote nothing.
import { execFile } from 'node:child_process'

export interface CurlReply {
  readonly status: number
  /** Lowercase header names of the final response. */
  readonly headers: Readonly<Record<string, string>>
  readonly body: string
  /** The body parsed as JSON when it is JSON, else undefined. */
  readonly json: any // eslint-disable-line @typescript-eslint/no-explicit-any -- tests read fields freely
}

const MARK = '\n--curl-status--'

/** Runs curl with `args` (URL included), bounded in time; never follows redirects. */
export function curl(args: readonly string[], input?: Buffer): Promise<CurlReply> {
  return new Promise((resolve, reject) => {
    // Headers go to stdout ahead of the body (-D -): curl 7.88 crashes writing them to /dev/stderr.
    const child = execFile(
      'curl',
      ['-sS', '--max-time', '20', '-D', '-', '-w', `${MARK}%{http_code}`, ...args],
      { timeout: 30_000, maxBuffer: 16 * 1024 * 1024, encoding: 'buffer' },
      (err, stdout, stderr) => {
        let out = stdout.toString('utf8')
        const at = out.lastIndexOf(MARK)
        if (at < 0) {
          reject(new Error(`curl ${args.join(' ')} failed: ${stderr.toString()}`, { cause: err }))
          return
        }
        const status = Number(out.slice(at + MARK.length))
        out = out.slice(0, at)
        // Header blocks come first, the final response's last (a 100 Continue may precede it).
        let block = ''
        while (out.startsWith('HTTP/')) {
          const end = out.indexOf('\r\n\r\n')
          if (end < 0) break
          block = out.slice(0, end)
          out = out.slice(end + 4)
        }
        const headers: Record<string, string> = {}
        for (const line of block.split('\r\n').slice(1)) {
          const colon = line.indexOf(':')
          if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
        }
        const body = out
        let json: unknown
        try {
          json = body === '' ? undefined : JSON.parse(body)
        } catch {
          json = undefined
        }
        resolve({ status, headers, body, json })
      },
    )
    if (input !== undefined) child.stdin?.end(input)
    else child.stdin?.end()
  })
}

function run(tool: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(tool, [...args], { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      err === null ? resolve(stdout) : reject(new Error(`${tool}: ${stderr}`, { cause: err })),
    )
  })
}

/** The end offsets of every partition of `topic`, summed: what a topic holds from its start. */
export async function topicEnd(brokers: string, topic: string): Promise<number> {
  const metadata = JSON.parse(await run('kcat', ['-L', '-b', brokers, '-t', topic, '-J'])) as {
    topics: Array<{ topic: string; partitions: Array<{ partition: number }> }>
  }
  const partitions = metadata.topics.find((t) => t.topic === topic)?.partitions ?? []
  if (partitions.length === 0) throw new Error(`kcat: topic ${topic} has no partitions`)
  // kcat -Q with timestamp -1 answers the end (next) offset of each partition.
  const query = partitions.flatMap((p) => ['-t', `${topic}:${p.partition}:-1`])
  const offsets = JSON.parse(await run('kcat', ['-Q', '-b', brokers, '-J', ...query])) as Record<
    string,
    Record<string, { offset: number } | string>
  >
  let total = 0
  for (const p of partitions) {
    const entry = offsets[topic]?.[String(p.partition)]
    if (typeof entry !== 'object') throw new Error(`kcat: no end offset for ${topic}[${p.partition}]`)
    total += entry.offset
  }
  return total
}
