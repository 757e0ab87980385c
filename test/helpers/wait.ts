// Waiting in tests without sleeps: poll a condition with a bound, and fail with a useful message.
export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  options: { timeoutMs?: number; intervalMs?: number; message?: () => string } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000)
  for (;;) {
    if (await condition()) return
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting: ${options.message?.() ?? condition.toString()}`)
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 20))
  }
}

/** A promise with its resolver, settled by an event the test awaits. */
export function deferred<T = void>(): {
  promise: Promise<T>
  resolve: (value: T) => void
  reject: (err: unknown) => void
} {
  return Promise.withResolvers<T>()
}

export const uniqueName = (prefix: string): string =>
  `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`
