// Client certificate checks done by the adapter rather than by the TLS layer, because trust is per
// tenant: the TLS handshake accepts any certificate, and CONNECT verifies the chain against the
// trust anchors of the device's tenant (issuer, signature, validity dates).
import { X509Certificate } from 'node:crypto'
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls'
import type { TrustAnchor } from '../../core/registry/model.ts'

/** Leaf plus intermediates a client may present; longer chains are not followed. */
export const MAX_CHAIN = 5
const MAX_PARSED_ANCHORS = 1_000

/** The certificates the client sent (leaf first); empty when it sent none. */
export function peerChain(socket: TLSSocket): X509Certificate[] {
  const chain: X509Certificate[] = []
  const seen = new Set<string>()
  let current: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true)
  // Node links issuerCertificate up to a self-signed root, which points at itself.
  while (current?.raw !== undefined && chain.length < MAX_CHAIN && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256)
    chain.push(new X509Certificate(current.raw))
    current = current.issuerCertificate
  }
  return chain
}

const parsedAnchors = new Map<string, X509Certificate>()

/** Anchors are parsed once per fingerprint (they were validated when the tenant was written). */
export function anchorCertificate(anchor: TrustAnchor): X509Certificate | undefined {
  let certificate = parsedAnchors.get(anchor.fingerprint)
  if (certificate === undefined) {
    try {
      certificate = new X509Certificate(anchor.certificate)
    } catch {
      return undefined
    }
    if (parsedAnchors.size >= MAX_PARSED_ANCHORS) parsedAnchors.clear()
    parsedAnchors.set(anchor.fingerprint, certificate)
  }
  return certificate
}

const validAt = (c: X509Certificate, at: number): boolean =>
  c.validFromDate.getTime() <= at && at <= c.validToDate.getTime()

/** Issuer name (and key identifier) match, and the issuer's key verifies the signature. */
const signedBy = (c: X509Certificate, issuer: X509Certificate): boolean =>
  c.checkIssued(issuer) && c.verify(issuer.publicKey)

/**
 * True when the leaf, through CA certificates the client sent, chains up to one of the anchors,
 * every certificate on the way valid at `now`. A CA certificate is never accepted as the leaf.
 */
export function verifyChain(
  chain: readonly X509Certificate[],
  anchors: readonly TrustAnchor[],
  now: Date,
): boolean {
  const leaf = chain[0]
  if (leaf === undefined || leaf.ca) return false
  const at = now.getTime()
  const roots = anchors
    .map(anchorCertificate)
    .filter((c): c is X509Certificate => c !== undefined && validAt(c, at))
  let current = leaf
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    if (!validAt(current, at)) return false
    if (roots.some((root) => signedBy(current, root))) return true
    const next = chain.find((c) => c !== current && c.ca && signedBy(current, c))
    if (next === undefined) return false
    current = next
  }
  return false
}
