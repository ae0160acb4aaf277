import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as Breaker from "../src/internal/breaker.ts"

// ---------------------------------------------------------------------------------------------
// A reference model written from the documented behaviour only (src/internal/breaker.ts and
// BedrockMux's module doc), deliberately in a different shape from the implementation:
// explicit mode, explicit probe identities, failures kept unpruned and counted by filtering.
// ---------------------------------------------------------------------------------------------

interface Settings extends Breaker.BreakerSettings {}

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
  trips = 0
  closedAt: number | undefined = undefined
  until = 0
  period = 0
  /** ids of the probes admitted in the current half-open period and still in flight */
  probing = new Set<number>()
  successes = 0

  readonly s: Settings
  constructor(s: Settings) {
    this.s = s
  }

  cooldown(trips: number): number {
    let c = this.s.cooldownMs
    for (let i = 1; i < trips; i++) c = Math.min(this.s.cooldownMaxMs, c * 2)
    return Math.min(this.s.cooldownMaxMs, c)
  }

  /** lets time pass: an open breaker whose cooldown has passed is half-open with no probes */
  tick(now: number): void {
    if (this.mode === "open" && now >= this.until) {
      this.mode = "half-open"
      this.period += 1
      this.probing = new Set()
      this.successes = 0
    }
  }

  open(now: number, trips: number): void {
    this.mode = "open"
    this.trips = trips
    this.until = now + this.cooldown(trips)
    this.failures = []
  }

  inWindow(now: number): Array<number> {
    return this.failures.filter((t) => t > now - this.s.windowMs)
  }

  acquire(now: number, id: number): Breaker.Permit {
    this.tick(now)
    if (this.mode === "closed") return "granted"
    if (this.mode === "open") return "refused"
    if (this.probing.size >= this.s.halfOpen) return "refused"
    this.probing.add(id)
    return "probe"
  }

  settle(now: number, held: Held, outcome: Breaker.BreakerOutcome): void {
    this.tick(now)
    if (this.mode === "closed") {
      if (outcome !== "failure") return
      // consecutive trips are forgotten once the model has been closed for a whole window
      if (this.closedAt !== undefined && now - this.closedAt >= this.s.windowMs) this.trips = 0
      this.failures.push(now)
      if (this.inWindow(now).length >= this.s.failures) this.open(now, this.trips + 1)
      return
    }
    if (this.mode === "open") return
    // half-open: only the probes of this period say anything about recovery
    if (!held.probe || held.period !== this.period || !this.probing.has(held.id)) return
    this.probing.delete(held.id)
    if (outcome === "failure") this.open(now, this.trips + 1)
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
    return this.mode === "closed" || (this.mode === "half-open" && this.probing.size < this.s.halfOpen)
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
    cooldownMs: fc.integer({ min: 1, max: 5_000 }),
    factor: fc.integer({ min: 1, max: 16 }),
    halfOpen: fc.integer({ min: 1, max: 3 }),
    rampUpMs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 10_000 }))
  })
  .map(({ factor, ...s }) => ({ ...s, cooldownMaxMs: s.cooldownMs * factor }))

const eventArb: fc.Arbitrary<Event> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ _tag: "acquire" } as const) },
  {
    weight: 5,
    arbitrary: fc.record({
      _tag: fc.constant("settle" as const),
      pick: fc.nat(),
      outcome: fc.constantFrom<Breaker.BreakerOutcome>("failure", "failure", "success", "ignored")
    })
  },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("advance" as const), ms: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3_000 }), fc.integer({ min: 1, max: 40_000 })) }) },
  { weight: 2, arbitrary: fc.constant({ _tag: "advanceToUntil" } as const) }
)

/** How often the random runs reached each situation (guards against a vacuous generator). */
const coverage = { open: 0, halfOpen: 0, reclosed: 0, reopened: 0, probesFull: 0 }

/**
 * The checks of `run`, with chai's assertion (and the message, the state as JSON) reached only when
 * a check fails. The property makes ~2 million checks; through chai each costs microseconds, which
 * made this one test take 5 s on an idle machine and far longer on a busy one.
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

/** Runs events against both the implementation and the model, checking them after every step. */
const run = (settings: Settings, events: ReadonlyArray<Event>): void => {
  const model = new Model(settings)
  let state: Breaker.BreakerState = Breaker.initial
  let now = 1_000_000
  let ids = 0
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
    if (model.mode === "open") {
      is.equal(Breaker.recoversAt(settings, state, now), model.until, where)
      // the cooldown never exceeds the cap
      const s = Breaker.current(state, now)
      is.equal(s._tag, "Open", where)
      if (s._tag === "Open") {
        is.atMost(s.until - s.openedAt, settings.cooldownMaxMs, where)
        is.equal(s.until - s.openedAt, model.cooldown(model.trips), where)
      }
    } else if (!model.admits(now)) {
      is.equal(Breaker.recoversAt(settings, state, now), now, where)
    } else {
      is.undefined(Breaker.recoversAt(settings, state, now), where)
    }
    if (state._tag === "Closed") {
      // bounded memory: never more timestamps than the threshold
      is.atMost(state.failures.length, settings.failures, where)
      const live = state.failures.filter((t) => t > now - settings.windowMs)
      is.sameNumbers(live, model.inWindow(now), where)
    }
    if (model.mode === "open") coverage.open++
    if (model.mode === "half-open") coverage.halfOpen++
    if (model.mode === "closed" && model.closedAt !== undefined) coverage.reclosed++
    if (model.mode === "open" && model.trips > 1) coverage.reopened++
    if (model.mode === "half-open" && model.probing.size === settings.halfOpen && settings.halfOpen > 1) coverage.probesFull++
    // never more probes of the current half-open period in flight than `halfOpen`
    const inFlight = held.filter((h) => h.probe && h.period === model.period && model.mode === "half-open")
    is.atMost(inFlight.length, settings.halfOpen, where)
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
        const expected = model.acquire(now, id)
        assert.strictEqual(permit, expected, `step ${step}: acquire at ${now}, impl ${JSON.stringify(state)}`)
        state = next
        if (permit !== "refused") held.push({ id, probe: permit === "probe", period: model.period, acquiredAt: now })
        break
      }
      case "settle": {
        if (held.length === 0) break
        const [h] = held.splice(e.pick % held.length, 1)
        state = Breaker.record(settings, state, now, e.outcome, h!.probe, h!.acquiredAt)
        model.settle(now, h!, e.outcome)
        break
      }
    }
    check(step)
  })
}

