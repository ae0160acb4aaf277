/**
 * The guard protocol (see the public `Guard` module): what guards and
 * selectors see of a request, views, permits, outcomes, the rejection. A leaf
 * module, so the built-in guards and the public module share it without an
 * import cycle.
 */
import { Data, type Duration, Effect, type Scope } from "effect"
import type * as BedrockError from "../BedrockError.ts"
import type * as MuxEvent from "../MuxEvent.ts"
import type { Service as Store, StoreError } from "../MuxStore.ts"
import type { Target } from "../Target.ts"

/**
 * What guards and selectors know of a request.
 * @since 0.1.0
 */
export interface RequestInfo {
  /** unique per request within a mux */
  readonly id: string
  /** `converse`, `converse_stream`, or what a caller of `route` named it */
  readonly operation: string
  readonly label: string | undefined
  readonly tenant: string | undefined
  /** the estimated input tokens (computed on first use) */
  readonly inputTokens: () => number
  /** the request's `inferenceConfig.maxTokens`, if it set one */
  readonly maxTokens: number | undefined
  /** the service tier this attempt asks for (an escalation after a throttle), if not the default */
  readonly serviceTier: "priority" | "reserved" | undefined
}

/**
 * A target's state as one guard sees it.
 * @since 0.1.0
 */
export interface View {
  readonly admits: boolean
  /** share of the model's weight it gets now (1: all; a breaker ramps it after closing) */
  readonly weight: number
  /** epoch ms (the mux's Clock) when a target that does not admit will, if known */
  readonly recoversAt?: number | undefined
  /** why it does not admit: `breaker`, `cooldown`, `quota`, or the guard's own word */
  readonly why?: string | undefined
  /** nothing is in the way: `admit` may skip the store (a hint for the guard's own `admit`) */
  readonly free?: boolean | undefined
  /** what kind of hold it is, for health (a throttle's kind) */
  readonly kind?: string | undefined
  /** it admits only at this service tier (its default tier is held: a throttle's cooldown) */
  readonly serviceTier?: "priority" | "reserved" | undefined
  /** for health: the failures the guard counts toward keeping the target out (the breaker's), if any */
  readonly failures?: number | undefined
}

/**
 * Admits, with full weight.
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Guard } from "effect-bedrock-mux"
 * const everyone = (n: number) => Effect.succeed(Array.from({ length: n }, () => Guard.open))
 * ```
 * @since 0.1.0
 */
export const open: View = { admits: true, weight: 1, free: true }

const openArrays: Array<ReadonlyArray<View>> = []
/** `n` open views (shared, never mutated): a guard with nothing held answers every view with this. */
export const openViews = (n: number): ReadonlyArray<View> => (openArrays[n] ??= Array.from({ length: n }, () => open))

/**
 * How an attempt ended, as guards are told.
 * @since 0.1.0
 */
export type Outcome =
  | {
    readonly _tag: "Success"
    readonly at: number
    readonly durationMs: number
    /** tokens used, as reported (undefined: not reported) */
    readonly usage: Usage | undefined
  }
  | {
    readonly _tag: "Failure"
    readonly at: number
    readonly durationMs: number
    readonly error: BedrockError.BedrockError
    /** the policy's classification of the error */
    readonly decision: BedrockError.Decision
    /** it cost its request time (a timeout, no response) rather than an error response */
    readonly slow: boolean
  }
  | { readonly _tag: "Interrupted"; readonly at: number; readonly durationMs: number }
  /** a later guard rejected the target: nothing was sent */
  | { readonly _tag: "NotSent"; readonly at: number }

/**
 * Tokens one call used: input and output as reported, `quota` as Bedrock
 * counts it against TPM (input + output + cache writes).
 * @since 0.1.0
 */
export interface Usage {
  readonly inputTokens: number
  readonly outputTokens: number
  readonly quota: number
}

/**
 * A guard's permit for one attempt.
 * @since 0.1.0
 */
export interface Permit {
  /** called exactly once, when the attempt has ended */
  readonly release: (outcome: Outcome) => Effect.Effect<void>
  /** send the attempt at this service tier (the cooldown guard's way past a throttled default tier) */
  readonly serviceTier?: "priority" | "reserved" | undefined
  /** releasing it after a `Success` does nothing: the mux may skip that call */
  readonly free?: boolean | undefined
  /** Optional: `release` without an Effect (the mux's fast path calls it instead, exactly once). */
  readonly releaseUnsafe?: ((outcome: Outcome) => void) | undefined
}

