/**
 * Quota arithmetic: a sliding one-minute log of reservations, the way
 * Bedrock counts (a request takes one RPM slot and reserves input +
 * maxTokens of TPM when it starts; the reservation is settled to the real
 * usage when it ends). Pure: the stores apply it atomically, the in-memory
 * one directly, the Redis one as the same algorithm in a Lua script.
 *
 * Why not effect/persistence's RateLimiter: its fixed window and token
 * bucket count a cost when the request starts and cannot settle it later to
 * what the request really used, and its Redis store reads Redis' clock, so
 * it cannot run under TestClock.
 *
 * Memory is bounded: a window holds at most `rpm` entries (or `tpm`, since
 * every entry reserves at least one token).
 */

export const WINDOW_MS = 60_000

export interface Limits {
  readonly rpm?: number | undefined
  readonly tpm?: number | undefined
}

export interface Entry {
  readonly id: string
  readonly at: number
  readonly tokens: number
}

/** A quota window: admitted reservations of the last minute, oldest first. */
export type Window = ReadonlyArray<Entry>

export type Reservation =
  | { readonly ok: true }
  | {
    readonly ok: false
    readonly kind: "requests" | "tokens"
    /** when a reservation of this size could fit (Infinity: never, it exceeds the limit itself) */
    readonly retryAfterMs: number
  }

export const prune = (w: Window, now: number, windowMs = WINDOW_MS): Window => {
  let i = 0
  while (i < w.length && w[i]!.at <= now - windowMs) i++
  return i === 0 ? w : w.slice(i)
}

/** Reserves one request and `tokens` tokens, or says which limit is in the way and until when. */
export const reserve = (
  window: Window,
  now: number,
  limits: Limits,
  id: string,
  tokens: number,
  windowMs = WINDOW_MS
): readonly [Reservation, Window] => {
  const w = prune(window, now, windowMs)
  if (limits.rpm !== undefined && w.length >= limits.rpm) {
    return [{ ok: false, kind: "requests", retryAfterMs: w[w.length - limits.rpm]!.at + windowMs - now }, w]
  }
  if (limits.tpm !== undefined) {
    if (tokens > limits.tpm) return [{ ok: false, kind: "tokens", retryAfterMs: Infinity }, w]
    let used = 0
    for (const e of w) used += e.tokens
    if (used + tokens > limits.tpm) {
      // the earliest time enough old reservations have left the window
      let need = used + tokens - limits.tpm
      let at = now
      for (const e of w) {
        need -= e.tokens
        at = e.at + windowMs
        if (need <= 0) break
      }
      return [{ ok: false, kind: "tokens", retryAfterMs: Math.max(0, at - now) }, w]
    }
  }
  return [{ ok: true }, [...w, { id, at: now, tokens }]]
}

/** Sets a reservation's tokens to what the request really used. */
export const settle = (w: Window, id: string, tokens: number): Window =>
  w.map((e) => (e.id === id ? { ...e, tokens } : e))

/** Gives a reservation back (the request failed before Bedrock counted it). */
export const release = (w: Window, id: string): Window => w.filter((e) => e.id !== id)

/** Requests and tokens in the window now. */
export const usage = (w: Window, now: number, windowMs = WINDOW_MS): { readonly requests: number; readonly tokens: number } => {
  const p = prune(w, now, windowMs)
  let tokens = 0
  for (const e of p) tokens += e.tokens
  return { requests: p.length, tokens }
}
