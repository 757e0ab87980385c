// Which addresses count as private for the SSRF guard (webhook URLs on write and on delivery).
import { describe, expect, it } from 'vitest'
import { isPrivateAddress, isPublicAddress } from '../../core/addresses.ts'

describe('isPrivateAddress', () => {
  it.each([
    '127.0.0.1',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fd00::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '[::1]',
    'fec0::1',
  ])('refuses %s', (address) => {
    expect(isPrivateAddress(address)).toBe(true)
    expect(isPublicAddress(address)).toBe(false)
  })

  it('takes a host name for neither: names are resolved and their addresses checked', () => {
    expect(isPrivateAddress('not-an-address')).toBe(false)
    expect(isPublicAddress('not-an-address')).toBe(false)
  })

  it.each(['93.184.215.14', '8.8.8.8', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])(
    'allows %s',
    (address) => {
      expect(isPrivateAddress(address)).toBe(false)
      expect(isPublicAddress(address)).toBe(true)
    },
  )
})
