// Which addresses a tenant-chosen URL may reach (webhooks, TTN downlinks, OIDC JWKS, on write and at
// connect): every range of the IANA special-purpose registries is refused, and an IPv6 address that
// carries an IPv4 address is judged by the IPv4 address inside.
import { describe, expect, it } from 'vitest'
import { isPublicAddress } from '../../core/addresses.ts'
import { PUBLIC_ADDRESSES, SPECIAL_ADDRESSES } from '../fixtures/special-addresses.ts'

describe('isPublicAddress', () => {
  it.each(SPECIAL_ADDRESSES)('refuses %s: %s', (_range, address) => {
    expect(isPublicAddress(address)).toBe(false)
    if (address.includes(':')) expect(isPublicAddress(`[${address}]`)).toBe(false)
  })

  it.each(PUBLIC_ADDRESSES)('allows %s', (address) => {
    expect(isPublicAddress(address)).toBe(true)
    if (address.includes(':')) expect(isPublicAddress(`[${address}]`)).toBe(true)
  })

  it('takes a host name for no address: names are resolved and their addresses checked', () => {
    expect(isPublicAddress('not-an-address')).toBe(false)
  })

  it('never reads the loose IPv4 spellings (URL parsing normalizes them first)', () => {
    for (const loose of ['2130706433', '0x7f.1', '127.1', '010.0.0.1']) {
      expect(isPublicAddress(loose), loose).toBe(false)
    }
  })
})
