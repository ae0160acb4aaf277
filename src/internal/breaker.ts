/**
 * The circuit breaker as pure arithmetic: a state, an event and the time in,
 * the next state out. The store holds the states; the engine applies these
 * functions inside the store's atomic `modify`.
 *
 * Why our own and not effect/persistence's CircuitBreaker: that one trips on
 * consecutive failures or a failure rate, has no sliding time window that a
 * success does not wipe, no bounded half-open probe count and no ramp-up of
 * traffic after closing; and its state transitions are not exposed as pure
 * functions we could property-test or run inside a Redis script.
 */

/** Breaker settings, all times in milliseconds. */
export interface BreakerSettings {
  /** counted failures within `windowMs` that open the breaker */
  readonly failures: number
  readonly windowMs: number
  /** first open period; doubles on each consecutive trip up to `cooldownMaxMs` */
  readonly cooldownMs: number
  readonly cooldownMaxMs: number
  /** probes admitted at once while half-open; that many successes close it */
  readonly halfOpen: number
  /** after closing, traffic weight ramps linearly from 10 % to 100 % over this */
  readonly rampUpMs: number
}

export type BreakerState =
  | {
    readonly _tag: "Closed"
    /** times of counted failures within the window, oldest first */
    readonly failures: ReadonlyArray<number>
    /** consecutive trips so far (grows the cooldown); 0 once healthy for a window */
    readonly trips: number
    /** when the breaker last closed (ramp-up start), if it ever opened */
    readonly closedAt: number | undefined
  }
  | { readonly _tag: "Open"; readonly until: number; readonly trips: number; readonly openedAt: number }
  | {
    readonly _tag: "HalfOpen"
    readonly probing: number
    readonly successes: number
    readonly trips: number
    /** when this half-open period began (the open period's `until`); a probe admitted before it is stale */
    readonly since?: number
  }

export const initial: BreakerState = { _tag: "Closed", failures: [], trips: 0, closedAt: undefined }

/** The cooldown of the n-th consecutive trip (n >= 1). */
export const cooldownOf = (settings: BreakerSettings, trips: number): number =>
  Math.min(settings.cooldownMaxMs, settings.cooldownMs * 2 ** Math.max(0, trips - 1))

/** An open breaker whose cooldown has passed is half-open. Read-time view; pure. */
export const current = (state: BreakerState, now: number): BreakerState =>
  state._tag === "Open" && now >= state.until
    ? { _tag: "HalfOpen", probing: 0, successes: 0, trips: state.trips, since: state.until }
    : state

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
      return s.probing < settings.halfOpen ? ["probe", { ...s, probing: s.probing + 1 }] : ["refused", s]
  }
}

/** What an attempt ended with, as the breaker sees it. */
export type BreakerOutcome = "success" | "failure" | "ignored"

const prune = (failures: ReadonlyArray<number>, now: number, windowMs: number): ReadonlyArray<number> => {
  let i = 0
  while (i < failures.length && failures[i]! <= now - windowMs) i++
  return i === 0 ? failures : failures.slice(i)
}

const open = (settings: BreakerSettings, trips: number, now: number): BreakerState => ({
  _tag: "Open",
  until: now + cooldownOf(settings, trips),
  trips,
  openedAt: now
})

/**
 * Records the end of an attempt that held a permit (`probe` says whether it
 * was a half-open probe, `admittedAt` when its permit was taken). `ignored`
 * (validation, throttles, interruptions) only gives a probe slot back. A
 * probe admitted in an earlier half-open period (the breaker reopened and
 * half-opened again since) holds no slot of this one and says nothing about
 * this period: it is ignored.
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
      // a model healthy for a whole window since it closed starts again from the base cooldown
      const trips = s.trips > 0 && s.closedAt !== undefined && now - s.closedAt >= settings.windowMs ? 0 : s.trips
      if (outcome !== "failure") return trips === s.trips ? state : { ...s, trips }
      const failures = [...prune(s.failures, now, settings.windowMs), now]
      if (failures.length >= settings.failures) return open(settings, trips + 1, now)
      // keep at most `failures` timestamps: bounded memory whatever the traffic
      return { ...s, trips, failures: failures.length > settings.failures ? failures.slice(-settings.failures) : failures }
    }
    case "Open":
      // an attempt admitted before the breaker opened ended; the open period stands
      return state
    case "HalfOpen": {
      // an attempt admitted while closed that ends now says nothing about recovery
      if (!probe) return state
      if (admittedAt !== undefined && s.since !== undefined && admittedAt < s.since) return state
      const probing = Math.max(0, s.probing - 1)
      if (outcome === "failure") return open(settings, s.trips + 1, now)
      if (outcome === "ignored") return { ...s, probing }
      const successes = s.successes + 1
      return successes >= settings.halfOpen
        ? { _tag: "Closed", failures: [], trips: s.trips, closedAt: now }
        : { ...s, probing, successes }
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

/** The public name of a state. */
export const stateName = (state: BreakerState, now: number): "closed" | "open" | "half-open" => {
  const s = current(state, now)
  return s._tag === "Closed" ? "closed" : s._tag === "Open" ? "open" : "half-open"
}
