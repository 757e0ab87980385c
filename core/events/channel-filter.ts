// Channel filters of route rules: a channel, or an MQTT-style filter where `+` stands for exactly
// one level and a trailing `#` for the rest (MQTT 5.0 §4.7.1). The registry checks their shape.

/**
 * Whether `channel` matches `filter`. As in MQTT (5.0 §4.7.1.2), `a/#` also matches `a` itself;
 * `#` anywhere but last and `+` inside a level are ordinary characters (the
 * registry refuses such filters, and channels never contain them).
 */
export function matchesChannel(filter: string, channel: string): boolean {
  if (filter === channel) return true
  const want = filter.split('/')
  const have = channel.split('/')
  for (let i = 0; i < want.length; i++) {
    const level = want[i]
    if (level === '#' && i === want.length - 1) return true
    const actual = have[i]
    if (actual === undefined) return false
    if (level !== '+' && level !== actual) return false
  }
  return want.length === have.length
}
