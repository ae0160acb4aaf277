/**
 * `Guard`: what may keep a model out of a request. Circuit breakers,
 * throttle cooldowns and client-side quotas are guards, and so is anything a
 * user writes (a maintenance window, effect's own `CircuitBreaker`).
 *
 * A guard has two sides:
 * - `view`: every target's state before selection (can it take a request,
 *   with what share of its weight, when it recovers). One call per
 *   selection for the whole pool, so a shared store reads it in one trip.
 * - `admit`: the permit for one attempt on the chosen target, atomic in the
 *   store (a half-open probe slot, a quota reservation), or `Rejected`. The
 *   permit's `release` is called exactly once with how the attempt ended:
 *   for a stream, when the stream ends, not at its first token.
 *
 * The mux asks the guards in order and takes permits in order; when a later
 * guard rejects, the permits already taken are released with `NotSent`. A
 * `view` still running at the request's deadline is interrupted (the request
 * ends `DeadlineExceeded`), and so is the selector's `pick`; an `admit` runs
 * to its end (interrupted after taking its slot, it would lose the permit
 * that gives the slot back), and a pick made past the deadline is released
 * with `NotSent`.
 *
 * Built-ins (the default policy has all three, in this order):
 * - `Guard.breaker()`: per model, opens on `failures` counted failures within
 *   `window`, probes every `probeInterval` while open (a probe that fails
 *   slowly doubles it up to `probeIntervalMax`), ramps weight after closing.
 * - `Guard.cooldown()`: throttles cool a model for a short, growing time
 *   (`retry-after` when Bedrock sends one), one trial request after each.
 * - `Guard.quota()`: the models' own `rpm` / `tpm`: a model without room is
 *   skipped, so no throttled call is sent.
 *
 * Gotchas:
 * - A guard sees outcomes already classified: `Failure.decision.breaker`
 *   says whether the policy counts it as the model's fault.
 * - `view` is a snapshot: `admit` must re-check atomically what matters
 *   (the built-ins skip the store when the view says nothing is in the way).
 * - A slow `admit` holds its request past the deadline (until it ends; the
 *   guards after it are not asked): bound a remote one by its store's
 *   timeout, as the built-ins are. A hedge's admit holds nothing: an answer
 *   (or a failure) of the attempt in flight that comes first is the
 *   request's at once, and the pick the admit makes is released unused
 *   (`NotSent`).
 * - Guards with state get the mux's store, events and namespace through
 *   `Guard.Env` when the mux is built (`Guard.stateful`); plain guards are
 *   `Guard.make`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Guard } from "effect-bedrock-mux"
 *
 * // keep one model out between 02:00 and 03:00 UTC
 * const maintenance = Guard.make({
 *   name: "maintenance",
 *   view: (targets, _request, now) =>
 *     Effect.succeed(targets.map((t) => {
 *       const hour = new Date(now).getUTCHours()
 *       return t.model.modelId === "us.amazon.nova-pro-v1:0" && hour === 2
 *         ? { admits: false, weight: 0, why: "maintenance", recoversAt: now - (now % 3_600_000) + 3_600_000 }
 *         : Guard.open
 *     })),
 *   admit: () => Effect.succeed(Guard.noPermit)
 * })
 * ```
 *
 * @since 0.1.0
 */
import { Deferred, Duration, Effect, Exit, Fiber, type Scope } from "effect"
import type { CircuitBreaker } from "effect/persistence"
import * as BreakerGuard from "./internal/breakerGuard.ts"
import * as CooldownGuard from "./internal/cooldownGuard.ts"
import {
  type Env,
  type Guard,
  type Live,
  noPermit,
  open,
  type Outcome,
  type Permit,
  Rejected,
  type RequestInfo,
  type Usage,
  type View,
  type BreakerSettings,
  type CooldownSettings
} from "./internal/guard.ts"
import * as QuotaGuard from "./internal/quotaGuard.ts"
import type { Target } from "./Target.ts"

export { noPermit, open, Rejected }
export type { BreakerSettings, CooldownSettings, Env, Guard, Live, Outcome, Permit, RequestInfo, Usage, View }

/**
 * A guard from its two sides.
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Guard } from "effect-bedrock-mux"
 * const none = Guard.make({ name: "none", view: (ts) => Effect.succeed(ts.map(() => Guard.open)), admit: () => Effect.succeed(Guard.noPermit) })
 * ```
 * @since 0.1.0
 */
export const make = (options: { readonly name: string } & Live): Guard => {
  const { name, ...live } = options
  return { name, build: () => Effect.succeed(live) }
}

