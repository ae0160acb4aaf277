import { assert, describe, it } from "@effect/vitest"
import { Schema } from "effect"
import * as fc from "fast-check"
import type * as BedrockError from "../src/BedrockError.ts"
import * as Guard from "../src/Guard.ts"
import * as Cooldown from "../src/internal/cooldown.ts"
import { settingsOf } from "../src/internal/cooldownGuard.ts"

// ---------------------------------------------------------------------------------------------
// A reference model of throttle cooldowns, written from src/internal/cooldown.ts's module doc
// and docs/concepts.md, in its own shape (a class with named fields, the trial as an object):
//
// - a throttle with `retry-after` cools the model for exactly that long;
// - otherwise for base x 2^(level - 1), capped at the kind's maximum, where level counts the
//   throttles in a row: it grows by one for each throttle that comes within LEVEL_MEMORY_MS of
//   the previous one without a success in between; a daily throttle cools for its cap;
// - a later throttle never shortens a cooldown in force (it still raises the level);
// - after a cooldown ends ONE request goes (the trial); the others wait for its outcome; a trial
//   holds its slot at most TRIAL_LEASE_MS;
// - a throttle of a request admitted before the last throttle does not raise the level (a burst is one
//   throttle): it cools the model for its level's length from now (or its retry-after), if that is longer;
// - a success clears the cooldown, unless its request was admitted before the last throttle;
//   an outcome that is neither (an error, an interruption) only gives the trial slot back;
// - a cooldown over for as long again as it lasted (from the last throttle to its end), with no
//   trial in flight, needs no trial: every request goes (a `stale` permit), and its level is still
//   remembered until a success.
//
// A trial is the one in flight only while the state still records its admission: a trial admitted
// before a later throttle (whose slot a newer trial may hold) is an ordinary request when it ends.
// ---------------------------------------------------------------------------------------------

type Kind = BedrockError.ThrottleKind
const kinds: ReadonlyArray<Kind> = ["requests", "tokens", "daily", "unknown"]

class Model {
  cooling = false
  until = 0
  level = 0
  kind: Kind = "requests"
  lastThrottle = 0
  trial: { readonly at: number } | undefined = undefined
  /** coverage */
  leases = 0

  readonly s: Cooldown.CooldownSettings
  constructor(s: Cooldown.CooldownSettings) {
    this.s = s
  }

  tick(now: number): void {
    if (this.cooling && this.trial !== undefined && now - this.trial.at >= Cooldown.TRIAL_LEASE_MS) {
      this.trial = undefined
      this.leases++
    }
  }

  /** over for as long again as it lasted, and nobody on trial */
  stale(now: number): boolean {
    this.tick(now)
    return this.cooling && this.trial === undefined && now >= this.until + (this.until - this.lastThrottle)
  }

  /** the cooldown a throttle starts, by the doc's arithmetic */
  duration(kind: Kind, level: number, retryAfterMs: number | undefined): number {
    if (retryAfterMs !== undefined) return retryAfterMs
    const cap = this.s.maxMs[kind]
    if (kind === "daily") return cap
    let d = this.s.baseMs
    for (let i = 1; i < level; i++) d *= 2
    return Math.min(cap, d)
  }

  admits(now: number): boolean {
    this.tick(now)
    return !this.cooling || this.stale(now) || (now >= this.until && this.trial === undefined)
  }

  recoversAt(now: number): number | undefined {
    if (this.admits(now)) return undefined
    return now < this.until ? this.until : now
  }

  acquire(now: number): Cooldown.Permit {
    this.tick(now)
    if (!this.cooling) return "free"
    if (this.stale(now)) return "stale"
    if (now < this.until || this.trial !== undefined) return "refused"
    this.trial = { at: now }
    return "trial"
  }

  /** the trial in flight: the permit was a trial and the state still records its admission */
  isTrial(permit: Cooldown.Permit, admittedAt: number): boolean {
    return permit === "trial" && this.trial?.at === admittedAt
  }