/**
 * A permit with nothing to release.
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Guard } from "effect-bedrock-mux"
 * const admitAll = () => Effect.succeed(Guard.noPermit)
 * ```
 * @since 0.1.0
 */
export const noPermit: Permit = { release: () => Effect.void, free: true }

/**
 * A guard keeps the target out of this attempt.
 * @since 0.1.0
 */
export class Rejected extends Data.TaggedError("Rejected")<{
  readonly guard: string
  /** `breaker`, `cooldown`, `quota`, or the guard's own word */
  readonly why: string
  /** when the target could admit again, if known */
  readonly retryAfterMs?: number | undefined
}> {}

/**
 * A guard at work: its two sides.
 * @since 0.1.0
 */
export interface Live {
  readonly view: (targets: ReadonlyArray<Target>, request: RequestInfo, now: number) => Effect.Effect<ReadonlyArray<View>, StoreError>
  /** `view` is this guard's view of `target` from the selection that chose it */
  readonly admit: (target: Target, request: RequestInfo, view: View, now: number) => Effect.Effect<Permit, Rejected | StoreError>
  /** for `health`: defaults to `view` (the quota guard reads its windows here, not on every request) */
  readonly health?: ((targets: ReadonlyArray<Target>, now: number) => Effect.Effect<ReadonlyArray<View>, StoreError>) | undefined
  /**
   * Optional: `view` without an Effect, for a guard whose state is at hand (an
   * in-memory store). When every guard has it, the mux routes a request that
   * needs no store round trip without running an Effect per guard (its fast
   * path). Undefined: it cannot answer synchronously now.
   */
  readonly viewUnsafe?: ((targets: ReadonlyArray<Target>, request: RequestInfo, now: number) => ReadonlyArray<View> | undefined) | undefined
  /** Optional: `admit` without an Effect, for a view that needs no store round trip (undefined: use `admit`). */
  readonly admitUnsafe?: ((target: Target, request: RequestInfo, view: View, now: number) => Permit | undefined) | undefined
  /**
   * Optional, with `viewUnsafe` and `admitUnsafe`: true when this guard has nothing to say about `targets` at
   * `now`: `viewUnsafe` would give `open` for each, and `admitUnsafe(target, request, open, now)` (a request at the
   * default service tier) gives a free permit that is the same whatever the request and the time. When every
   * guard says so, the mux skips their views and permits on its fast path and reuses each target's permits.
   * A guard's breaker closed for good, no cooldown, no quota: quiet. Must be cheap (it runs on every request).
   */
  readonly quietUnsafe?: ((targets: ReadonlyArray<Target>, now: number) => boolean) | undefined
}

/**
 * What the mux gives a guard when it is built.
 * @since 0.1.0
 */
export interface Env {
  /** the mux's namespace in the store (config `name`) */
  readonly name: string
  readonly store: Store
  readonly emit: (event: MuxEvent.MuxEvent) => Effect.Effect<void>
  readonly onStoreError: "allow" | "fail"
}

/**
 * A guard: a name and how to build it when the mux is built.
 * @since 0.1.0
 */
export interface Guard {
  readonly name: string
  /** its settings, for `validate-config` and docs (built-ins) */
  readonly settings?: unknown
  readonly build: (env: Env) => Effect.Effect<Live, never, Scope.Scope>
}


/**
 * Circuit breaker settings.
 * @since 0.1.0
 */
export interface BreakerSettings {
  /** counted failures within `window` that open the breaker (default 5) */
  readonly failures: number
  /** the sliding window failures are counted in (default 60 s); a success does not clear it */
  readonly window: Duration.Duration
  /** while open, a probe is admitted every this long (default 5 s) */
  readonly probeInterval: Duration.Duration
  /** a probe that fails slowly (timeout, no response) doubles the interval, up to this (default 5 min) */
  readonly probeIntervalMax: Duration.Duration
  /** probes admitted at once while half-open; that many successes close it (default 1) */
  readonly halfOpen: number
  /** after closing, the model's weight ramps from 10 % to 100 % over this (default 30 s) */
  readonly rampUp: Duration.Duration
}

/**
 * Throttle cooldown settings.
 * @since 0.1.0
 */
export interface CooldownSettings {
  /** the first cooldown of a throttle that carries no `retry-after` (default 500 ms, the AWS SDK's throttling base delay) */
  readonly base: Duration.Duration
  /** the longest cooldown by throttle kind: it doubles with each throttle in a row up to this (daily: used as it is) */
  readonly requests: Duration.Duration
  readonly tokens: Duration.Duration
  readonly daily: Duration.Duration
  readonly unknown: Duration.Duration
}

