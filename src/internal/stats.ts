/**
 * Bounded statistics: a fixed-size log-bucket latency histogram and a
 * per-second ring for windowed error rates. Nothing here grows with traffic.
 */

const MIN_MS = 0.01
const FACTOR = 1.05
const BUCKETS = 400 // 0.01 ms … ~3e6 ms (50 min) at 5 % resolution
const LOG_FACTOR = Math.log(FACTOR)

/** Latency histogram with ±2.5 % quantile error, O(1) record, fixed 400 buckets. */
export class Histogram {
  readonly counts = new Uint32Array(BUCKETS)
  count = 0
  sum = 0
  min = Infinity
  max = 0

  record(ms: number): void {
    const v = ms > 0 ? ms : 0
    const i = v <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(v / MIN_MS) / LOG_FACTOR))
    this.counts[i]! += 1
    this.count += 1
    this.sum += v
    if (v < this.min) this.min = v
    if (v > this.max) this.max = v
  }

  /** The q-quantile (0..1), reported as the bucket's geometric middle (±2.5 %) clamped to [min, max]. */
  quantile(q: number): number {
    if (this.count === 0) return 0
    const rank = Math.max(1, Math.ceil(q * this.count))
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!
      if (seen >= rank) {
        const middle = i === 0 ? MIN_MS : MIN_MS * FACTOR ** (i - 0.5)
        return Math.min(this.max, Math.max(this.min, middle))
      }
    }
    return this.max
  }

  get mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count
  }

  reset(): void {
    this.counts.fill(0)
    this.count = 0
    this.sum = 0
    this.min = Infinity
    this.max = 0
  }
}

/**
 * Successes and failures per second over a sliding window of whole seconds. One array, a slot per second of
 * [second, successes, failures], so a record touches one place in memory, not three (the mux's cost on a real
 * call is set by the memory it touches: bench/results/README.md, cold suite).
 */
export class WindowCounter {
  /** forgets every second */
  reset(): void {
    for (let i = 0; i < this.windowSeconds; i++) this.slots[3 * i] = -1
  }

  private readonly slots: Float64Array
  readonly windowSeconds: number
  constructor(windowSeconds: number) {
    this.windowSeconds = windowSeconds
    this.slots = new Float64Array(3 * windowSeconds)
    this.reset()
  }

  private slot(now: number): number {
    const sec = Math.floor(now / 1000)
    const i = 3 * (sec % this.windowSeconds)
    if (this.slots[i] !== sec) {
      this.slots[i] = sec
      this.slots[i + 1] = 0
      this.slots[i + 2] = 0
    }
    return i
  }

  record(now: number, success: boolean): void {
    const i = this.slot(now)
    this.slots[success ? i + 1 : i + 2]! += 1
  }

  /** [successes, failures] within the window ending at `now`. */
  totals(now: number): readonly [number, number] {
    const sec = Math.floor(now / 1000)
    let ok = 0
    let failed = 0
    for (let i = 0; i < this.windowSeconds; i++) {
      if (this.slots[3 * i]! > sec - this.windowSeconds) {
        ok += this.slots[3 * i + 1]!
        failed += this.slots[3 * i + 2]!
      }
    }
    return [ok, failed]
  }
}

/** Weight of each new sample in the moving averages selectors read. */
export const EWMA_WEIGHT = 0.2

const ewma = (current: number | undefined, sample: number): number =>
  current === undefined ? sample : current + EWMA_WEIGHT * (sample - current)

/** A model's last failure: what it was and when (no prompt or answer in it). */
export interface LastFailure {
  readonly reason: string
  readonly message: string
  readonly at: number
}

/** Counters and latency of one model; the live `Target.Stats` selectors read. */
export class ModelStats {
  successes = 0
  failures = 0
  throttles = 0
  failFast = 0
  refusals = 0
  lastSuccessAt: number | undefined = undefined
  lastFailureAt: number | undefined = undefined
  lastFailure: LastFailure | undefined = undefined
  latencyEwmaMs: number | undefined = undefined
  timeToFirstTokenEwmaMs: number | undefined = undefined
  outputTokensEwma: number | undefined = undefined
  readonly latency = new Histogram()
  /** streams: time to the first content event, to the last event, and output tokens per second after the first */
  readonly ttft = new Histogram()
  readonly ttlt = new Histogram()
  readonly tokensPerSecond = new Histogram()
  /** streams cut after content was delivered */
  interrupted = 0
  readonly window: WindowCounter
  /**
   * The observer's metric series for this model's successes (internal/telemetry.ts), beside the counters a
   * success updates; not enumerable, so the stats a selector reads or a log prints show only statistics.
   */
  declare seriesCache: unknown
  constructor(windowSeconds: number) {
    this.window = new WindowCounter(windowSeconds)
    Object.defineProperty(this, "seriesCache", { value: undefined, writable: true, enumerable: false })
  }

  /** A successful answer that took `ms` (and used `outputTokens`, if known). */
  succeeded(now: number, ms: number, outputTokens: number | undefined): void {
    this.successes += 1
    this.lastSuccessAt = now
    this.latency.record(ms)
    this.latencyEwmaMs = ewma(this.latencyEwmaMs, ms)
    if (outputTokens !== undefined) this.outputTokensEwma = ewma(this.outputTokensEwma, outputTokens)
    this.window.record(now, true)
  }

  /** Zeroes the counters and histograms (the moving averages selectors read stay: they are not totals). */
  reset(): void {
    this.successes = 0
    this.failures = 0
    this.throttles = 0
    this.failFast = 0
    this.refusals = 0
    this.interrupted = 0
    this.lastSuccessAt = undefined
    this.lastFailureAt = undefined
    this.lastFailure = undefined
    this.latency.reset()
    this.ttft.reset()
    this.ttlt.reset()
    this.tokensPerSecond.reset()
    this.window.reset()
  }

  /** A stream's first content event came `ms` after its attempt started. */
  firstToken(ms: number): void {
    this.ttft.record(ms)
    this.timeToFirstTokenEwmaMs = ewma(this.timeToFirstTokenEwmaMs, ms)
  }

  /** A failed attempt: `kind` says how it counts; `counted`: toward the breaker's error rate. */
  failed(now: number, kind: "throttle" | "fail-fast" | "failure" | "refusal", counted: boolean, failure: LastFailure): void {
    this.lastFailureAt = now
    this.lastFailure = failure
    if (kind === "throttle") this.throttles += 1
    else if (kind === "fail-fast") this.failFast += 1
    else if (kind === "refusal") this.refusals += 1
    else this.failures += 1
    if (counted) this.window.record(now, false)
  }
}

/** Request-level counters of a mux. */
export class MuxStats {
  requests = 0
  successes = 0
  failures = 0
  failovers = 0
  /** hedged attempts started, and hedges whose attempt won */
  hedges = 0
  hedgesWon = 0
  /** streams interrupted after content was delivered, and of those, restarted on another model */
  interrupted = 0
  restarts = 0
  readonly latency = new Histogram()
  /** hedge budget: hedgeable requests (ok) and hedges (failed) per second over the last minute */
  readonly hedgeWindow = new WindowCounter(60)

  /** Zeroes the request counters and latency (the hedge budget's window stays: it is a limit, not a total). */
  reset(): void {
    this.requests = 0
    this.successes = 0
    this.failures = 0
    this.failovers = 0
    this.hedges = 0
    this.hedgesWon = 0
    this.interrupted = 0
    this.restarts = 0
    this.latency.reset()
  }
}