  /** returns the new end when the throttle started or extended the cooldown */
  settle(now: number, outcome: Cooldown.Outcome, permit: Cooldown.Permit, admittedAt: number): number | undefined {
    this.tick(now)
    switch (outcome._tag) {
      case "Throttled": {
        if (this.cooling && admittedAt < this.lastThrottle && !this.isTrial(permit, admittedAt)) {
          // sent before the last throttle came back: the level stays; it cools for the level's length from now
          const end = now + this.duration(outcome.kind, this.level, outcome.retryAfterMs)
          if (this.until >= end) return undefined
          this.until = end
          this.kind = outcome.kind
          this.trial = undefined
          return end
        }
        const level = this.cooling && now - this.lastThrottle < Cooldown.LEVEL_MEMORY_MS ? this.level + 1 : 1
        const end = now + this.duration(outcome.kind, level, outcome.retryAfterMs)
        this.level = level
        this.lastThrottle = now
        if (this.cooling && this.until >= end) {
          // the longer cooldown stands; a throttled trial is over
          if (this.isTrial(permit, admittedAt)) this.trial = undefined
          return undefined
        }
        this.cooling = true
        this.until = end
        this.kind = outcome.kind
        this.trial = undefined
        return end
      }
      case "Success":
        // the trial in flight, or a request sent after the last throttle, got through
        if (this.cooling && (this.isTrial(permit, admittedAt) || admittedAt >= this.lastThrottle)) {
          this.cooling = false
          this.trial = undefined
          this.level = 0
        }
        return undefined
      case "Other":
        // the trial in flight gives its slot back; an older one holds none
        if (this.cooling && this.isTrial(permit, admittedAt)) this.trial = undefined
        return undefined
    }
  }
}

// --- harness -------------------------------------------------------------------------------------

interface Held {
  readonly permit: Cooldown.Permit
  readonly admittedAt: number
}

type OutcomeSpec =
  | { readonly _tag: "Throttled"; readonly kind: Kind; readonly retryAfterMs: number | undefined }
  | { readonly _tag: "Success" }
  | { readonly _tag: "Other" }

type Event =
  | { readonly _tag: "acquire" }
  | { readonly _tag: "settle"; readonly pick: number; readonly outcome: OutcomeSpec }
  /** an attempt of another process (admitted `ago` ms earlier, free) ends: a store shared by muxes */
  | { readonly _tag: "foreign"; readonly ago: number; readonly outcome: OutcomeSpec }
  | { readonly _tag: "advance"; readonly ms: number }
  | { readonly _tag: "advanceToUntil" }

const settingsArb: fc.Arbitrary<Cooldown.CooldownSettings> = fc.record({
  baseMs: fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 6, arbitrary: fc.integer({ min: 1, max: 1_000 }) }),
  maxMs: fc.record({
    requests: fc.integer({ min: 0, max: 30_000 }),
    tokens: fc.integer({ min: 0, max: 60_000 }),
    daily: fc.integer({ min: 0, max: 3_600_000 }),
    unknown: fc.integer({ min: 0, max: 30_000 })
  })
})

const outcomeArb: fc.Arbitrary<OutcomeSpec> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      _tag: fc.constant("Throttled" as const),
      kind: fc.constantFrom<Kind>("requests", "requests", "tokens", "unknown", "daily"),
      retryAfterMs: fc.oneof(
        { weight: 4, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 20_000 }) }
      )
    })
  },
  { weight: 3, arbitrary: fc.constant({ _tag: "Success" } as const) },
  { weight: 2, arbitrary: fc.constant({ _tag: "Other" } as const) }
)

