/**
 * Throttle cooldowns as pure arithmetic. A throttle says the account's bucket
 * for this model is briefly empty, not that the model is gone, so the
 * response is sized by the evidence:
 *
 * - a `retry-after` from Bedrock is used as it is;
 * - otherwise the cooldown starts small and doubles with each throttle that
 *   follows without a success in between (`level`), up to the kind's cap: the
 *   multiplicative back-off of the AWS SDK's retry strategies (throttling
 *   base delay 500 ms, doubling, capped), applied to the model rather than to
 *   one request. A success resets it: a bucket that refilled is full again.
 * - a daily token quota does not refill within minutes: it waits its cap.
 *
 * When a cooldown ends, one request goes first (the trial); the others wait
 * for its outcome instead of all hitting an empty bucket at once. So a model
 * that throttles everything is tried at most once per cooldown, whatever the
 * traffic. A trial whose process died gives its slot back after
 * `TRIAL_LEASE_MS`. A cooldown nobody tried for as long again as it lasted
 * needs no trial: the bucket has had time to refill, and the next burst goes
 * through at once (its level is still remembered, until a success).
 *
 * A later throttle extends a cooldown, never shortens it. A throttle of a
 * request sent before the last throttle came back is the same empty bucket:
 * it does not raise the level (it cools the model for the level's length
 * from now, or its `retry-after`), so a burst of requests in flight together
 * cools the model at the first level, not at the fifth.
 */
import { Schema } from "effect"
import type * as BedrockError from "../BedrockError.ts"

/** Cooldown settings, all times in milliseconds. */
export interface CooldownSettings {
  /** the first cooldown of a throttle without `retry-after` */
  readonly baseMs: number
  /** the longest cooldown, by throttle kind (`daily` is used as it is) */
  readonly maxMs: Readonly<Record<BedrockError.ThrottleKind, number>>
}

/** How long a throttle level is remembered without another throttle. */
export const LEVEL_MEMORY_MS = 60_000
/** How long a trial holds its slot at most. */
export const TRIAL_LEASE_MS = 120_000

const Kind = Schema.Literals(["requests", "tokens", "daily", "unknown"])

/** A target's throttle state; absent (undefined) when it is not throttled. */
export const CooldownState = Schema.Struct({
  /** out until this time (epoch ms of the mux's Clock) */
  until: Schema.Finite,
  /** throttles in a row without a success: the next cooldown is base × 2^level */
  level: Schema.Int,
  kind: Kind,
  /** when the last throttle came */
  since: Schema.Finite,
  /** when the trial in flight was admitted (absent: none) */
  trialAt: Schema.optionalKey(Schema.Finite)
})
export type CooldownState = typeof CooldownState.Type

/** The state as it reads now: an expired trial lease is given back. */
const live = (state: CooldownState | undefined, now: number): CooldownState | undefined =>
  state?.trialAt !== undefined && now - state.trialAt >= TRIAL_LEASE_MS ? withoutTrial(state) : state

/** Over for as long again as it lasted, with no trial in flight: forgotten but for its level. */
const stale = (s: CooldownState, now: number): boolean => s.trialAt === undefined && now >= s.until + (s.until - s.since)

const withoutTrial = (s: CooldownState): CooldownState => ({ until: s.until, level: s.level, kind: s.kind, since: s.since })

/** Can a request be sent now? */
export const admits = (state: CooldownState | undefined, now: number): boolean => {
  const s = live(state, now)
  return s === undefined || stale(s, now) || (now >= s.until && s.trialAt === undefined)
}

/** When it will admit again: the cooldown's end, or (a trial in flight) unknown, so now. */
export const recoversAt = (state: CooldownState | undefined, now: number): number | undefined => {
  const s = live(state, now)
  if (s === undefined || admits(s, now)) return undefined
  return now < s.until ? s.until : now
}

/**
 * A cooldown's permit: no cooldown at all (`free`), one long over (`stale`:
 * no trial needed, but a success clears its level), the first request after
 * one (`trial`), or refused.
 */
export type Permit = "free" | "stale" | "trial" | "refused"

/** Takes a permit: atomic in the store. */
export const acquire = (state: CooldownState | undefined, now: number): readonly [Permit, CooldownState | undefined] => {
  const s = live(state, now)
  if (s === undefined) return ["free", state]
  if (stale(s, now)) return ["stale", s]
  if (now < s.until || s.trialAt !== undefined) return ["refused", s]
  return ["trial", { ...s, trialAt: now }]
}

/** How an attempt that held a permit ended, as the cooldown sees it. */
export type Outcome =
  | { readonly _tag: "Throttled"; readonly kind: BedrockError.ThrottleKind; readonly retryAfterMs: number | undefined }
  | { readonly _tag: "Success" }
  | { readonly _tag: "Other" }

/** The cooldown a throttle at `level` (1 for the first) starts. Pure. */
export const durationOf = (settings: CooldownSettings, kind: BedrockError.ThrottleKind, level: number, retryAfterMs: number | undefined): number => {
  if (retryAfterMs !== undefined) return retryAfterMs
  const cap = settings.maxMs[kind]
  if (kind === "daily") return cap
  return Math.min(cap, settings.baseMs * 2 ** Math.max(0, level - 1))
}

/**
 * Records the end of an attempt admitted at `admittedAt` with `permit`.
 * Returns the next state and, when a throttle started or extended the
 * cooldown, its new end.
 */
export const record = (
  settings: CooldownSettings,
  state: CooldownState | undefined,
  now: number,
  outcome: Outcome,
  permit: Permit,
  admittedAt: number
): readonly [next: CooldownState | undefined, started: number | undefined] => {
  const s = live(state, now)
  // the trial in flight, not one from before the last throttle (whose slot is no longer its own)
  const trial = permit === "trial" && s?.trialAt === admittedAt
  switch (outcome._tag) {
    case "Throttled": {
      if (s !== undefined && admittedAt < s.since && !trial) {
        // sent before the last throttle came back: the same empty bucket, already counted (a burst of throttles
        // from requests in flight together is one throttle, not a run of them). The level stays; the bucket is
        // still empty now, so the model cools for that level's length from now (or the retry-after), if longer.
        const until = now + durationOf(settings, outcome.kind, s.level, outcome.retryAfterMs)
        return s.until >= until ? [s, undefined] : [{ until, level: s.level, kind: outcome.kind, since: s.since }, until]
      }
      const level = (s !== undefined && now - s.since < LEVEL_MEMORY_MS ? s.level : 0) + 1
      const until = now + durationOf(settings, outcome.kind, level, outcome.retryAfterMs)
      if (s !== undefined && s.until >= until) {
        // a longer cooldown stands; a throttled trial gives its slot back
        const next = trial ? withoutTrial(s) : s
        return [{ ...next, level, since: now }, undefined]
      }
      return [{ until, level, kind: outcome.kind, since: now }, until]
    }
    case "Success":
      // a request sent after the last throttle got through: the bucket has room again
      if (s === undefined) return [undefined, undefined]
      return trial || admittedAt >= s.since ? [undefined, undefined] : [s, undefined]
    case "Other":
      return [trial ? withoutTrial(s!) : s, undefined]
  }
}
