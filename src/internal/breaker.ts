/**
 * The circuit breaker as pure arithmetic: a state, an event and the time in,
 * the next state out. The store holds the states (Schema-encoded, so a shared
 * store can keep them as JSON); the breaker guard applies these functions
 * inside the store's atomic `modify`.
 *
 * Probing is a policy of its own: an open breaker admits a probe every
 * `probeIntervalMs`. A probe that fails fast (an HTTP error response: the
 * model answered, it cost the request almost nothing) keeps the interval; a
 * probe that fails slowly (a timeout, no response: it cost its request the
 * whole timeout) doubles it, up to `probeIntervalMaxMs`. So a recovered model
 * gets traffic back within one interval, and a hanging one costs at most one
 * timed-out request per (growing) interval. After closing, the model's weight
 * ramps from 10 % to 100 % over `rampUpMs`.
 *
 * Why our own and not effect/persistence's CircuitBreaker: that one trips on
 * consecutive failures or a failure rate, has no sliding time window that a
 * success does not wipe, admits a single probe, has no ramp-up of traffic
 * after closing and no fast/slow distinction for failed probes; and its
 * transitions are not pure functions we could property-test and run on any
 * store. It plugs in as a guard all the same (examples/effect-circuit-breaker.ts).
 */
import { Schema } from "effect"

/** Breaker settings, all times in milliseconds. */
export interface BreakerSettings {
  /** counted failures within `windowMs` that open the breaker */
  readonly failures: number
  readonly windowMs: number
  /** while open, a probe is admitted every this long */
  readonly probeIntervalMs: number
  /** a probe that fails slowly doubles the interval, up to this */
  readonly probeIntervalMaxMs: number
  /** probes admitted at once while half-open; that many successes close it */
  readonly halfOpen: number
  /** after closing, traffic weight ramps linearly from 10 % to 100 % over this */
  readonly rampUpMs: number
}

/**
 * How long a half-open probe holds its slot at most: a probe whose process
 * died (a shared store outlives it) must not keep the model out for good.
 */
export const PROBE_LEASE_MS = 120_000

const Closed = Schema.TaggedStruct("Closed", {
  /** times of counted failures within the window, oldest first (at most `failures` of them) */
  failures: Schema.Array(Schema.Finite),
  /** when the breaker last closed (ramp-up start), if it ever opened */
  closedAt: Schema.optionalKey(Schema.Finite)
})
const Open = Schema.TaggedStruct("Open", {
  /** the next probe is admitted from here on */
  until: Schema.Finite,
  /** the probe interval in force */
  intervalMs: Schema.Finite,
  openedAt: Schema.Finite
})
const HalfOpen = Schema.TaggedStruct("HalfOpen", {
  probing: Schema.Int,
  successes: Schema.Int,
  intervalMs: Schema.Finite,
  /** when this half-open period began (the open period's `until`); a probe admitted before it is stale */
  since: Schema.Finite,
  /** when the last probe was admitted (its lease runs from here) */
  probeAt: Schema.Finite
})

/** A breaker's state, as the store keeps it. */
export const BreakerState = Schema.Union([Closed, Open, HalfOpen])
export type BreakerState = typeof BreakerState.Type

export const initial: BreakerState = { _tag: "Closed", failures: [] }

/** An open breaker whose interval has passed is half-open; expired probe leases are given back. Read-time view; pure. */
export const current = (state: BreakerState, now: number): BreakerState => {
  if (state._tag === "Open") {
    return now >= state.until
      ? { _tag: "HalfOpen", probing: 0, successes: 0, intervalMs: state.intervalMs, since: state.until, probeAt: state.until }
      : state
  }
  if (state._tag === "HalfOpen" && state.probing > 0 && now - state.probeAt >= PROBE_LEASE_MS) {
    return { ...state, probing: 0 }
  }
  return state
}

/** The share of its weight a model gets now: 0 while open, ramping 0.1 → 1 after closing. */
export const weightFactor = (settings: BreakerSettings, state: BreakerState, now: number): number => {
  const s = current(state, now)
  switch (s._tag) {
    case "Open":
      return 0
    case "HalfOpen":
      return 1
    case "Closed": {
      if (s.closedAt === undefined || settings.rampUpMs <= 0) return 1
      const t = (now - s.closedAt) / settings.rampUpMs
      return t >= 1 ? 1 : 0.1 + 0.9 * Math.max(0, t)
    }
  }
}

/** Can this model take an attempt now? Half-open admits up to `halfOpen` probes at once. */
export const admits = (settings: BreakerSettings, state: BreakerState, now: number): boolean => {
  const s = current(state, now)
  return s._tag === "Closed" || (s._tag === "HalfOpen" && s.probing < settings.halfOpen)
}

