// Certificate helpers for the registry: parse one PEM certificate, derive a trust anchor from a CA
// certificate, and the SHA-256 fingerprints and subject CNs devices are matched by.
import { X509Certificate } from 'node:crypto'
import type { TrustAnchor } from './model.ts'

/** Largest PEM certificate accepted (a CA certificate with long chains of extensions stays far below). */
export const PEM_MAX_LENGTH = 16 * 1024

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g
const FINGERPRINT = /^[0-9a-f]{64}$/

/** A problem with a certificate, worded for the caller (validate.ts turns it into REGISTRY_INVALID). */
export class CertificateProblem extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'CertificateProblem'
  }
}

/** Exactly one PEM certificate, parsed. */
export function parseCertificate(pem: string): X509Certificate {
  if (pem.length > PEM_MAX_LENGTH) throw new CertificateProblem(`longer than ${PEM_MAX_LENGTH} characters`)
  const blocks = pem.match(PEM_BLOCK) ?? []
  if (blocks.length !== 1) {
    throw new CertificateProblem(`must hold exactly one PEM certificate, found ${blocks.length}`)
  }
  try {
    return new X509Certificate(blocks[0])
  } catch (cause) {
    throw new CertificateProblem('is not a parsable X.509 certificate', { cause })
  }
}

/** SHA-256 of the DER certificate as lowercase hex without colons, the form the registry stores. */
export function fingerprintOf(certificate: X509Certificate): string {
  return certificate.fingerprint256.replaceAll(':', '').toLowerCase()
}

/** Accepts `AB:CD:...` or `abcd...`; undefined unless it is 32 bytes of hex. */
export function normaliseFingerprint(value: string): string | undefined {
  if (value.length > 128) return undefined
  const hex = value.replaceAll(':', '').toLowerCase()
  return FINGERPRINT.test(hex) ? hex : undefined
}

/** The subject's common name (the last CN when there are several, the most specific one). */
export function commonNameOf(certificate: X509Certificate): string | undefined {
  let cn: string | undefined
  for (const line of certificate.subject.split('\n')) if (line.startsWith('CN=')) cn = line.slice(3)
  return cn
}

/** A tenant trust anchor from a CA certificate: it must be a CA and not expired. */
export function trustAnchorFrom(pem: string, now: Date): TrustAnchor {
  const certificate = parseCertificate(pem)
  if (!certificate.ca) throw new CertificateProblem('is not a CA certificate (basicConstraints CA:TRUE)')
  if (certificate.validToDate.getTime() <= now.getTime()) {
    throw new CertificateProblem(`expired on ${certificate.validToDate.toISOString()}`)
  }
  return {
    certificate: certificate.toString(),
    subject: certificate.subject.split('\n').join(', '),
    fingerprint: fingerprintOf(certificate),
    notAfter: certificate.validToDate.toISOString(),
  }
}
