import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import * as fc from "fast-check"
import * as Breaker from "../src/internal/breaker.ts"

// ---------------------------------------------------------------------------------------------
// A reference model written from the documented behaviour only (src/internal/breaker.ts, Guard's
// module doc and docs/concepts.md), deliberately in a different shape from the implementation:
// explicit mode, numbered half-open periods instead of timestamps, failures kept unpruned and
// counted by filtering, the probe interval as a plain variable.
//
// - closed: a counted failure (fast or slow alike) is remembered; `failures` of them within
//   `window` open the breaker for `probeInterval` (always the base interval: there are no trips).
// - open: every attempt is refused until the interval has passed; then it is half-open.
// - half-open: up to `halfOpen` probes at once. A probe that fails fast reopens for the same
//   interval; one that fails slowly doubles it, up to `probeIntervalMax`; `halfOpen` successes
//   close it (weight ramps 10 % -> 100 % over `rampUp`); `ignored` only gives the slot back.
//   A probe of an earlier half-open period says nothing; an attempt admitted while closed neither.
// - probe lease: the slots are given back once the last probe was admitted PROBE_LEASE_MS ago.
//   A probe that ends after its own lease ran out says nothing: its slot was given back already.
// ---------------------------------------------------------------------------------------------

type Settings = Breaker.BreakerSettings

type Mode = "closed" | "open" | "half-open"

/** An attempt the harness holds: which permit it got, and (for probes) in which half-open period. */
interface Held {
  readonly id: number
  readonly probe: boolean
  /** the half-open period a probe was admitted in (model's numbering) */
  readonly period: number
  readonly acquiredAt: number
}

class Model {
  mode: Mode = "closed"
  /** every counted failure while closed, since the last close (never pruned) */
  failures: Array<number> = []
  closedAt: number | undefined = undefined
  /** the probe interval in force (while open or half-open) */
  interval = 0
  openedAt = 0
  until = 0
  /** how the breaker last opened */
  openedBy: "closed" | "fast-failure" | "slow-failure" = "closed"
  period = 0
  /** when the current half-open period began */
  since = 0
  /** probe slots taken in the current half-open period */
  probing = 0
  /** when the last probe of the current period was admitted */
  lastProbeAt = 0
  successes = 0
  /** how many times a lease gave slots back (coverage) */
  leases = 0

  readonly s: Settings
  constructor(s: Settings) {
    this.s = s
  }

  /** lets time pass: an open breaker whose interval has passed is half-open with no probes; leases run out */
  tick(now: number): void {
    if (this.mode === "open" && now >= this.until) {
      this.mode = "half-open"
      this.period += 1
      this.since = this.until
      this.probing = 0
      this.successes = 0
    }
    if (this.mode === "half-open" && this.probing > 0 && now - this.lastProbeAt >= Breaker.PROBE_LEASE_MS) {
      this.probing = 0
      this.leases += 1
    }
  }

  open(now: number, interval: number, by: Model["openedBy"]): void {
    this.mode = "open"
    this.interval = interval
    this.openedAt = now
    this.until = now + interval
    this.openedBy = by
    this.failures = []
  }

  inWindow(now: number): Array<number> {
    return this.failures.filter((t) => t > now - this.s.windowMs)
  }

  acquire(now: number): Breaker.Permit {
    this.tick(now)
    if (this.mode === "closed") return "granted"
    if (this.mode === "open") return "refused"
    if (this.probing >= this.s.halfOpen) return "refused"
    this.probing += 1
    this.lastProbeAt = now
    return "probe"
  }

  settle(now: number, held: Held, outcome: Breaker.BreakerOutcome): void {
    this.tick(now)
    const failed = outcome === "fast-failure" || outcome === "slow-failure"
    if (this.mode === "closed") {
      if (!failed) return
      this.failures.push(now)
      if (this.inWindow(now).length >= this.s.failures) this.open(now, this.s.probeIntervalMs, "closed")
      return
    }
    if (this.mode === "open") return
    // half-open: only the probes of this period say anything about recovery
    if (!held.probe || held.period !== this.period) return
    if (now - held.acquiredAt >= Breaker.PROBE_LEASE_MS) return
    this.probing = Math.max(0, this.probing - 1)
    if (outcome === "fast-failure") this.open(now, this.interval, "fast-failure")
    else if (outcome === "slow-failure") this.open(now, Math.min(this.s.probeIntervalMaxMs, this.interval * 2), "slow-failure")
    else if (outcome === "success") {
      this.successes += 1
      if (this.successes >= this.s.halfOpen) {
        this.mode = "closed"
        this.failures = []
        this.closedAt = now
      }
    }
  }