/**
 * A guard with state: built once per mux, with its store and events.
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Guard } from "effect-bedrock-mux"
 * const counting = Guard.stateful("counting", () => Effect.sync(() => {
 *   let admitted = 0
 *   return {
 *     view: (ts) => Effect.succeed(ts.map(() => Guard.open)),
 *     admit: () => Effect.sync(() => { admitted++; return Guard.noPermit })
 *   }
 * }))
 * ```
 * @since 0.1.0
 */
export const stateful = (
  name: string,
  build: (env: Env) => Effect.Effect<Live, never, Scope.Scope>,
  settings?: unknown
): Guard => (settings === undefined ? { name, build } : { name, build, settings })

// --- built-ins --------------------------------------------------------------------------------

/** @since 0.1.0 */
export const defaultBreaker: BreakerSettings = {
  failures: 5,
  window: Duration.seconds(60),
  probeInterval: Duration.seconds(5),
  probeIntervalMax: Duration.minutes(5),
  halfOpen: 1,
  rampUp: Duration.seconds(30)
}

/**
 * Breaker settings from partial input (durations as `Duration.Input`).
 * @example
 * ```ts
 * import { Guard } from "effect-bedrock-mux"
 * const settings = Guard.breakerSettings({ failures: 3, probeInterval: "2 seconds" })
 * ```
 * @since 0.1.0
 */
export const breakerSettings = (input: {
  readonly failures?: number | undefined
  readonly window?: Duration.Input | undefined
  readonly probeInterval?: Duration.Input | undefined
  readonly probeIntervalMax?: Duration.Input | undefined
  readonly halfOpen?: number | undefined
  readonly rampUp?: Duration.Input | undefined
} = {}): BreakerSettings => ({
  failures: input.failures ?? defaultBreaker.failures,
  window: input.window !== undefined ? Duration.fromInputUnsafe(input.window) : defaultBreaker.window,
  probeInterval: input.probeInterval !== undefined ? Duration.fromInputUnsafe(input.probeInterval) : defaultBreaker.probeInterval,
  probeIntervalMax: input.probeIntervalMax !== undefined ? Duration.fromInputUnsafe(input.probeIntervalMax) : defaultBreaker.probeIntervalMax,
  halfOpen: input.halfOpen ?? defaultBreaker.halfOpen,
  rampUp: input.rampUp !== undefined ? Duration.fromInputUnsafe(input.rampUp) : defaultBreaker.rampUp
})

/**
 * The circuit breaker per model (see the module doc). Throttles, validation
 * errors, local failures and interruptions never count: only failures whose
 * decision says `breaker: true`.
 * @example
 * ```ts
 * import { Guard } from "effect-bedrock-mux"
 * const breaker = Guard.breaker({ failures: 3, window: "30 seconds", probeInterval: "2 seconds" })
 * ```
 * @since 0.1.0
 */
export const breaker = (input: Parameters<typeof breakerSettings>[0] | BreakerSettings = {}): Guard => {
  const settings = isBreakerSettings(input) ? input : breakerSettings(input)
  return stateful("breaker", (env) => BreakerGuard.make(settings, env), settings)
}

const isBreakerSettings = (u: unknown): u is BreakerSettings =>
  typeof u === "object" && u !== null && Duration.isDuration((u as BreakerSettings).window) &&
  Duration.isDuration((u as BreakerSettings).probeInterval) && Duration.isDuration((u as BreakerSettings).rampUp) &&
  Duration.isDuration((u as BreakerSettings).probeIntervalMax)

/** @since 0.1.0 */
export const defaultCooldown: CooldownSettings = {
  base: Duration.millis(500),
  requests: Duration.seconds(10),
  tokens: Duration.seconds(30),
  daily: Duration.hours(1),
  unknown: Duration.seconds(10)
}

/**
 * Cooldown settings from partial input.
 * @example
 * ```ts
 * import { Guard } from "effect-bedrock-mux"
 * const settings = Guard.cooldownSettings({ base: "1 second", tokens: "1 minute" })
 * ```
 * @since 0.1.0
 */
export const cooldownSettings = (input: {
  readonly base?: Duration.Input | undefined
  readonly requests?: Duration.Input | undefined
  readonly tokens?: Duration.Input | undefined
  readonly daily?: Duration.Input | undefined
  readonly unknown?: Duration.Input | undefined
} = {}): CooldownSettings => {
  const d = (v: Duration.Input | undefined, fallback: Duration.Duration) => (v === undefined ? fallback : Duration.fromInputUnsafe(v))
  return {
    base: d(input.base, defaultCooldown.base),
    requests: d(input.requests, defaultCooldown.requests),
    tokens: d(input.tokens, defaultCooldown.tokens),
    daily: d(input.daily, defaultCooldown.daily),
    unknown: d(input.unknown, defaultCooldown.unknown)
  }
}