const eventArb: fc.Arbitrary<Event> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ _tag: "acquire" } as const) },
  { weight: 5, arbitrary: fc.record({ _tag: fc.constant("settle" as const), pick: fc.nat(), outcome: outcomeArb }) },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("foreign" as const), ago: fc.integer({ min: 0, max: 5_000 }), outcome: outcomeArb }) },
  {
    weight: 3,
    arbitrary: fc.record({
      _tag: fc.constant("advance" as const),
      ms: fc.oneof(
        { weight: 1, arbitrary: fc.constant(0) },
        { weight: 4, arbitrary: fc.integer({ min: 1, max: 2_000 }) },
        { weight: 2, arbitrary: fc.integer({ min: 1, max: 40_000 }) },
        // about the level memory, and past a trial's lease
        { weight: 1, arbitrary: fc.integer({ min: Cooldown.LEVEL_MEMORY_MS - 2_000, max: Cooldown.LEVEL_MEMORY_MS + 2_000 }) },
        { weight: 2, arbitrary: fc.integer({ min: Cooldown.TRIAL_LEASE_MS - 1_000, max: Cooldown.TRIAL_LEASE_MS + 30_000 }) }
      )
    })
  },
  { weight: 2, arbitrary: fc.constant({ _tag: "advanceToUntil" } as const) }
)

const toOutcome = (o: OutcomeSpec): Cooldown.Outcome => o

/** How often the random runs reached each situation (guards against a vacuous generator). */
const coverage = {
  cooling: 0,
  doubled: 0,
  capped: 0,
  daily: 0,
  retryAfter: 0,
  stood: 0,
  levelForgotten: 0,
  trials: 0,
  trialRefused: 0,
  trialCleared: 0,
  earlySuccessKept: 0,
  leaseExpired: 0,
  stalePermits: 0,
  staleCleared: 0
}

/** chai is reached only when a check fails (the property makes about a million checks) */
const is = {
  equal: <A>(actual: A, expected: A, where: () => string) => {
    if (actual !== expected) assert.strictEqual(actual, expected, where())
  },
  true: (value: boolean, where: () => string) => {
    if (value !== true) assert.isTrue(value, where())
  }
}

const isState = Schema.is(Cooldown.CooldownState)

