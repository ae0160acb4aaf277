/**
 * Quota arithmetic: a sliding one-minute log of reservations, the way
 * Bedrock counts (a request takes one RPM slot and reserves input +
 * maxTokens of TPM when it starts; the reservation is settled to the real
 * usage when it ends). Deterministic and effect-free: the time comes in as
 * `now`. The in-memory store runs this class; the Redis store runs the same
 * algorithm as a Lua script.
 *
 * Why not effect/persistence's RateLimiter: its fixed window and token
 * bucket count a cost when the request starts and cannot settle it later to
 * what the request really used, and its Redis store reads Redis' clock, so
 * it cannot run under TestClock.
 *
 * Cost: reserve, settle and release are O(1) amortized (a running token sum,
 * entries indexed by id, pruning from the head); only a rejection scans the
 * window to say when room will come. Memory is bounded by the limits: at
 * most `rpm` live entries (or `tpm`, since every entry holds a token).
 */

export const WINDOW_MS = 60_000

export interface Limits {
  readonly rpm?: number | undefined
  readonly tpm?: number | undefined
}

export type Reservation =
  | { readonly ok: true }
  | {
    readonly ok: false
    readonly kind: "requests" | "tokens"
    /** when a reservation of this size could fit (Infinity: never, it exceeds the limit itself) */
    readonly retryAfterMs: number
  }

interface Entry {
  readonly id: string
  readonly at: number
  tokens: number
  live: boolean
}

/** One quota's sliding window. */
export class QuotaWindow {
  private entries: Array<Entry> = []
  private head = 0
  private readonly byId = new Map<string, Entry>()
  private requests = 0
  private tokens = 0
  private readonly windowMs: number

  constructor(windowMs = WINDOW_MS) {
    this.windowMs = windowMs
  }

  private prune(now: number): void {
    const entries = this.entries
    while (this.head < entries.length && entries[this.head]!.at <= now - this.windowMs) {
      const e = entries[this.head]!
      if (e.live) {
        this.requests -= 1
        this.tokens -= e.tokens
        this.byId.delete(e.id)
      }
      this.head += 1
    }
    if (this.head > 1024 && this.head * 2 > entries.length) {
      this.entries = entries.slice(this.head)
      this.head = 0
    }
  }

  /**
   * Reserves one request and `tokens` tokens, or says which limit is in the
   * way and until when. When both limits bind, the wait is the longer of the
   * two (and `kind` the limit that needs it): both must have room.
   */
  reserve(now: number, limits: Limits, id: string, tokens: number): Reservation {
    this.prune(now)
    let rpmWait = -1
    if (limits.rpm !== undefined && this.requests >= limits.rpm) {
      // room comes when the (requests - rpm + 1)-th oldest live entry leaves
      let skip = this.requests - limits.rpm
      for (let i = this.head; i < this.entries.length; i++) {
        const e = this.entries[i]!
        if (!e.live) continue
        if (skip === 0) {
          rpmWait = Math.max(0, e.at + this.windowMs - now)
          break
        }
        skip -= 1
      }
    }
    let tpmWait = -1
    if (limits.tpm !== undefined) {
      if (tokens > limits.tpm) tpmWait = Infinity
      else if (this.tokens + tokens > limits.tpm) {
        let need = this.tokens + tokens - limits.tpm
        let at = now
        for (let i = this.head; i < this.entries.length && need > 0; i++) {
          const e = this.entries[i]!
          if (!e.live) continue
          need -= e.tokens
          at = e.at + this.windowMs
        }
        tpmWait = Math.max(0, at - now)
      }
    }
    if (rpmWait >= 0 || tpmWait >= 0) {
      return tpmWait > rpmWait
        ? { ok: false, kind: "tokens", retryAfterMs: tpmWait }
        : { ok: false, kind: "requests", retryAfterMs: rpmWait }
    }
    const entry: Entry = { id, at: now, tokens, live: true }
    this.entries.push(entry)
    this.byId.set(id, entry)
    this.requests += 1
    this.tokens += tokens
    return { ok: true }
  }

  /** Sets a reservation's tokens to what the request really used. */
  settle(id: string, tokens: number): void {
    const e = this.byId.get(id)
    if (e === undefined) return
    this.tokens += tokens - e.tokens
    e.tokens = tokens
  }

  /** Gives a reservation back (the request failed before Bedrock counted it). */
  release(id: string): void {
    const e = this.byId.get(id)
    if (e === undefined) return
    e.live = false
    this.byId.delete(id)
    this.requests -= 1
    this.tokens -= e.tokens
  }

  /** Requests and tokens in the window now. */
  usage(now: number): { readonly requests: number; readonly tokens: number } {
    this.prune(now)
    return { requests: this.requests, tokens: this.tokens }
  }
}