describe("breaker (model-based)", () => {
  it("property: the implementation agrees with the reference model on every random event sequence", () => {
    fc.assert(
      fc.property(settingsArb, fc.array(eventArb, { minLength: 1, maxLength: 200, size: "max" }), (settings, events) => {
        run(settings, events)
      }),
      { seed: 4242, numRuns: 1000 }
    )
    // the generator reaches every state, repeated trips and saturated half-open periods
    for (const [k, v] of Object.entries(coverage)) assert.isAbove(v, 500, k)
  })
})

describe("breaker (model-based, fixed sequences)", () => {
  it("a probe from an earlier half-open period neither frees a slot nor counts toward closing", () => {
    const settings: Settings = { failures: 1, windowMs: 10_000, cooldownMs: 1_000, cooldownMaxMs: 8_000, halfOpen: 2, rampUpMs: 0 }
    run(settings, [
      { _tag: "acquire" },
      { _tag: "settle", pick: 0, outcome: "failure" }, // open
      { _tag: "advanceToUntil" },
      { _tag: "acquire" }, // probe A
      { _tag: "acquire" }, // probe B
      { _tag: "settle", pick: 0, outcome: "failure" }, // A fails: reopen
      { _tag: "advanceToUntil" },
      { _tag: "acquire" }, // probe C
      { _tag: "acquire" }, // probe D
      { _tag: "settle", pick: 0, outcome: "success" }, // B (stale) succeeds
      { _tag: "acquire" } // must be refused: C and D are in flight
    ])
  })
})

describe("breaker (examples)", () => {
  const settings: Settings = { failures: 3, windowMs: 10_000, cooldownMs: 1_000, cooldownMaxMs: 3_000, halfOpen: 2, rampUpMs: 1_000 }
  const fail = (s: Breaker.BreakerState, now: number) => Breaker.record(settings, s, now, "failure", false)

  it("opens exactly at the `failures`-th counted failure inside the window; a success does not wipe them", () => {
    let s = Breaker.initial
    s = fail(s, 0)
    s = Breaker.record(settings, s, 1, "success", false)
    s = fail(s, 2)
    assert.strictEqual(Breaker.stateName(s, 2), "closed")
    s = fail(s, 3)
    assert.strictEqual(Breaker.stateName(s, 3), "open")
    assert.strictEqual(Breaker.recoversAt(settings, s, 3), 1_003)
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

  it("cooldown doubles per consecutive trip, capped at cooldownMax; probes close it; ramp-up 10% -> 100%", () => {
    let s = Breaker.initial
    for (const t of [0, 0, 0]) s = fail(s, t)
    assert.strictEqual(Breaker.recoversAt(settings, s, 0), 1_000)
    assert.strictEqual(Breaker.weightFactor(settings, s, 999), 0)
    // half-open at 1000: two probes, a third refused
    const [p1, s1] = Breaker.acquire(settings, s, 1_000)
    const [p2, s2] = Breaker.acquire(settings, s1, 1_000)
    const [p3] = Breaker.acquire(settings, s2, 1_000)
    assert.deepStrictEqual([p1, p2, p3], ["probe", "probe", "refused"])
    // a probe failure reopens with trips + 1: cooldown 2000
    s = Breaker.record(settings, s2, 1_100, "failure", true)
    assert.strictEqual(Breaker.recoversAt(settings, s, 1_100), 3_100)
    // again: 4000 capped at 3000
    const [, h] = Breaker.acquire(settings, s, 3_100)
    s = Breaker.record(settings, h, 3_200, "failure", true)
    assert.strictEqual(Breaker.recoversAt(settings, s, 3_200), 6_200)
    // two probe successes close it
    const [, a] = Breaker.acquire(settings, s, 6_200)
    const [, b] = Breaker.acquire(settings, a, 6_200)
    s = Breaker.record(settings, b, 6_300, "success", true)
    assert.strictEqual(Breaker.stateName(s, 6_300), "half-open")
    s = Breaker.record(settings, s, 6_400, "success", true)
    assert.strictEqual(Breaker.stateName(s, 6_400), "closed")
    assert.closeTo(Breaker.weightFactor(settings, s, 6_400), 0.1, 1e-12)
    assert.closeTo(Breaker.weightFactor(settings, s, 6_900), 0.55, 1e-12)
    assert.strictEqual(Breaker.weightFactor(settings, s, 7_400), 1)
  })
})