  admits(now: number): boolean {
    this.tick(now)
    return this.mode === "closed" || (this.mode === "half-open" && this.probing < this.s.halfOpen)
  }

  weightFactor(now: number): number {
    this.tick(now)
    if (this.mode === "open") return 0
    if (this.mode === "half-open") return 1
    if (this.closedAt === undefined || this.s.rampUpMs <= 0) return 1
    const elapsed = now - this.closedAt
    if (elapsed >= this.s.rampUpMs) return 1
    return 0.1 + (0.9 * elapsed) / this.s.rampUpMs
  }
}

type Event =
  | { readonly _tag: "acquire" }
  | { readonly _tag: "settle"; readonly pick: number; readonly outcome: Breaker.BreakerOutcome }
  | { readonly _tag: "advance"; readonly ms: number }
  | { readonly _tag: "advanceToUntil" }

const settingsArb: fc.Arbitrary<Settings> = fc
  .record({
    failures: fc.integer({ min: 1, max: 5 }),
    windowMs: fc.integer({ min: 1, max: 10_000 }),
    probeIntervalMs: fc.integer({ min: 1, max: 5_000 }),
    factor: fc.integer({ min: 1, max: 16 }),
    halfOpen: fc.integer({ min: 1, max: 3 }),
    rampUpMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 10_000 }))
  })
  // the config rejects a cap below the interval
  .map(({ factor, ...s }) => ({ ...s, probeIntervalMaxMs: s.probeIntervalMs * factor }))

const eventArb: fc.Arbitrary<Event> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ _tag: "acquire" } as const) },
  {
    weight: 5,
    arbitrary: fc.record({
      _tag: fc.constant("settle" as const),
      pick: fc.nat(),
      outcome: fc.constantFrom<Breaker.BreakerOutcome>("fast-failure", "slow-failure", "slow-failure", "success", "ignored")
    })
  },
  {
    weight: 2,
    arbitrary: fc.record({
      _tag: fc.constant("advance" as const),
      ms: fc.oneof(
        { weight: 1, arbitrary: fc.constant(0) },
        { weight: 3, arbitrary: fc.integer({ min: 1, max: 3_000 }) },
        { weight: 2, arbitrary: fc.integer({ min: 1, max: 40_000 }) },
        // past a probe's lease
        { weight: 1, arbitrary: fc.integer({ min: Breaker.PROBE_LEASE_MS - 1_000, max: Breaker.PROBE_LEASE_MS + 60_000 }) }
      )
    })
  },
  { weight: 2, arbitrary: fc.constant({ _tag: "advanceToUntil" } as const) }
)

/** How often the random runs reached each situation (guards against a vacuous generator). */
const coverage = {
  open: 0,
  halfOpen: 0,
  reclosed: 0,
  reopenedFast: 0,
  reopenedSlow: 0,
  doubled: 0,
  capped: 0,
  probesFull: 0,
  leaseExpired: 0,
  staleIgnored: 0
}

/**
 * The checks of `run`, with chai's assertion (and the message, the state as JSON) reached only when
 * a check fails. The property makes millions of checks; through chai each costs microseconds, which
 * made this one test take seconds on an idle machine and far longer on a busy one.
 */
const is = {
  equal: <A>(actual: A, expected: A, where: () => string) => {
    if (actual !== expected) assert.strictEqual(actual, expected, where())
  },
  closeTo: (actual: number, expected: number, delta: number, where: () => string) => {
    if (!(Math.abs(actual - expected) <= delta)) assert.closeTo(actual, expected, delta, where())
  },
  true: (value: boolean, where: () => string) => {
    if (value !== true) assert.isTrue(value, where())
  },
  atMost: (actual: number, bound: number, where: () => string) => {
    if (!(actual <= bound)) assert.isAtMost(actual, bound, where())
  },
  undefined: (value: unknown, where: () => string) => {
    if (value !== undefined) assert.isUndefined(value, where())
  },
  sameNumbers: (actual: ReadonlyArray<number>, expected: ReadonlyArray<number>, where: () => string) => {
    if (actual.length !== expected.length || actual.some((x, i) => x !== expected[i])) assert.deepStrictEqual(actual, expected, where())
  }
}