/**
 * Throttle cooldowns per model (see `internal/cooldown.ts` for the
 * arithmetic). A model with `escalate` keeps taking requests while its
 * default tier cools: they go straight to the escalation tier.
 * @example
 * ```ts
 * import { Guard } from "effect-bedrock-mux"
 * const cooldown = Guard.cooldown({ base: "250 millis", requests: "5 seconds" })
 * ```
 * @since 0.1.0
 */
export const cooldown = (input: Parameters<typeof cooldownSettings>[0] | CooldownSettings = {}): Guard => {
  const settings = Duration.isDuration((input as CooldownSettings).base) && Duration.isDuration((input as CooldownSettings).daily)
    ? (input as CooldownSettings)
    : cooldownSettings(input)
  return stateful("cooldown", (env) => CooldownGuard.make(settings, env), settings)
}

/**
 * The models' own client-side quotas (`rpm`, `tpm` on the model): a request
 * reserves one request and its estimated tokens (input + `maxTokens`) in the
 * model's sliding minute and settles it to the real usage; a model without
 * room is skipped. Models without limits are not touched.
 * @example
 * ```ts
 * import { Guard } from "effect-bedrock-mux"
 * const quota = Guard.quota()
 * ```
 * @since 0.1.0
 */
export const quota = (): Guard => stateful("quota", (env) => QuotaGuard.make(env))

/**
 * effect's own `CircuitBreaker` (effect/persistence) as a guard: one circuit
 * per target (key: `key(target)`, default the target). A failure counts when
 * the policy's decision says `breaker: true`; everything else is ignored.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CircuitBreaker } from "effect/persistence"
 * import { Guard } from "effect-bedrock-mux"
 * const guard = Effect.map(
 *   CircuitBreaker.make({ tripPolicy: CircuitBreaker.consecutive(3), openDuration: "10 seconds" }),
 *   (breaker) => Guard.fromCircuitBreaker(breaker)
 * )
 * ```
 * @since 0.1.0
 */
export const fromCircuitBreaker = (
  breaker: CircuitBreaker.CircuitBreaker,
  options: { readonly name?: string; readonly key?: (target: Target) => string } = {}
): Guard => {
  const name = options.name ?? "circuit-breaker"
  const keyOf = options.key ?? ((t: Target) => t.model.target)
  return stateful(name, () =>
    Effect.map(Effect.scope, (scope): Live => ({
      view: (targets, _request, now) =>
        Effect.forEach(targets, (t) =>
          breaker.state(keyOf(t)).pipe(
            Effect.map((s): View =>
              // an Open circuit whose open period is over turns half-open on its next call: that call is the probe
              s._tag === "Closed" || (s._tag === "HalfOpen" && !s.probing) || (s._tag === "Open" && Duration.toMillis(s.retryAfter) <= 0)
                ? open
                : { admits: false, weight: 0, why: "breaker", recoversAt: s._tag === "Open" ? now + Duration.toMillis(s.retryAfter) : now }
            ),
            // its store failed: let the breaker itself decide at admission
            Effect.orElseSucceed(() => open)
          )),
      admit: (target) =>
        Effect.gen(function*() {
          // the breaker wraps an effect; this one starts when it is admitted and ends when the attempt does
          const admitted = yield* Deferred.make<void>()
          const ended = yield* Deferred.make<Outcome>()
          const call = Deferred.succeed(admitted, undefined).pipe(Effect.andThen(Deferred.await(ended)))
          const fiber = yield* breaker.execute(call, {
            key: keyOf(target),
            classify: (exit) =>
              Exit.isSuccess(exit) && exit.value._tag === "Failure" && exit.value.decision.breaker
                ? { _tag: "Failure" }
                : Exit.isSuccess(exit) && exit.value._tag === "Success"
                ? { _tag: "Success" }
                : { _tag: "Ignored" }
          }).pipe(Effect.forkIn(scope))
          const first = yield* Effect.raceFirst(
            Effect.as(Deferred.await(admitted), undefined),
            Effect.map(Fiber.await(fiber), (exit) => exit)
          )
          if (first !== undefined) {
            const error = Exit.isFailure(first) ? first.cause.reasons.find((r) => r._tag === "Fail") : undefined
            const reason = (error as { error?: { reason?: { _tag?: string; retryAfter?: Duration.Duration } } } | undefined)?.error?.reason
            return yield* new Rejected({
              guard: name,
              why: "breaker",
              retryAfterMs: reason?.retryAfter !== undefined ? Duration.toMillis(reason.retryAfter) : undefined
            })
          }
          return { release: (outcome: Outcome) => Deferred.succeed(ended, outcome).pipe(Effect.andThen(Fiber.await(fiber)), Effect.asVoid) }
        })
    })))
}
