// Private and special-purpose IP addresses: what a tenant-given URL (a webhook) may not reach unless
// private targets are allowed, so that a tenant cannot point Tributary at its host, its network or a
// cloud metadata service. The registry checks literal hosts on write; delivery checks the address
// it actually connects to.
import { BlockList, isIP } from 'node:net'

// IANA special-purpose registries (RFC 6890 and successors): loopback, private, link-local,
// shared, documentation, benchmarking, multicast and reserved ranges.
const blocked = new BlockList()
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked.addSubnet(network, prefix, 'ipv4')
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  blocked.addSubnet(network, prefix, 'ipv6')
}

const MAPPED_V4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i

/** True for an IP address (bracketed IPv6 too) in a private or special-purpose range. */
export function isPrivateAddress(address: string): boolean {
  return isIP(unbracket(address)) !== 0 && !isPublicAddress(address)
}

/** True only for a public unicast IP address: anything else, a host name included, is refused. */
export function isPublicAddress(literal: string): boolean {
  const address = unbracket(literal)
  const family = isIP(address)
  if (family === 4) return !blocked.check(address, 'ipv4')
  if (family === 6) {
    const mapped = MAPPED_V4.exec(address)
    if (mapped !== null) return !blocked.check(mapped[1]!, 'ipv4')
    // Other IPv4-mapped spellings (hex words) are refused outright.
    if (/^::ffff:/i.test(address)) return false
    return !blocked.check(address, 'ipv6')
  }
  return false
}

const unbracket = (address: string): string =>
  address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address