const isState = Schema.is(Breaker.BreakerState)


/** Runs events against both the implementation and the model, checking them after every step. */
const run = (settings: Settings, events: ReadonlyArray<Event>): void => {
  const model = new Model(settings)
  let state: Breaker.BreakerState = Breaker.initial
  let now = 1_000_000
  let ids = 0
  let leases = 0
  const held: Array<Held> = []

  const check = (step: number) => {
    const where = () => `step ${step} at ${now}: impl ${JSON.stringify(state)}`
    const name = Breaker.stateName(state, now)
    model.tick(now)
    is.equal(name, model.mode, where)
    is.equal(Breaker.admits(settings, state, now), model.admits(now), where)
    const wf = Breaker.weightFactor(settings, state, now)
    is.closeTo(wf, model.weightFactor(now), 1e-9, where)
    is.true(wf === 0 ? model.mode === "open" : wf >= 0.1 - 1e-12 && wf <= 1, where)
    const s = Breaker.current(state, now)
    if (model.mode === "open") {
      is.equal(Breaker.recoversAt(settings, state, now), model.until, where)
      is.equal(s._tag, "Open", where)
      if (s._tag === "Open") {
        // the interval in force: the base, kept by fast failures, doubled by slow ones, never past the cap
        is.equal(s.intervalMs, model.interval, where)
        is.equal(s.until - s.openedAt, model.interval, where)
        is.equal(s.openedAt, model.openedAt, where)
        is.true(s.intervalMs >= settings.probeIntervalMs, where)
        is.atMost(s.intervalMs, settings.probeIntervalMaxMs, where)
      }
    } else if (!model.admits(now)) {
      is.equal(Breaker.recoversAt(settings, state, now), now, where)
    } else {
      is.undefined(Breaker.recoversAt(settings, state, now), where)
    }
    if (s._tag === "HalfOpen") {
      is.equal(s.probing, model.probing, where)
      is.equal(s.successes, model.successes, where)
      is.equal(s.intervalMs, model.interval, where)
      is.equal(s.since, model.since, where)
      // never more probe slots taken than `halfOpen`
      is.atMost(s.probing, settings.halfOpen, where)
    }
    if (state._tag === "Closed") {
      // bounded memory: never more timestamps than the threshold
      is.atMost(state.failures.length, settings.failures, where)
      const live = state.failures.filter((t) => t > now - settings.windowMs)
      is.sameNumbers(live, model.inWindow(now), where)
      is.equal(state.closedAt, model.closedAt, where)
    }
    if (model.mode === "open") coverage.open++
    if (model.mode === "half-open") coverage.halfOpen++
    if (model.mode === "closed" && model.closedAt !== undefined) coverage.reclosed++
    if (model.mode === "open" && model.openedBy === "fast-failure") coverage.reopenedFast++
    if (model.mode === "open" && model.openedBy === "slow-failure") coverage.reopenedSlow++
    if (model.mode === "open" && model.interval > settings.probeIntervalMs) coverage.doubled++
    if (model.mode === "open" && model.interval === settings.probeIntervalMaxMs && settings.probeIntervalMaxMs > settings.probeIntervalMs) {
      coverage.capped++
    }
    if (model.mode === "half-open" && model.probing === settings.halfOpen && settings.halfOpen > 1) coverage.probesFull++
    if (model.leases > leases) coverage.leaseExpired++
    leases = model.leases
  }

  events.forEach((e, step) => {
    switch (e._tag) {
      case "advance":
        now += e.ms
        break
      case "advanceToUntil":
        if (model.mode === "open") now = Math.max(now, model.until)
        break
      case "acquire": {
        const id = ++ids
        const [permit, next] = Breaker.acquire(settings, state, now)
        const expected = model.acquire(now)
        if (permit !== expected) assert.strictEqual(permit, expected, `step ${step}: acquire at ${now}, impl ${JSON.stringify(state)}`)
        state = next
        if (permit !== "refused") held.push({ id, probe: permit === "probe", period: model.period, acquiredAt: now })
        break
      }
      case "settle": {
        if (held.length === 0) break
        const [h] = held.splice(e.pick % held.length, 1)
        model.tick(now)
        if (h!.probe && model.mode === "half-open" && h!.period !== model.period) coverage.staleIgnored++
        state = Breaker.record(settings, state, now, e.outcome, h!.probe, h!.acquiredAt)
        model.settle(now, h!, e.outcome)
        break
      }
    }
    check(step)
  })
  // every state the functions produce is one the store can keep (Schema-valid)
  if (!isState(state)) assert.fail(`not a valid stored state: ${JSON.stringify(state)}`)
}

