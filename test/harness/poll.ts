// Polling for end-to-end suites: a condition that becomes true through the cluster's own work.

/**
 * Polls `fn` until it returns a value other than undefined/false and returns it; thrown errors count
 * as "not yet". Fails with `what` and the last value or error seen once `timeoutMs` has passed.
 */
export async function poll<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${seen?.slice(0, 500)})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