/** A permit for one attempt: refused, granted, or granted as a half-open probe. */
export type Permit = "refused" | "granted" | "probe"

/** Takes a permit for one attempt (in half-open, one probe slot) and the next state. */
export const acquire = (
  settings: BreakerSettings,
  state: BreakerState,
  now: number
): readonly [permit: Permit, next: BreakerState] => {
  const s = current(state, now)
  switch (s._tag) {
    case "Closed":
      return ["granted", state]
    case "Open":
      return ["refused", state]
    case "HalfOpen":
      return s.probing < settings.halfOpen ? ["probe", { ...s, probing: s.probing + 1, probeAt: now }] : ["refused", s]
  }
}

/**
 * What an attempt ended with, as the breaker sees it: a success, a counted
 * failure that was fast (an error response) or slow (a timeout, no
 * response), or nothing it counts (validation, throttles, interruptions).
 */
export type BreakerOutcome = "success" | "fast-failure" | "slow-failure" | "ignored"

const prune = (failures: ReadonlyArray<number>, now: number, windowMs: number): ReadonlyArray<number> => {
  let i = 0
  while (i < failures.length && failures[i]! <= now - windowMs) i++
  return i === 0 ? failures : failures.slice(i)
}

const open = (intervalMs: number, now: number): BreakerState => ({ _tag: "Open", until: now + intervalMs, intervalMs, openedAt: now })

/**
 * Records the end of an attempt that held a permit (`probe` says whether it
 * was a half-open probe, `admittedAt` when its permit was taken). `ignored`
 * only gives a probe slot back. A probe admitted in an earlier half-open
 * period (the breaker reopened and half-opened again since) holds no slot of
 * this one and says nothing about this period: it is ignored.
 */
export const record = (
  settings: BreakerSettings,
  state: BreakerState,
  now: number,
  outcome: BreakerOutcome,
  probe: boolean,
  admittedAt?: number
): BreakerState => {
  const s = current(state, now)
  switch (s._tag) {
    case "Closed": {
      if (outcome === "success" || outcome === "ignored") return state
      const failures = [...prune(s.failures, now, settings.windowMs), now]
      if (failures.length >= settings.failures) return open(settings.probeIntervalMs, now)
      // keep at most `failures` timestamps: bounded memory whatever the traffic
      return { ...s, failures: failures.length > settings.failures ? failures.slice(-settings.failures) : failures }
    }
    case "Open":
      // an attempt admitted before the breaker opened ended; the open period stands
      return state
    case "HalfOpen": {
      // an attempt admitted while closed that ends now says nothing about recovery
      if (!probe) return state
      if (admittedAt !== undefined && admittedAt < s.since) return state
      // a probe that outlived its lease no longer holds a slot (it was given back when the lease ran out)
      if (admittedAt !== undefined && now - admittedAt >= PROBE_LEASE_MS) return state
      const probing = Math.max(0, s.probing - 1)
      switch (outcome) {
        case "fast-failure":
          // the model answered with an error: down, but probing it is cheap; keep the interval
          return open(s.intervalMs, now)
        case "slow-failure":
          // the probe cost its request a timeout: probe less often
          return open(Math.min(settings.probeIntervalMaxMs, s.intervalMs * 2), now)
        case "ignored":
          return { ...s, probing }
        case "success": {
          const successes = s.successes + 1
          return successes >= settings.halfOpen
            ? { _tag: "Closed", failures: [], closedAt: now }
            : { ...s, probing, successes }
        }
      }
    }
  }
}

/** When a model that cannot take traffic now will admit again (undefined: it can now). */
export const recoversAt = (settings: BreakerSettings, state: BreakerState, now: number): number | undefined => {
  if (admits(settings, state, now)) return undefined
  const s = current(state, now)
  // a half-open breaker with all probe slots taken frees one when a probe ends: unknown, say now
  return s._tag === "Open" ? s.until : now
}

/**
 * The failures a breaker counts now, for health: while closed, its counted
 * failures within the window; while open or half-open, `failures` (it opened
 * on that many; the open state keeps no list of them).
 */
export const failureCount = (settings: BreakerSettings, state: BreakerState, now: number): number => {
  const s = current(state, now)
  return s._tag === "Closed" ? prune(s.failures, now, settings.windowMs).length : settings.failures
}

/** The public name of a state. */
export const stateName = (state: BreakerState, now: number): "closed" | "open" | "half-open" => {
  const s = current(state, now)
  return s._tag === "Closed" ? "closed" : s._tag === "Open" ? "open" : "half-open"
}