describe("breaker (model-based)", () => {
  it("property: the implementation agrees with the reference model on every random event sequence", () => {
    fc.assert(
      fc.property(settingsArb, fc.array(eventArb, { minLength: 1, maxLength: 200, size: "max" }), (settings, events) => {
        run(settings, events)
      }),
      { seed: 4242, numRuns: 1000 }
    )
    // the generator reaches every state, fast and slow reopenings, doubled and capped intervals,
    // saturated half-open periods, expired leases and stale probes
    for (const [k, v] of Object.entries(coverage)) assert.isAbove(v, 100, k)
  })
})

describe("breaker (model-based, fixed sequences)", () => {
  it("a probe from an earlier half-open period neither frees a slot nor counts toward closing", () => {
    const settings: Settings = { failures: 1, windowMs: 10_000, probeIntervalMs: 1_000, probeIntervalMaxMs: 8_000, halfOpen: 2, rampUpMs: 0 }
    run(settings, [
      { _tag: "acquire" },
      { _tag: "settle", pick: 0, outcome: "fast-failure" }, // open
      { _tag: "advanceToUntil" },
      { _tag: "acquire" }, // probe A
      { _tag: "acquire" }, // probe B
      { _tag: "settle", pick: 0, outcome: "fast-failure" }, // A fails: reopen
      { _tag: "advanceToUntil" },
      { _tag: "acquire" }, // probe C
      { _tag: "acquire" }, // probe D
      { _tag: "settle", pick: 0, outcome: "success" }, // B (stale) succeeds
      { _tag: "acquire" } // must be refused: C and D are in flight
    ])
    // the same, by hand: B's success leaves the breaker half-open with both slots taken
    let s: Breaker.BreakerState = Breaker.record(settings, Breaker.initial, 0, "fast-failure", false, 0)
    const [, a] = Breaker.acquire(settings, s, 1_000)
    const [, b] = Breaker.acquire(settings, a, 1_000)
    s = Breaker.record(settings, b, 1_100, "fast-failure", true, 1_000) // A
    const [, c] = Breaker.acquire(settings, s, 2_100)
    const [, d] = Breaker.acquire(settings, c, 2_100)
    s = Breaker.record(settings, d, 2_200, "success", true, 1_000) // B, admitted before this period
    assert.deepStrictEqual(s, d)
    assert.strictEqual(Breaker.acquire(settings, s, 2_200)[0], "refused")
  })
})