const run = (settings: Cooldown.CooldownSettings, events: ReadonlyArray<Event>): void => {
  const model = new Model(settings)
  let state: Cooldown.CooldownState | undefined = undefined
  let now = 5_000_000
  let leases = 0
  const held: Array<Held> = []

  const check = (step: number) => {
    const where = () => `step ${step} at ${now}: impl ${JSON.stringify(state)}`
    model.tick(now)
    const admits = Cooldown.admits(state, now)
    is.equal(admits, model.admits(now), where)
    const at = Cooldown.recoversAt(state, now)
    is.equal(at, model.recoversAt(now), where)
    // admits now, or recovers at a time not in the past
    is.true(admits ? at === undefined : at !== undefined && at >= now, where)
    is.equal(state !== undefined, model.cooling, where)
    if (state !== undefined) {
      is.equal(state.until, model.until, where)
      is.equal(state.level, model.level, where)
      is.equal(state.kind, model.kind, where)
      is.equal(state.since, model.lastThrottle, where)
      // an expired trial lease is given back on reading; the stored field may lag until the next write
      const trialAt = state.trialAt !== undefined && now - state.trialAt < Cooldown.TRIAL_LEASE_MS ? state.trialAt : undefined
      is.equal(trialAt, model.trial?.at, where)
      is.true(state.level >= 1, where)
      coverage.cooling++
    }
    if (model.leases > leases) coverage.leaseExpired++
    leases = model.leases
  }

  const settle = (step: number, outcome: OutcomeSpec, h: Held) => {
    model.tick(now)
    const before = state
    const wasCooling = model.cooling
    const previousUntil = model.until
    const previousThrottle = model.lastThrottle
    const [next, started] = Cooldown.record(settings, state, now, toOutcome(outcome), h.permit, h.admittedAt)
    const expected = model.settle(now, toOutcome(outcome), h.permit, h.admittedAt)
    const where = () => `step ${step} at ${now}: ${JSON.stringify(outcome)} ${JSON.stringify(h)} on ${JSON.stringify(before)} -> ${JSON.stringify(next)}`
    is.equal(started, expected, where)
    state = next
    if (outcome._tag === "Throttled") {
      // a later throttle never shortens a cooldown in force
      if (wasCooling) is.true(model.until >= previousUntil, where)
      // never longer than the kind's cap, unless Bedrock said so
      if (outcome.retryAfterMs === undefined) is.true(started === undefined || started - now <= settings.maxMs[outcome.kind], where)
      else if (started !== undefined) is.equal(started - now, outcome.retryAfterMs, where)
      if (started !== undefined) {
        is.equal(started - now, Cooldown.durationOf(settings, outcome.kind, model.level, outcome.retryAfterMs), where)
        if (outcome.retryAfterMs !== undefined) coverage.retryAfter++
        else if (outcome.kind === "daily") coverage.daily++
        else if (model.level > 1 && started - now === settings.maxMs[outcome.kind] && settings.baseMs * 2 ** (model.level - 1) > settings.maxMs[outcome.kind]) coverage.capped++
        else if (model.level > 1) coverage.doubled++
      } else coverage.stood++
      if (wasCooling && model.level === 1) coverage.levelForgotten++
    }
    if (outcome._tag === "Success" && wasCooling) {
      if (!model.cooling && h.permit === "trial") coverage.trialCleared++
      if (!model.cooling && h.permit === "stale") coverage.staleCleared++
      if (model.cooling && h.admittedAt < previousThrottle) coverage.earlySuccessKept++
    }
  }

  events.forEach((e, step) => {
    switch (e._tag) {
      case "advance":
        now += e.ms
        break
      case "advanceToUntil":
        if (model.cooling) now = Math.max(now, model.until)
        break
      case "acquire": {
        const [permit, next] = Cooldown.acquire(state, now)
        const expected = model.acquire(now)
        if (permit !== expected) assert.strictEqual(permit, expected, `step ${step}: acquire at ${now} on ${JSON.stringify(state)}`)
        if (permit === "trial") coverage.trials++
        if (permit === "stale") coverage.stalePermits++
        if (permit === "refused" && state !== undefined && now >= state.until) coverage.trialRefused++
        state = next
        if (permit !== "refused") held.push({ permit, admittedAt: now })
        break
      }
      case "settle": {
        if (held.length === 0) break
        const [h] = held.splice(e.pick % held.length, 1)
        settle(step, e.outcome, h!)
        break
      }
      case "foreign":
        settle(step, e.outcome, { permit: "free", admittedAt: now - e.ago })
        break
    }
    check(step)
  })
  if (state !== undefined && !isState(state)) assert.fail(`not a valid stored state: ${JSON.stringify(state)}`)
}

describe("cooldown (model-based)", () => {
  it("property: the implementation agrees with the reference model on every random event sequence", () => {
    fc.assert(
      fc.property(settingsArb, fc.array(eventArb, { minLength: 1, maxLength: 150, size: "max" }), (settings, events) => {
        run(settings, events)
      }),
      { seed: 8080, numRuns: 1000 }
    )
    for (const [k, v] of Object.entries(coverage)) assert.isAbove(v, 100, k)
  })

  it("property: durationOf is retry-after as is, the cap for daily, else min(cap, base x 2^(level - 1)), growing with the level", () => {
    fc.assert(
      fc.property(settingsArb, fc.constantFrom(...kinds), fc.integer({ min: 1, max: 40 }), fc.option(fc.integer({ min: 0, max: 100_000 }), { nil: undefined }), (s, kind, level, retryAfter) => {
        const d = Cooldown.durationOf(s, kind, level, retryAfter)
        if (retryAfter !== undefined) assert.strictEqual(d, retryAfter)
        else if (kind === "daily") assert.strictEqual(d, s.maxMs.daily)
        else {
          assert.strictEqual(d, Math.min(s.maxMs[kind], s.baseMs * 2 ** (level - 1)))
          assert.isAtLeast(Cooldown.durationOf(s, kind, level + 1, undefined), d)
          assert.isAtMost(d, s.maxMs[kind])
        }
      }),
      { seed: 9, numRuns: 500 }
    )
  })
})

// --- examples ------------------------------------------------------------------------------------

