// The HTTP-only limit on the body size: a declared Content-Length is checked before reading;
// request.ts counts the rest while it streams in. The per-device message rate every adapter shares
// is in ../device-limits.ts.

/** True when Content-Length alone shows the body is too large, so it need not be read at all. */
export function declaredTooLarge(contentLength: string | undefined, maxBytes: number): boolean {
  if (contentLength === undefined) return false
  const declared = Number(contentLength)
  return Number.isFinite(declared) && declared > maxBytes
}
