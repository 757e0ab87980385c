// Which IP addresses a tenant-chosen URL may reach: public unicast only, so that a tenant cannot
// point Tributary at its host, its network or a cloud metadata service (core/outbound.ts applies
// this on write and on the address each connection dials). The ranges are the IANA IPv4 and IPv6
// special-purpose address registries as ipaddr.js keeps them; an IPv6 address that carries an IPv4
// address (mapped, compatible, SIIT, NAT64, 6to4, Teredo) is judged by the IPv4 address inside.
import { isIP } from 'node:net'
import ipaddr from 'ipaddr.js'

type IPv4 = ipaddr.IPv4
type IPv6 = ipaddr.IPv6

// IANA IPv6 special-purpose registry entries ipaddr.js 2.5 does not list yet.
const MORE_SPECIAL_V6: ReadonlyArray<[IPv6, number]> = [
  // RFC 9780: the dummy IPv6 prefix, not globally reachable.
  [ipaddr.IPv6.parse('100:0:0:1::'), 64],
]

const WELL_KNOWN_NAT64 = ipaddr.IPv6.parse('64:ff9b::')

const v4 = (a: number, b: number, c: number, d: number): IPv4 => new ipaddr.IPv4([a, b, c, d])

/**
 * The IPv4 addresses an IPv6 address carries, when it is one of the forms that carry one; the
 * address is public only if every one of them is. undefined for any other IPv6 address.
 */
function embeddedIPv4(address: IPv6): IPv4[] | undefined {
  const b = address.toByteArray()
  const last = v4(b[12]!, b[13]!, b[14]!, b[15]!)
  const range = address.range()
  // ::ffff:0:0/96 (RFC 4291 §2.5.5.2) and ::ffff:0:0:0/96, SIIT (RFC 6145): the last 32 bits.
  if (range === 'ipv4Mapped' || range === 'rfc6145') return [last]
  // 2002::/16: the IPv4 address in bits 16-47 (RFC 3056 §2).
  if (range === '6to4') return [v4(b[2]!, b[3]!, b[4]!, b[5]!)]
  // 2001::/32: the server in bits 32-63, the client inverted in bits 96-127 (RFC 4380 §4).
  if (range === 'teredo') {
    return [v4(b[4]!, b[5]!, b[6]!, b[7]!), v4(b[12]! ^ 0xff, b[13]! ^ 0xff, b[14]! ^ 0xff, b[15]! ^ 0xff)]
  }
  if (range === 'rfc6052') return address.match(WELL_KNOWN_NAT64, 96) ? [last] : localUseNat64(b)
  // ::/96 less :: and ::1: IPv4-compatible (RFC 4291 §2.5.5.1), deprecated but still dialled.
  if (range === 'unicast' && b.slice(0, 12).every((x) => x === 0)) return [last]
  return undefined
}

/**
 * 64:ff9b:1::/48 (RFC 8215) holds translation prefixes of /48 to /96, and RFC 6052 §2.2 places
 * the IPv4 address differently for each (skipping the u octet, bits 64-71, which is zero, and
 * leaving the suffix after it zero). Every placement the address is well-formed for is read.
 */
function localUseNat64(b: readonly number[]): IPv4[] {
  const zero = (from: number, to: number): boolean => b.slice(from, to).every((x) => x === 0)
  const found = [v4(b[12]!, b[13]!, b[14]!, b[15]!)] // /96
  if (b[8] === 0) {
    if (zero(13, 16)) found.push(v4(b[9]!, b[10]!, b[11]!, b[12]!)) // /64
    if (zero(12, 16)) found.push(v4(b[7]!, b[9]!, b[10]!, b[11]!)) // /56
    if (zero(11, 16)) found.push(v4(b[6]!, b[7]!, b[9]!, b[10]!)) // /48
  }
  return found
}

function isPublic(address: IPv4 | IPv6): boolean {
  if (address.kind() === 'ipv4') return address.range() === 'unicast'
  const v6 = address as IPv6
  const inside = embeddedIPv4(v6)
  if (inside !== undefined) return inside.every(isPublic)
  return v6.range() === 'unicast' && !MORE_SPECIAL_V6.some((range) => v6.match(range))
}

const unbracket = (address: string): string =>
  address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address

/**
 * True only for a public unicast IP address (bracketed IPv6 too). Anything else, a host name and
 * the loose IPv4 spellings (`0x7f.1`, `2130706433`) included, is not one.
 */
export function isPublicAddress(literal: string): boolean {
  const address = unbracket(literal)
  // node:net accepts only the standard forms: ipaddr.js alone would read `010.1` and the like.
  if (isIP(address) === 0) return false
  return isPublic(ipaddr.parse(address))
}