describe("cooldown (examples, default settings)", () => {
  const s = settingsOf(Guard.defaultCooldown)
  const throttled = (kind: Kind = "requests", retryAfterMs?: number): Cooldown.Outcome => ({ _tag: "Throttled", kind, retryAfterMs })
  const success: Cooldown.Outcome = { _tag: "Success" }
  const other: Cooldown.Outcome = { _tag: "Other" }
  /** the throttle of a request admitted at `now` with no cooldown in force */
  const throttle = (state: Cooldown.CooldownState | undefined, now: number, kind: Kind = "requests", retryAfterMs?: number) =>
    Cooldown.record(s, state, now, throttled(kind, retryAfterMs), "free", now)

  it("the defaults: base 500 ms, caps requests 10 s, tokens 30 s, daily 1 h, unknown 10 s", () => {
    assert.deepStrictEqual(s, { baseMs: 500, maxMs: { requests: 10_000, tokens: 30_000, daily: 3_600_000, unknown: 10_000 } })
  })

  it("a first throttle without retry-after cools the model for 500 ms", () => {
    const [state, started] = throttle(undefined, 1_000)
    assert.strictEqual(started, 1_500)
    assert.deepStrictEqual(state, { until: 1_500, level: 1, kind: "requests", since: 1_000 })
    assert.isFalse(Cooldown.admits(state, 1_499))
    assert.strictEqual(Cooldown.recoversAt(state, 1_000), 1_500)
    assert.strictEqual(Cooldown.acquire(state, 1_499)[0], "refused")
  })

  it("each throttle within 60 s without a success doubles it, up to the kind's cap", () => {
    for (const [kind, cap] of [["requests", 10_000], ["tokens", 30_000], ["unknown", 10_000]] as const) {
      let state: Cooldown.CooldownState | undefined
      let now = 0
      const durations: Array<number> = []
      for (let i = 0; i < 8; i++) {
        // the trial after each cooldown is throttled again
        const [permit, taken] = Cooldown.acquire(state, now)
        assert.strictEqual(permit, i === 0 ? "free" : "trial")
        const [next, started] = Cooldown.record(s, taken, now, throttled(kind), permit, now)
        durations.push(started! - now)
        state = next
        now = started!
      }
      assert.deepStrictEqual(durations, [500, 1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000].map((d) => Math.min(d, cap)), kind)
    }
  })

  it("a burst: throttles of requests sent before the first one came back do not raise the level", () => {
    // five requests admitted together at 0, their throttles back at 200, 201, 202, 203, 204 ms
    let [state, started] = Cooldown.record(s, undefined, 200, throttled(), "free", 0)
    assert.strictEqual(started, 700)
    for (let t = 201; t <= 204; t++) {
      const [next, again] = Cooldown.record(s, state, t, throttled(), "free", 0)
      // each is the bucket still empty: 500 ms from its own time, at level 1 (not 1, 2, 4, 8 s)
      assert.strictEqual(again, t + 500)
      state = next
    }
    assert.deepStrictEqual(state, { until: 704, level: 1, kind: "requests", since: 200 })
    // one of them carried a retry-after beyond the cooldown: Bedrock's word extends it, the level stays
    const [extended, until] = Cooldown.record(s, state, 205, throttled("tokens", 2_000), "free", 0)
    assert.strictEqual(until, 2_205)
    assert.deepStrictEqual(extended, { until: 2_205, level: 1, kind: "tokens", since: 200 })
    // a shorter one changes nothing
    assert.deepStrictEqual(Cooldown.record(s, extended, 206, throttled(), "free", 0), [extended, undefined])
    // a request sent after the throttle was known (the trial) raises the level as before
    const [permit, taken] = Cooldown.acquire(extended, 2_205)
    assert.strictEqual(permit, "trial")
    assert.strictEqual(Cooldown.record(s, taken, 2_300, throttled(), permit, 2_205)[1], 2_300 + 1_000)
  })

  it("a daily throttle cools for its cap at once", () => {
    const [state, started] = throttle(undefined, 0, "daily")
    assert.strictEqual(started, 3_600_000)
    assert.strictEqual(state!.kind, "daily")
  })

  it("a retry-after is used as it is, shorter or longer than the arithmetic (even above the cap)", () => {
    assert.strictEqual(throttle(undefined, 0, "requests", 1_234)[1], 1_234)
    assert.strictEqual(throttle(undefined, 0, "requests", 45_000)[1], 45_000)
    assert.strictEqual(throttle(undefined, 0, "daily", 60_000)[1], 60_000)
    // it still counts as a throttle in a row
    const [first] = throttle(undefined, 0)
    const [second, ends] = Cooldown.record(s, first, 600, throttled("requests", 100), "trial", 600)
    assert.deepStrictEqual([second!.level, ends], [2, 700])
  })

  it("a later throttle never shortens a cooldown: the longer one stands, the level still rises", () => {
    const [long] = throttle(undefined, 0, "tokens", 10_000)
    const [after, started] = throttle(long, 1_000, "requests", 100)
    assert.isUndefined(started)
    assert.deepStrictEqual(after, { until: 10_000, level: 2, kind: "tokens", since: 1_000 })
    // a longer one extends it
    const [extended, until] = throttle(after, 2_000, "requests", 20_000)
    assert.strictEqual(until, 22_000)
    assert.deepStrictEqual(extended, { until: 22_000, level: 3, kind: "requests", since: 2_000 })
  })

  it("a throttle 60 s or more after the last one starts again from the base", () => {
    // a 40 s retry-after: the cooldown is remembered until 80 s (as long again as it lasted)
    const [long] = throttle(undefined, 0, "requests", 40_000)
    assert.strictEqual(long!.level, 1)
    assert.strictEqual(throttle(long, 59_999)[1], 59_999 + 1_000) // level 2
    assert.strictEqual(throttle(long, 60_000)[1], 60_000 + 500) // level 1
  })

  it("a cooldown nobody tried for as long again as it lasted needs no trial; its level stays until a success", () => {
    const [first] = throttle(undefined, 0)
    const [second] = Cooldown.record(s, first, 500, throttled(), "trial", 500) // level 2: until 1500, lasted 1000
    assert.strictEqual(Cooldown.acquire(second, 2_499)[0], "trial")
    // from 2500 on every request goes, none holds a trial slot
    const [p1, s1] = Cooldown.acquire(second, 2_500)
    const [p2, s2] = Cooldown.acquire(s1, 2_500)
    assert.deepStrictEqual([p1, p2], ["stale", "stale"])
    assert.deepStrictEqual([s1, s2], [second, second])
    assert.isTrue(Cooldown.admits(second, 2_500))
    assert.isUndefined(Cooldown.recoversAt(second, 2_500))
    // the level is remembered: a throttle now is the third in a row
    const [third, ends] = Cooldown.record(s, second, 2_600, throttled(), "stale", 2_500)
    assert.deepStrictEqual([third!.level, ends], [3, 4_600])
    // a success clears it: the next throttle starts from the base
    const [cleared] = Cooldown.record(s, second, 2_600, success, "stale", 2_500)
    assert.isUndefined(cleared)
    assert.strictEqual(throttle(cleared, 2_700)[1], 3_200)
    // never while a trial is in flight
    const [, trying] = Cooldown.acquire(second, 1_500)
    assert.strictEqual(Cooldown.acquire(trying, 10_000)[0], "refused")
    assert.strictEqual(Cooldown.record(s, trying, 10_000, throttled(), "trial", 1_500)[0]!.level, 3)
  })

  it("after a cooldown ends, one trial goes; the others wait; a trial that errors gives its slot back", () => {
    const [state] = throttle(undefined, 0)
    const [p1, s1] = Cooldown.acquire(state, 500)
    const [p2, s2] = Cooldown.acquire(s1, 500)
    assert.deepStrictEqual([p1, p2], ["trial", "refused"])
    assert.isFalse(Cooldown.admits(s1, 600))
    // the trial's outcome is unknown yet: it may recover any time, so "now"
    assert.strictEqual(Cooldown.recoversAt(s2, 600), 600)
    const [back] = Cooldown.record(s, s2, 700, other, "trial", 500)
    assert.isTrue(Cooldown.admits(back, 700))
    assert.deepStrictEqual(back, state)
    assert.strictEqual(Cooldown.acquire(back, 700)[0], "trial")
  })

  it("a trial's success clears the cooldown: the next throttle starts from the base again", () => {
    const [first] = throttle(undefined, 0)
    const [second] = Cooldown.record(s, first, 500, throttled(), "trial", 500) // level 2, until 1500
    const [, taken] = Cooldown.acquire(second, 1_500)
    const [cleared, started] = Cooldown.record(s, taken, 1_600, success, "trial", 1_500)
    assert.deepStrictEqual([cleared, started], [undefined, undefined])
    assert.strictEqual(Cooldown.acquire(cleared, 1_600)[0], "free")
    assert.strictEqual(throttle(cleared, 2_000)[1], 2_500)
  })

  it("a success of a request admitted before the last throttle does not clear it; one admitted after does", () => {
    const [state] = throttle(undefined, 1_000) // another request's throttle at 1000
    // admitted at 900, with no cooldown in force: it says nothing about the bucket after 1000
    const [kept, started] = Cooldown.record(s, state, 1_200, success, "free", 900)
    assert.strictEqual(kept, state)
    assert.isUndefined(started)
    // admitted at (or after) the throttle: the bucket has room again
    assert.deepStrictEqual(Cooldown.record(s, state, 1_200, success, "free", 1_000), [undefined, undefined])
    // an error of a request that was not a trial changes nothing
    assert.strictEqual(Cooldown.record(s, state, 1_200, other, "free", 900)[0], state)
    // with no cooldown at all, a success or an error is nothing
    assert.deepStrictEqual(Cooldown.record(s, undefined, 0, success, "free", 0), [undefined, undefined])
    assert.deepStrictEqual(Cooldown.record(s, undefined, 0, other, "free", 0), [undefined, undefined])
  })

  it("trial lease: a trial that never ends holds its slot for TRIAL_LEASE_MS, then another request is the trial", () => {
    // long enough (a 200 s retry-after) not to be stale (no trial needed) once the lease runs out
    const [state] = throttle(undefined, 0, "requests", 200_000)
    const [, taken] = Cooldown.acquire(state, 200_000)
    const expiry = 200_000 + Cooldown.TRIAL_LEASE_MS
    assert.strictEqual(Cooldown.acquire(taken, expiry - 1)[0], "refused")
    assert.strictEqual(Cooldown.recoversAt(taken, expiry - 1), expiry - 1)
    assert.isTrue(Cooldown.admits(taken, expiry))
    assert.isUndefined(Cooldown.recoversAt(taken, expiry))
    const [permit, again] = Cooldown.acquire(taken, expiry)
    assert.strictEqual(permit, "trial")
    assert.strictEqual(again!.trialAt, expiry)
  })

  it("a throttled trial starts the next, doubled, cooldown and frees the trial slot", () => {
    const [state] = throttle(undefined, 0)
    const [, taken] = Cooldown.acquire(state, 500)
    const [next, started] = Cooldown.record(s, taken, 600, throttled(), "trial", 500)
    assert.strictEqual(started, 1_600)
    assert.deepStrictEqual(next, { until: 1_600, level: 2, kind: "requests", since: 600 })
    assert.strictEqual(Cooldown.acquire(next, 1_600)[0], "trial")
  })

  it("states survive the store: Schema-encoded to JSON and back", () => {
    const encode = Schema.encodeSync(Cooldown.CooldownState)
    const decode = Schema.decodeUnknownSync(Cooldown.CooldownState)
    const [state] = throttle(undefined, 0, "tokens")
    const [, withTrial] = Cooldown.acquire(state, 500)
    for (const st of [state!, withTrial!]) assert.deepStrictEqual(decode(JSON.parse(JSON.stringify(encode(st)))), st)
  })
})