describe("breaker (examples)", () => {
  const settings: Settings = { failures: 3, windowMs: 10_000, probeIntervalMs: 1_000, probeIntervalMaxMs: 3_000, halfOpen: 2, rampUpMs: 1_000 }
  const fail = (s: Breaker.BreakerState, now: number, outcome: "fast-failure" | "slow-failure" = "fast-failure") =>
    Breaker.record(settings, s, now, outcome, false, now)
  /** opens a closed breaker at `at` */
  const opened = (at: number) => fail(fail(fail(Breaker.initial, at), at), at)
  /** takes a probe at `now` (it must be admitted) */
  const probe = (s: Breaker.BreakerState, now: number) => {
    const [permit, next] = Breaker.acquire(settings, s, now)
    assert.strictEqual(permit, "probe")
    return next
  }

  it("opens exactly at the `failures`-th counted failure inside the window, fast or slow; a success does not wipe them", () => {
    let s = Breaker.initial
    s = fail(s, 0)
    s = Breaker.record(settings, s, 1, "success", false, 1)
    s = fail(s, 2, "slow-failure")
    s = Breaker.record(settings, s, 2, "ignored", false, 2)
    assert.strictEqual(Breaker.stateName(s, 2), "closed")
    s = fail(s, 3)
    assert.strictEqual(Breaker.stateName(s, 3), "open")
    // the first open period is one probe interval
    assert.strictEqual(Breaker.recoversAt(settings, s, 3), 1_003)
    assert.strictEqual(Breaker.acquire(settings, s, 1_002)[0], "refused")
  })

  it("failures older than the window do not count", () => {
    let s = Breaker.initial
    s = fail(s, 1)
    s = fail(s, 2)
    s = fail(s, 10_001) // the failure at 1 is exactly `window` old: out; the one at 2 is in
    assert.strictEqual(Breaker.stateName(s, 10_001), "closed")
    s = fail(s, 10_001)
    assert.strictEqual(Breaker.stateName(s, 10_001), "open")
  })

  it("while open, a probe is admitted every probe interval; a fast probe failure keeps the interval (no trips)", () => {
    let s = opened(0)
    assert.strictEqual(Breaker.weightFactor(settings, s, 999), 0)
    assert.strictEqual(Breaker.acquire(settings, s, 999)[0], "refused")
    // half-open at 1000: two probes, a third refused
    const [p1, s1] = Breaker.acquire(settings, s, 1_000)
    const [p2, s2] = Breaker.acquire(settings, s1, 1_000)
    const [p3] = Breaker.acquire(settings, s2, 1_000)
    assert.deepStrictEqual([p1, p2, p3], ["probe", "probe", "refused"])
    // each fast failure reopens for the same 1 s, however many in a row
    s = s2
    let at = 1_000
    for (let i = 0; i < 5; i++) {
      s = Breaker.record(settings, s, at + 100, "fast-failure", true, at)
      assert.strictEqual(Breaker.recoversAt(settings, s, at + 100), at + 1_100, `fast failure ${i + 1}`)
      at += 1_100
      s = probe(s, at)
    }
  })

  it("a slow probe failure doubles the interval up to probeIntervalMax; a fast one then keeps it", () => {
    let s = probe(opened(0), 1_000)
    s = Breaker.record(settings, s, 1_500, "slow-failure", true, 1_000)
    assert.strictEqual(Breaker.recoversAt(settings, s, 1_500), 3_500) // 2 s
    s = probe(s, 3_500)
    s = Breaker.record(settings, s, 4_000, "slow-failure", true, 3_500)
    assert.strictEqual(Breaker.recoversAt(settings, s, 4_000), 7_000) // 4 s capped at 3 s
    s = probe(s, 7_000)
    s = Breaker.record(settings, s, 7_100, "slow-failure", true, 7_000)
    assert.strictEqual(Breaker.recoversAt(settings, s, 7_100), 10_100) // still 3 s
    s = probe(s, 10_100)
    s = Breaker.record(settings, s, 10_200, "fast-failure", true, 10_100)
    assert.strictEqual(Breaker.recoversAt(settings, s, 10_200), 13_200) // the doubled interval is kept
  })

  it("halfOpen probe successes close it; weight ramps 10% -> 100%; the next opening starts from the base interval again", () => {
    let s = probe(opened(0), 1_000)
    s = Breaker.record(settings, s, 1_100, "slow-failure", true, 1_000) // interval 2 s
    s = probe(probe(s, 3_100), 3_100)
    s = Breaker.record(settings, s, 3_200, "success", true, 3_100)
    assert.strictEqual(Breaker.stateName(s, 3_200), "half-open")
    assert.strictEqual(Breaker.weightFactor(settings, s, 3_200), 1)
    s = Breaker.record(settings, s, 3_400, "success", true, 3_100)
    assert.strictEqual(Breaker.stateName(s, 3_400), "closed")
    assert.closeTo(Breaker.weightFactor(settings, s, 3_400), 0.1, 1e-12)
    assert.closeTo(Breaker.weightFactor(settings, s, 3_900), 0.55, 1e-12)
    assert.strictEqual(Breaker.weightFactor(settings, s, 4_400), 1)
    // reopened from closed: 1 s, not the 2 s it had reached
    for (const t of [5_000, 5_000, 5_000]) s = fail(s, t)
    assert.strictEqual(Breaker.recoversAt(settings, s, 5_000), 6_000)
  })

  it("`ignored` only gives a probe slot back; an attempt admitted while closed says nothing once it is open or half-open", () => {
    const full = probe(probe(opened(0), 1_000), 1_000)
    assert.isFalse(Breaker.admits(settings, full, 1_000))
    assert.strictEqual(Breaker.recoversAt(settings, full, 1_000), 1_000)
    const freed = Breaker.record(settings, full, 1_100, "ignored", true, 1_000)
    assert.isTrue(Breaker.admits(settings, freed, 1_100))
    assert.strictEqual(Breaker.stateName(freed, 1_100), "half-open")
    assert.deepStrictEqual(freed, { ...full, probing: 1 } as Breaker.BreakerState)
    // attempts granted while closed: their outcome changes nothing while half-open or open
    for (const outcome of ["fast-failure", "slow-failure", "success", "ignored"] as const) {
      assert.strictEqual(Breaker.record(settings, full, 1_100, outcome, false, 0), full, outcome)
      const open = opened(0)
      assert.strictEqual(Breaker.record(settings, open, 500, outcome, false, 0), open, outcome)
      assert.strictEqual(Breaker.record(settings, open, 500, outcome, true, 0), open, outcome)
    }
  })

  it("probe lease: a probe that never ends holds its slot for PROBE_LEASE_MS, then the slot is free again", () => {
    const one: Settings = { ...settings, halfOpen: 1 }
    const [, s] = Breaker.acquire(one, Breaker.record(one, fail(fail(Breaker.initial, 0), 0), 0, "fast-failure", false, 0), 1_000)
    assert.strictEqual(Breaker.stateName(s, 1_000), "half-open")
    const lease = 1_000 + Breaker.PROBE_LEASE_MS
    assert.isFalse(Breaker.admits(one, s, lease - 1))
    assert.strictEqual(Breaker.recoversAt(one, s, lease - 1), lease - 1)
    assert.strictEqual(Breaker.acquire(one, s, lease - 1)[0], "refused")
    assert.isTrue(Breaker.admits(one, s, lease))
    assert.isUndefined(Breaker.recoversAt(one, s, lease))
    const [permit, again] = Breaker.acquire(one, s, lease)
    assert.strictEqual(permit, "probe")
    // the new probe's lease runs from its own admission
    assert.isFalse(Breaker.admits(one, again, lease + Breaker.PROBE_LEASE_MS - 1))
    assert.isTrue(Breaker.admits(one, again, lease + Breaker.PROBE_LEASE_MS))
  })

  it("bounded memory: however many failures a closed breaker sees, it keeps at most `failures` timestamps", () => {
    let s = Breaker.initial
    // a failure every 5 s: never 3 within 10 s
    let longest = 0
    for (let i = 0; i < 10_000; i++) {
      s = fail(s, i * 5_000)
      longest = Math.max(longest, s._tag === "Closed" ? s.failures.length : Infinity)
    }
    assert.strictEqual(longest, 2)
    const big: Settings = { ...settings, failures: 1_000, windowMs: 1_000_000 }
    let t = Breaker.initial
    for (let i = 0; i < 999; i++) t = Breaker.record(big, t, i, "slow-failure", false, i)
    assert.strictEqual(t._tag === "Closed" ? t.failures.length : -1, 999)
    t = Breaker.record(big, t, 999, "slow-failure", false, 999)
    assert.strictEqual(Breaker.stateName(t, 999), "open")
  })

  it("states survive the store: Schema-encoded to JSON and back, they decide alike", () => {
    const encode = Schema.encodeSync(Breaker.BreakerState)
    const decode = Schema.decodeUnknownSync(Breaker.BreakerState)
    for (const s of [Breaker.initial, fail(Breaker.initial, 5), opened(0), probe(opened(0), 1_000)]) {
      const back = decode(JSON.parse(JSON.stringify(encode(s))))
      assert.deepStrictEqual(back, s)
    }
  })
})
