/**
 * The engine: one routing loop for every kind of call, in named stages over
 * one request state (`RequestState`):
 *
 * 1. admit: the request's tenant quota (waiting for room when asked), its
 *    id, deadline and route (`start`);
 * 2. select: every guard's view of the route's targets, the first tier with
 *    an eligible target, the selector's pick among those, every guard's
 *    permit for it (a rejection excludes it and picks again);
 * 3. attempt: the call under its timeout (the model's, else the policy's,
 *    capped by what is left of the deadline), hedged when asked;
 * 4. decide: pure: what the failure means for this request (retry the same
 *    model, escalate its service tier, fail over, fail fast, stop);
 * 5. record: permits released with the outcome, stats, the attempt record
 *    and events.
 *
 * The attempt is a parameter, so Converse, ConverseStream and a user's own
 * call share this loop. An attempt may be "open": it resolves at its commit
 * point (a stream's first content event), and its permits stay held until
 * the caller settles it (`Routed.settle`). A request may be routed again after
 * a settled failure (a stream's restart): same deadline, attempts and tenant,
 * the models already tried out. That is all the engine knows of streams.
 *
 * The fast path runs the first three stages and a success's record as plain
 * code around the first attempt (one raw Promise where the runtime offers
 * it), where every guard and the selector can answer without an Effect;
 * anything else hands the same request over to the loop. `run` is that path
 * as an Effect; `runUnsafe` starts it from plain code (the Promise facade):
 * a raw first attempt that succeeds needs no fiber at all.
 */
import { type Array as Arr, Clock, Context, Data, Duration, Effect, Exit, Fiber, Option, type Pull, Random, Schedule } from "effect"
import { identity } from "effect/Function"
import * as BedrockError from "../BedrockError.ts"
import type { Service as Runtime } from "../BedrockRuntime.ts"
import type * as Model from "../Model.ts"
import {
  AttemptsExhausted,
  DeadlineExceeded,
  Failed,
  InvalidRequest,
  type ModelAvailability,
  MuxError,
  NoModelsAvailable,
  QuotaExceeded,
  StoreUnavailable
} from "../MuxError.ts"
import type * as MuxEvent from "../MuxEvent.ts"
import type { Service as Store, StoreError } from "../MuxStore.ts"
import type * as Policy from "../Policy.ts"
import * as Route from "../Route.ts"
import type { AttemptRecord, Decision as RecordDecision } from "../Routing.ts"
import type { Candidate, Selector } from "../Selector.ts"
import type { Target as PublicTarget } from "../Target.ts"
import * as Guard from "./guard.ts"
import { ModelStats, MuxStats } from "./stats.ts"
import * as Deadlines from "./deadlines.ts"
import * as Telemetry from "./telemetry.ts"
import { type Observer, SYSTEM } from "./telemetry.ts"

/** A pool entry with its live stats. */
export interface Target extends PublicTarget {
  readonly stats: ModelStats
}

/** The pool as one immutable value: requests take it when they start, so a pool change never disturbs them. */
export interface Pool {
  readonly targets: ReadonlyArray<Target>
  /** the default route's tiers */
  readonly route: ReadonlyArray<ReadonlyArray<Target>>
  readonly routes: ReadonlyMap<string, ReadonlyArray<ReadonlyArray<Target>>>
}

/** What one attempt is asked to do beyond the request itself. */
export interface AttemptContext {
  /** the attempt's timeout (the model's or the policy's, capped by the deadline) */
  readonly timeout: Duration.Duration
  /** which deadline the timeout is: the attempt's own, or what was left of the request's */
  readonly deadlineScope: "attempt" | "request"
  /** send at this service tier (escalation), if not the default */
  readonly serviceTier: "priority" | "reserved" | undefined
  readonly request: Guard.RequestInfo
}

/** An attempt: a call of one target. */
export type Attempt<A> = (target: Target, context: AttemptContext) => Effect.Effect<A, BedrockError.BedrockError>

/** How an open attempt (past its commit point) ended. */
export type AttemptEnd =
  | { readonly _tag: "Success"; readonly usage: Guard.Usage | undefined }
  | {
    readonly _tag: "Failure"
    readonly error: BedrockError.BedrockError
    /** may the request be routed again for a whole new answer (a stream's restart)? */
    readonly restart: boolean
  }
  | { readonly _tag: "Interrupted" }

/** A success: the value and how it was reached. */
export interface Routed<A> {
  readonly value: A
  /** the request's id in `mux.events` */
  readonly requestId: string
  readonly target: Target
  /** the position of its tier in the request's route */
  readonly tier: number
  readonly attempts: ReadonlyArray<AttemptRecord>
  /**
   * An open attempt's end: releases its permits and records it. A failure
   * says whether the request may be routed again (the policy fails over on
   * it, it was not the request deadline, and `restart` was asked). `at`: when it ended (default: the
   * Clock's now).
   */
  readonly settle: (end: AttemptEnd, at?: number) => Effect.Effect<{ readonly restart: boolean }>
}

/** How a request ended (its one `RequestEnded`). */
export type RequestEnd =
  | { readonly _tag: "Success"; readonly target: Target; readonly usage: Guard.Usage | undefined; readonly timeToFirstTokenMs?: number | undefined }
  | { readonly _tag: "Failure"; readonly error: MuxError; readonly modelId?: string | undefined }
  /** the attempt died (a bug in code the mux called): a failure, reported as `Defect` */
  | { readonly _tag: "Defect" }
  | { readonly _tag: "Interrupted" }

/** Per-request options. */
export interface StartOptions {
  readonly operation: string
  readonly label?: string | undefined
  readonly deadline?: Duration.Input | undefined
  readonly waitForRecovery?: boolean | undefined
  readonly tenant?: string | undefined
  /** a tenant over its quota waits for room (inside the deadline) instead of failing */
  readonly waitForQuota?: boolean | undefined
  /** the input-token estimate, computed only when a quota needs it */
  readonly inputTokens?: (() => number) | undefined
  readonly maxTokens?: number | undefined
}

/** Hedging of one route: after `afterMs(target)` without a result, the same request starts on another model. */
export interface HedgeOptions {
  readonly afterMs: (target: Target) => number | undefined
  /** the largest share of hedgeable requests hedged over the last minute */
  readonly budget: number
}

/**
 * An attempt as a Promise that aborting the controller aborts (rejecting,
 * with a `BedrockError` or an SDK error): the engine runs it under its
 * deadline in one Effect step, no fiber of its own. The controller is the
 * attempt's: an open attempt (a stream) keeps it to abort its upstream after
 * the commit point. Undefined for a target that cannot be called so.
 */
export type RawAttempt<A> = (target: Target, context: AttemptContext) => ((controller: AbortController) => Promise<A>) | undefined

/** How a one-shot call is run: what its success used, its raw form, and its result from the routed value. */
export interface RunOptions<A, B> {
  readonly usage?: ((a: A) => Guard.Usage | undefined) | undefined
  readonly raw?: RawAttempt<A> | undefined
  readonly result: (routed: Routed<A>) => B
  /** where a tracer is installed: the request's span around the call */
  readonly traced?: ((self: Effect.Effect<B, MuxError>) => Effect.Effect<B, MuxError>) | undefined
}

/** How one routing of a request runs its attempts. */
export interface RouteOptions<A> {
  /** the attempt's success is its commit point: settle it with `Routed.settle` */
  readonly open?: boolean | undefined
  readonly hedge?: HedgeOptions | undefined
  /** what a (closed) success used, for the quotas */
  readonly usage?: ((a: A) => Guard.Usage | undefined) | undefined
  /** a limit of the attempt's own until its commit point (a stream's first token), when shorter than its timeout */
  readonly commitWithin?: { readonly ms: number; readonly scope: BedrockError.DeadlineExceeded["scope"] } | undefined
  /** the attempt as a Promise, run without a fiber of its own where no tracer is installed */
  readonly raw?: RawAttempt<A> | undefined
}

/** A request in progress. */
export interface Request {
  readonly info: Guard.RequestInfo
  readonly started: number
  readonly deadlineAt: number
  /**
   * Routes the request to an answer. `open`: the attempt's success is its
   * commit point; settle it with `Routed.settle`.
   */
  readonly route: <A>(
    attempt: Attempt<A>,
    options?: RouteOptions<A>
  ) => Effect.Effect<Routed<A>, MuxError>
  /**
   * `route`, its answer mapped by `f`, for a caller inside a step of its own (`context` its fiber's): where
   * the fast path applies, an open success is mapped in the attempt's own callback, one Effect step fewer
   * (a stream's first pull).
   */
  readonly routeWith: <A, B>(attempt: Attempt<A>, options: RouteOptions<A>, context: Context.Context<never>, f: (routed: Routed<A>) => B) => Effect.Effect<B, MuxError>
  /** The request's one outcome (later calls do nothing). */
  readonly end: (end: RequestEnd) => Effect.Effect<void>
}

/** A call `Engine.runUnsafe` started. */
export interface Running<B> {
  /**
   * Interrupts it: an attempt in flight is aborted and the request ends interrupted, its Exit an interruption
   * (a call already answered, or whose answer is on its way, keeps it).
   */
  readonly interruptUnsafe: () => void
  /** `observer` hears its Exit (at once, if it has ended). */
  readonly addObserver: (observer: (exit: Exit.Exit<B, MuxError>) => void) => void
}

/** The engine of one mux. */
export interface Engine {
  readonly policy: Policy.Policy
  readonly stats: MuxStats
  readonly pool: () => Pool
  readonly start: (options: StartOptions) => Effect.Effect<Request, MuxError>
  /**
   * `start` in plain code, for a caller already inside a step of its own: the request, its InvalidRequest
   * (announced), or undefined when the tenant's quota must be admitted first (then `start` is the way).
   */
  readonly startUnsafe: (options: StartOptions, fiber: Fiber.Fiber<unknown, unknown>) => Request | MuxError | undefined
  /** start, route once, end: a one-shot call */
  readonly run: <A, B>(
    options: StartOptions,
    attempt: Attempt<A>,
    call: RunOptions<A, B>
  ) => Effect.Effect<B, MuxError>
  /**
   * `run` started from plain code, for a caller outside any fiber (the Promise facade): its first attempt
   * runs without a fiber where the fast path applies. `onExit` hears the call's one Exit. Undefined: no fast
   * path for this call (a tracer installed, a tenant quota, a guard or selector that answers only as an
   * Effect); run `run`.
   */
  readonly runUnsafe: <A, B>(
    context: Context.Context<never>,
    options: StartOptions,
    attempt: Attempt<A>,
    call: RunOptions<A, B>,
    onExit: (exit: Exit.Exit<B, MuxError>) => void
  ) => Running<B> | undefined
  /** every guard's health view of every target, by guard then target */
  readonly health: Effect.Effect<{ readonly pool: Pool; readonly views: ReadonlyArray<ReadonlyArray<Guard.View>> }>
  readonly addModel: (model: Model.Model) => Effect.Effect<Target>
  /** zeroes the mux's and every model's statistics (guards' states are not statistics: they stay) */
  readonly resetStats: Effect.Effect<void>
  readonly removeModel: (target: string) => Effect.Effect<Target | undefined>
  /** the mux's deadline heap (a stream's stall limit) */
  readonly deadlines: Deadlines.Deadlines
}

/** How often a request waiting for a recovery at an unknown time (a probe or trial in flight) looks again. */
const POLL_MS = 100

interface Exclusion {
  readonly why: string
  /** when it may come back within this request (quota room); undefined: never */
  readonly until?: number | undefined
}

/** The request's forced next target: a same-model retry, an escalation, a backoff retry. */
interface Next {
  readonly target: Target
  readonly serviceTier: "priority" | "reserved" | undefined
  /**
   * When a guard refuses it: fail over excluding it, fail over keeping it in the request (a throttled model
   * stays: its cooldown ends), or fail fast (a same-model retry of an error the policy does not fail over on).
   */
  readonly refused: "exclude" | "keep" | "fail"
  /** an escalation: its attempt is outside the budget where the policy does not count escalations */
  readonly escalation?: true
}

/** Everything a request knows while it is routed: the stages read and write this. */
interface RequestState {
  readonly info: Guard.RequestInfo
  readonly started: number
  readonly deadlineAt: number
  readonly deadlineMs: number
  readonly waitForRecovery: boolean
  readonly tiers: ReadonlyArray<ReadonlyArray<Target>>
  /** every attempt of this run of the request (an Effect may run many times), for its routing record and MuxError */
  readonly attempts: Array<AttemptRecord>
  // created on first use: most requests need none of them (six empty collections held ~1 KB per request in
  // flight, measured with scratch heap counts; the SDK's own request holds ~14 KB)
  /** why each target is out of this request, if it is */
  excluded: Map<Target, Exclusion> | undefined
  sameTries: Map<Target, number> | undefined
  retrySteps: Map<Target, Step> | undefined
  escalated: Set<Target> | undefined
  /** attempts not counted toward the budget: escalations, where the policy does not count them */
  uncounted: number
  /** the targets a ModelSkipped was reported for */
  skipped: Set<Target> | undefined
  lastFailure: Map<Target, BedrockError.BedrockError> | undefined
  next: Next | undefined
  /** a context-window failure: only larger windows from here on */
  minContext: number
  last: BedrockError.BedrockError | undefined
  backoffStep: Step | undefined
  hedgeable: boolean
  /** the general select's picks: one no attempt took (its fiber interrupted before it ran) goes back at the end */
  picks: Array<Admitted> | undefined
  readonly operation: string
  /** has the request had its one outcome? */
  done: boolean
  /** the tenant's reservation, settled or released with the outcome */
  tenantHold: TenantHold
}

type Step = (now: number, input: BedrockError.BedrockError) => Pull.Pull<[unknown, Duration.Duration], never, unknown>

/** A target chosen and admitted by every guard. */
interface Admitted {
  readonly target: Target
  readonly tier: number
  readonly permits: ReadonlyArray<Guard.Permit>
  readonly serviceTier: "priority" | "reserved" | undefined
  /** when the attempt starts: its permits in hand (epoch ms of the mux's Clock) */
  readonly t0: number
  /** set before a hedge's loser is interrupted, so its record says why */
  lostHedge?: boolean
  released?: boolean
  /** a pick of the general select that no attempt has taken yet: given back unused (NotSent) if none does */
  pending?: boolean
}

/** A route while every guard is quiet: its candidates, and each one's permits. */
interface QuietRoute {
  readonly candidates: Arr.NonEmptyReadonlyArray<Candidate>
  readonly permits: ReadonlyMap<Target, ReadonlyArray<Guard.Permit>>
}

/** An attempt's time limit and which deadline it is. */
interface Limit {
  readonly ms: number
  readonly scope: BedrockError.DeadlineExceeded["scope"]
}

/** A permit that holds nothing (a closed breaker's, an idle cooldown's): nothing to record or give back. */
const isFree = (p: Guard.Permit): boolean => p.free === true

/** What the decide stage says after a failed attempt. */
type Action =
  | { readonly _tag: "Stop" }
  | { readonly _tag: "FailFast" }
  | { readonly _tag: "Escalate"; readonly serviceTier: "priority" | "reserved" }
  | { readonly _tag: "RetrySame" }
  | { readonly _tag: "Failover"; readonly exclude: boolean; readonly minContext: number | undefined }

/**
 * The decide stage, pure: what a failed attempt means for the request.
 * - the request deadline is terminal;
 * - a throttle at the default tier of a model that escalates is retried once at its escalation tier;
 * - retry-same while the reason's budget lasts;
 * - a fail-fast decision ends the request;
 * - otherwise fail over: a throttled model stays in the request (its cooldown keeps it out until the bucket
 *   refills), any other is out; a context-window failure only to a larger window, if the route has one.
 */
export const decide = (
  state: Pick<RequestState, "sameTries" | "escalated" | "tiers" | "minContext">,
  target: Target,
  error: BedrockError.BedrockError,
  decision: BedrockError.Decision,
  serviceTier: "priority" | "reserved" | undefined,
  hedgeInFlight: boolean
): Action => {
  if (error.reason._tag === "DeadlineExceeded" && error.reason.scope === "request") return { _tag: "Stop" }
  const escalate = error.reason._tag === "Throttled" && serviceTier === undefined && target.model.escalate !== undefined &&
    state.escalated?.has(target) !== true
  const larger = Math.max(state.minContext, target.model.contextWindow ?? 0)
  const failover = decision.failover &&
    (!decision.largerContextOnly || state.tiers.some((tier) => tier.some((t) => (t.model.contextWindow ?? 0) > larger)))
  const tries = state.sameTries?.get(target) ?? 0
  // a hedge in flight is another model: an error that does not fail over must not be answered by it either, and
  // neither a same-model retry nor an escalation starts beside it (found by the fail-fast law: an escalating
  // hedge's throttle failed over to the primary in flight)
  if (!failover && (hedgeInFlight || (!escalate && tries >= decision.retrySame))) return { _tag: "FailFast" }
  if (!hedgeInFlight) {
    if (escalate) return { _tag: "Escalate", serviceTier: target.model.escalate! }
    if (tries < decision.retrySame) return { _tag: "RetrySame" }
  }
  return {
    _tag: "Failover",
    exclude: error.reason._tag !== "Throttled",
    minContext: decision.largerContextOnly ? larger : undefined
  }
}

/** A failure that cost its request time (a timeout, no response), not an error response. */
export const isSlow = (error: BedrockError.BedrockError): boolean => {
  const r = error.reason
  switch (r._tag) {
    case "DeadlineExceeded":
    case "ModelTimeout":
      return true
    case "Network":
      return r.code === "ETIMEDOUT" || r.code === "TimeoutError" || r.code === "RequestTimeout"
    default:
      return false
  }
}

const exitError = (exit: Exit.Exit<unknown, BedrockError.BedrockError>): BedrockError.BedrockError | undefined => {
  if (exit._tag !== "Failure") return undefined
  for (const r of exit.cause.reasons) if (r._tag === "Fail") return r.error
  return undefined
}

const recordDecision = (a: Action): RecordDecision => {
  switch (a._tag) {
    case "Stop":
      return "stop"
    case "FailFast":
      return "fail-fast"
    case "Escalate":
      return "escalate"
    case "RetrySame":
      return "retry-same"
    case "Failover":
      return "failover"
  }
}

/** Builds the pool's targets (stats included) from the policy's routes. */
export const makePool = (
  policy: Policy.Policy,
  runtimes: (model: Model.Model) => Runtime,
  windowSeconds: number,
  existing: ReadonlyMap<string, Target> = new Map()
): Pool => {
  const byKey = new Map<string, Target>()
  const targetOf = (m: Model.Model): Target => {
    let t = byKey.get(m.target)
    if (t === undefined) {
      const old = existing.get(m.target)
      t = old !== undefined && old.model === m ? old : { model: m, runtime: runtimes(m), stats: old?.stats ?? new ModelStats(windowSeconds) }
      byKey.set(m.target, t)
    }
    return t
  }
  const compile = (r: Route.Route) => r.tiers.map((tier) => tier.map(targetOf))
  const route = compile(policy.route)
  const routes = new Map([...policy.routes].map(([label, r]) => [label, compile(r)] as const))
  return { targets: [...byKey.values()], route, routes }
}

export const make = (options: {
  readonly policy: Policy.Policy
  readonly runtimes: (model: Model.Model) => Runtime
  readonly store: Store
  readonly guards: ReadonlyArray<Guard.Live>
  /** the guards' names, in the same order */
  readonly guardNames: ReadonlyArray<string>
  readonly selector: Selector
  /** unique per mux instance: request ids and tenant reservations */
  readonly instance: string
  readonly observer: Observer
  readonly deadlines: Deadlines.Deadlines
}): Engine => {
  const { policy, store, guards, selector, deadlines } = options
  const emit = options.observer.emit
  const emitUnsafe = options.observer.emitUnsafe
  const windowSeconds = 60
  let pool = makePool(policy, options.runtimes, windowSeconds)
  let requests = 0
  const muxStats = new MuxStats()
  const failOpen = policy.onStoreError === "allow"
  const defaultDeadlineMs = Duration.toMillis(policy.deadline)
  const defaultTimeoutMs = Duration.toMillis(policy.timeout)

  // --- admit ---------------------------------------------------------------------------------

  const tenantLimits = (tenant: string | undefined) =>
    tenant === undefined ? policy.tenants.default : policy.tenants.limits.get(tenant) ?? policy.tenants.default

  /** The tenant's quota: one request and its estimated tokens for the whole request (a restart keeps it). */
  const admitTenant = (
    info: Guard.RequestInfo,
    deadlineAt: number,
    wait: boolean
  ): Effect.Effect<TenantHold, MuxError | StoreError> => {
    const limits = tenantLimits(info.tenant)
    if (limits === undefined || (limits.rpm === undefined && limits.tpm === undefined)) return Effect.succeed(NO_HOLD)
    const tenant = info.tenant ?? "default"
    // requests without a tenant have a bucket of their own that no tenant name can collide with
    const key = info.tenant === undefined ? `${policy.name}/tenant-default` : `${policy.name}/tenant/${tenant}`
    const id = `${options.instance}:t${info.id}`
    const tokens = info.inputTokens() + (info.maxTokens ?? DEFAULT_OUTPUT_TOKENS)
    const once = Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const r = yield* store.reserve(key, now, limits, id, tokens).pipe(Effect.catch(storeFailed({ ok: true } as const)))
      if (r.ok) return
      yield* emit({ _tag: "QuotaRejected", at: now, scope: "tenant", key: tenant, kind: r.kind, retryAfterMs: r.retryAfterMs })
      return yield* new TenantRejected({ kind: r.kind, retryAfterMs: r.retryAfterMs, at: now })
    })
    // waiting for room: retried after each refusal's own retry-after, while that falls inside the deadline
    const waitForRoom = Schedule.spaced(0).pipe(
      Schedule.setInputType<TenantRejected | StoreError>(),
      Schedule.modifyDelay(({ input }) => Effect.succeed(Duration.millis(input._tag === "TenantRejected" ? Math.max(1, input.retryAfterMs) : 0))),
      Schedule.while(({ input }) => input._tag === "TenantRejected" && input.retryAfterMs < deadlineAt - input.at)
    )
    return once.pipe(
      wait ? Effect.retry(waitForRoom) : (e) => e,
      Effect.catchTag("TenantRejected", (r) =>
        Effect.fail(
          new MuxError({
            reason: new QuotaExceeded({ tenant, kind: r.kind, retryAfterMs: r.retryAfterMs }),
            message: `tenant "${tenant}" is over its ${r.kind === "requests" ? "RPM" : "TPM"} quota; retry after ${r.retryAfterMs} ms`,
            attempts: []
          })
        )),
      Effect.as({
        // a request that fails gives its tenant reservation back (an interrupted one keeps it)
        release: store.release(key, id).pipe(Effect.ignore),
        settle: (used: number | undefined) => used === undefined ? Effect.void : store.settle(key, id, used).pipe(Effect.ignore)
      })
    )
  }

  const storeFailed = <A>(fallback: A) => (e: StoreError): Effect.Effect<A, StoreError> =>
    failOpen ? Effect.succeed(fallback) : Effect.fail(e)

  const storeError = (e: StoreError, attempts: ReadonlyArray<AttemptRecord>) =>
    new MuxError({ reason: new StoreUnavailable({ message: e.message }), message: `store unavailable: ${e.message}`, attempts: [...attempts] })

  /**
   * The request's state and handle, synchronously: id, deadline, route. An unknown label is an InvalidRequest
   * (returned, for the caller to fail with). The tenant's quota is admitted after, by `start`.
   */
  const begin = (opts: StartOptions, started: number): { readonly state: RequestState; readonly request: Request } | MuxError => {
    const id = `${options.instance}-${++requests}`
    const deadlineMs = opts.deadline === undefined ? defaultDeadlineMs : Duration.toMillis(Duration.fromInputUnsafe(opts.deadline))
    const deadlineAt = started + deadlineMs
    let estimate: number | undefined
    const info: Guard.RequestInfo = {
      id,
      operation: opts.operation,
      label: opts.label,
      tenant: opts.tenant,
      inputTokens: () => (estimate ??= opts.inputTokens === undefined ? 0 : opts.inputTokens()),
      maxTokens: opts.maxTokens,
      serviceTier: undefined
    }
    const current = pool
    const tiers = opts.label === undefined ? current.route : current.routes.get(opts.label)
    if (tiers === undefined) {
      return invalidRequest(
        [`label: unknown route label "${opts.label}"; allowed: ${[...current.routes.keys()].map((l) => `"${l}"`).join(", ") || "none (no routes configured)"}`],
        `unknown route label "${opts.label}"`
      )
    }
    const state: RequestState = {
      info,
      operation: opts.operation,
      started,
      deadlineAt,
      deadlineMs,
      waitForRecovery: opts.waitForRecovery ?? policy.waitForRecovery,
      tiers,
      attempts: [],
      excluded: undefined,
      sameTries: undefined,
      retrySteps: undefined,
      escalated: undefined,
      uncounted: 0,
      skipped: undefined,
      lastFailure: undefined,
      next: undefined,
      minContext: -1,
      last: undefined,
      backoffStep: undefined,
      hedgeable: false,
      done: false,
      tenantHold: NO_HOLD,
      picks: undefined
    }
    return { state, request: new Handle(state) }
  }

  /**
   * A request's handle: its methods on the prototype, not a closure each per request (measured: closures and
   * their contexts were a third of the mux's memory per request in flight, scratch heap snapshots).
   */
  class Handle implements Request {
    readonly state: RequestState
    readonly info: Guard.RequestInfo
    readonly started: number
    readonly deadlineAt: number
    constructor(state: RequestState) {
      this.state = state
      this.info = state.info
      this.started = state.started
      this.deadlineAt = state.deadlineAt
    }
    route<A>(attempt: Attempt<A>, routeOptions: RouteOptions<A> = {}): Effect.Effect<Routed<A>, MuxError> {
      return routeRequest(this.state, attempt, routeOptions)
    }
    routeWith<A, B>(attempt: Attempt<A>, routeOptions: RouteOptions<A>, context: Context.Context<never>, f: (routed: Routed<A>) => B): Effect.Effect<B, MuxError> {
      return routeFast(this.state, attempt, routeOptions, context, f) ?? Effect.map(generalRoute(this.state, attempt, routeOptions), f)
    }
    end(result: RequestEnd): Effect.Effect<void> {
      return Effect.withFiber((fiber) => endRequest(this.state, result, fiber.getRef(Clock.Clock).currentTimeMillisUnsafe(), fiber.context))
    }
  }

  /** A request that ended (not interrupted) in the mux's counters. */
  const countRequest = (success: boolean, durationMs: number) => {
    muxStats.requests += 1
    if (success) {
      muxStats.successes += 1
      muxStats.latency.record(durationMs)
    } else muxStats.failures += 1
  }

  /** The request's one outcome, synchronously: stats and RequestEnded. Returns what is left to do (the tenant's hold). */
  const endRequest = (state: RequestState, result: RequestEnd, now: number, context: Context.Context<never>): Effect.Effect<void> => {
    if (state.done) return Effect.void
    state.done = true
    const { attempts, started } = state
    const outcome = result._tag === "Success" ? "success" : result._tag === "Interrupted" ? "interrupted" : "failure"
    if (result._tag !== "Interrupted") countRequest(result._tag === "Success", now - started)
    const usage = result._tag === "Success" ? result.usage : undefined
    const modelId = result._tag === "Success"
      ? result.target.model.modelId
      : (result._tag === "Failure" ? result.modelId : undefined) ?? attempts[attempts.length - 1]?.modelId
    const error = result._tag === "Failure" ? result.error.reason._tag : result._tag === "Defect" ? "Defect" : undefined
    const ttft = result._tag === "Success" ? result.timeToFirstTokenMs : undefined
    if (!options.observer.listening()) {
      // nobody subscribed: the metrics, without building the event
      options.observer.requestMetrics(state.operation, outcome, error, modelId, usage, ttft, context)
    } else {
      emitUnsafe({
        _tag: "RequestEnded",
        at: now,
        requestId: state.info.id,
        operation: state.operation as MuxEvent.Operation,
        outcome,
        modelId,
        error,
        durationMs: now - started,
        attempts: attempts.length,
        usage: usage === undefined ? undefined : { inputTokens: usage.inputTokens, outputTokens: usage.outputTokens },
        timeToFirstTokenMs: ttft
      }, context)
    }
    const hold = state.tenantHold
    const holdEnd = hold === NO_HOLD
      ? Effect.void
      : result._tag === "Success"
      ? hold.settle(usage?.quota)
      : result._tag === "Interrupted"
      ? Effect.void
      : hold.release
    // a pick of the general select whose attempt's fiber was interrupted before it ran (the caller gave up as
    // the pick's admit answered): given back unused (found by the permit law with slow guards)
    const picks = state.picks
    if (picks === undefined) return holdEnd
    const left = picks.filter((a) => a.pending === true && a.released !== true)
    return left.length === 0 ? holdEnd : Effect.andThen(Effect.forEach(left, giveBack, { discard: true }), holdEnd)
  }

  /** Does the tenant have a quota to admit (an Effect, a store round trip)? */
  const hasTenantQuota = (tenant: string | undefined): boolean => {
    const limits = tenantLimits(tenant)
    return limits !== undefined && (limits.rpm !== undefined || limits.tpm !== undefined)
  }

  /** `begin` at `now`, announcing a request that ends before it begins. */
  const begun = (opts: StartOptions, now: number, context: Context.Context<never>) => {
    const b = begin(opts, now)
    if (b instanceof MuxError) emitUnsafe(failedEarly(opts, b, now), context)
    return b
  }

  const startUnsafe: Engine["startUnsafe"] = (opts, fiber) => {
    if (hasTenantQuota(opts.tenant)) return undefined
    const b = begun(opts, refsOf(fiber.context).clock.currentTimeMillisUnsafe(), fiber.context)
    return b instanceof MuxError ? b : b.request
  }

  const start: Engine["start"] = (opts) =>
    Effect.withFiber((fiber) => {
      const b = begun(opts, refsOf(fiber.context).clock.currentTimeMillisUnsafe(), fiber.context)
      if (b instanceof MuxError) return Effect.fail(b)
      // no tenant quota: nothing to admit, no Effect to run
      if (!hasTenantQuota(opts.tenant)) return Effect.succeed(b.request)
      return admitTenant(b.state.info, b.state.deadlineAt, opts.waitForQuota === true).pipe(
        Effect.catchTag("StoreError", (e) => Effect.fail(storeError(e, []))),
        Effect.tapError((error) => b.request.end({ _tag: "Failure", error })),
        Effect.map((hold) => {
          b.state.tenantHold = hold
          return b.request
        })
      )
    })

  /** The RequestEnded of a request that ended before it began (an unknown label). */
  const failedEarly = (opts: StartOptions, error: MuxError, now: number): MuxEvent.RequestEnded => {
    muxStats.requests += 1
    muxStats.failures += 1
    return {
      _tag: "RequestEnded",
      at: now,
      requestId: `${options.instance}-${requests}`,
      operation: opts.operation as MuxEvent.Operation,
      outcome: "failure",
      modelId: undefined,
      error: error.reason._tag,
      durationMs: 0,
      attempts: 0,
      usage: undefined,
      timeToFirstTokenMs: undefined
    }
  }

  // --- select --------------------------------------------------------------------------------

  /** Every guard's view of `targets`, by guard. */
  const viewsOf = (targets: ReadonlyArray<Target>, info: Guard.RequestInfo, now: number, restore: Restore = identity) =>
    guards.length === 1
      ? Effect.map(restore(guards[0]!.view(targets, info, now)), (v) => [v])
      : Effect.forEach(guards, (g) => restore(g.view(targets, info, now)))

  /**
   * Every guard's permit for `target`, in order; a rejection gives back the ones already taken. Each admit
   * runs whole; between two, `restore` lets a pending interruption in (the deadline's, the caller's), so no
   * guard is asked to admit after it (found by the deadline law with slow guards: a request held 13 s past
   * its deadline by the admits of the guards after the one in flight at it).
   */
  const admitAll = (
    target: Target,
    info: Guard.RequestInfo,
    views: ReadonlyArray<ReadonlyArray<Guard.View>>,
    i: number,
    now: number,
    restore: Restore
  ): Effect.Effect<ReadonlyArray<Guard.Permit>, Guard.Rejected | StoreError> => {
    if (guards.length === 0) return Effect.succeed([])
    const permits: Array<Guard.Permit> = []
    const step = (g: number): Effect.Effect<ReadonlyArray<Guard.Permit>, Guard.Rejected | StoreError> =>
      g === guards.length
        ? Effect.succeed(permits)
        : guards[g]!.admit(target, info, views[g]![i]!, now).pipe(
          Effect.flatMap((p) => {
            permits.push(p)
            return g + 1 === guards.length ? Effect.succeed(permits) : Effect.andThen(restore(Effect.void), step(g + 1))
          })
        )
    // once, around every guard: a rejection (or a defect, an interruption) gives back what the guards before
    // it gave
    return step(0).pipe(Effect.onError(() => releaseAll(permits, { _tag: "NotSent", at: now })))
  }

  const releaseAll = (permits: ReadonlyArray<Guard.Permit>, outcome: Guard.Outcome): Effect.Effect<void> =>
    permits.length === 0
      ? Effect.void
      : permits.length === 1
      ? permits[0]!.release(outcome)
      : Effect.forEach(permits, (p) => p.release(outcome), { discard: true })

  /** One target out of the request, or back in once its exclusion's time has come. */
  const isExcluded = (state: RequestState, t: Target, now: number): boolean => {
    const e = state.excluded?.get(t)
    if (e === undefined) return false
    if (e.until !== undefined && e.until <= now) {
      state.excluded?.delete(t)
      return false
    }
    return true
  }

  /**
   * The select stage: the forced next target, else the first tier with an eligible target; the selector
   * picks; every guard admits (a rejection excludes the pick and the selector picks again).
   * `busy`: a target with an attempt in flight (hedging).
   */
  const select = (
    state: RequestState,
    now: number,
    busy: Target | undefined,
    restore: Restore
  ): Effect.Effect<
    | Admitted
    | { readonly _tag: "None"; readonly views: ReadonlyArray<ReadonlyArray<Guard.View>>; readonly targets: ReadonlyArray<Target> }
    | { readonly _tag: "FailFast" }
    | { readonly _tag: "Exhausted" },
    StoreError
  > =>
    Effect.gen(function*() {
      const forced = state.next
      state.next = undefined
      const info: Guard.RequestInfo = forced?.serviceTier === undefined ? state.info : { ...state.info, serviceTier: forced.serviceTier }
      if (forced !== undefined && forced.target !== busy) {
        const views = yield* viewsOf([forced.target], info, now, restore)
        if (views.every((v) => v[0]!.admits)) {
          const admitted = yield* tryAdmit(state, forced.target, tierOf(state, forced.target), info, views, 0, now, restore)
          if (admitted !== undefined) return admitted
        }
        // its breaker opened since (this very failure may have tripped it), or a guard says no: fail over
        // instead, or fail fast when the error that asked for it does not fail over
        if (forced.refused === "fail") return { _tag: "FailFast" as const }
        // an escalation that never ran earns no attempt outside the budget
        if (forced.escalation === true && policy.countEscalations === false) {
          state.uncounted -= 1
          if (budgetSpent(state)) return { _tag: "Exhausted" as const }
        }
        if (forced.refused === "exclude") {
          state.excluded ??= new Map()
          state.excluded.set(forced.target, { why: "tried" })
        }
      }
      const targets = flatTargets(state.tiers)
      const views = yield* viewsOf(targets, state.info, now, restore)
      const skip = new Set<Target>(busy === undefined ? [] : [busy])
      while (true) {
        // a hedge's select given up on, its request ended: no further admits (a store's round trips for nobody)
        if (state.done) return { _tag: "None" as const, views, targets }
        const skipped: Array<MuxEvent.ModelSkipped> = []
        const found = eligible(state, views, now, skip, skipped)
        for (const e of skipped) yield* emit(e)
        if (found === undefined) return { _tag: "None" as const, views, targets }
        const picked = yield* restore(selector.pick(found, state.info))
        const target = checkPick(found, picked)
        const admitted = yield* tryAdmit(state, target, picked.tier, state.info, views, picked.index, now, restore)
        if (admitted !== undefined) return admitted
        skip.add(target)
      }
    })

  /**
   * The select stage cut at the request's deadline: a guard's view or the selector's pick that answers later
   * (a remote store, a user's own Effect) is interrupted and the request ends as a deadline (DeadlinePassed).
   * The rest of the stage runs whole, admits included: an admit takes a slot (a probe, a trial, a
   * reservation), and one interrupted after taking it would lose the permit that gives it back (the built-ins'
   * admits are one store round trip, bounded by the store's timeout). A pick made at or past the deadline is
   * given back unused, so no model is called with no time left.
   */
  const selectWithin = (state: RequestState, now: number, busy?: Target) => {
    let chosen: Admitted | undefined
    const giveBackChosen = Effect.suspend(() => (chosen === undefined ? Effect.void : giveBack(chosen)))
    const stage = Effect.uninterruptibleMask((restore) =>
      Effect.map(select(state, now, busy, restore), (r) => {
        if ("target" in r) chosen = pendingPick(state, r)
        return r
      })
    ).pipe(
      // a pick made as an interruption ended the stage (the deadline's, or the caller's, waiting for an admit)
      Effect.onExit((exit) => (Exit.isFailure(exit) ? giveBackChosen : Effect.void))
    )
    return Effect.flatMap(timed(stage, state.deadlineAt, deadlinePassed), (exit) =>
      Exit.isFailure(exit)
        ? exit
        : Effect.flatMap(Clock.currentTimeMillis, (t) =>
          // a pick made at or past the deadline: no time left to use it
          t < state.deadlineAt ? exit : Effect.andThen(giveBackChosen, Effect.fail(DEADLINE_PASSED))))
  }

  /** `self` interrupted at `at` (the mux's heap), failing with DeadlinePassed. */
  const within = <A, E>(self: Effect.Effect<A, E>, at: number): Effect.Effect<A, E | DeadlinePassed> =>
    Effect.flatMap(timed(self, at, deadlinePassed), (exit) => exit)

  /**
   * The candidates of the first tier that has an eligible target: not excluded from the request, not in
   * `skip`, inside the context-window bound, admitted by every guard's view, weight > 0 after their factors.
   * The targets a guard keeps out are reported once per request (`skipped`). Pure but for the request's
   * record of what it already reported.
   */
  const eligible = (
    state: RequestState,
    views: ReadonlyArray<ReadonlyArray<Guard.View>>,
    now: number,
    skip: ReadonlySet<Target> | undefined,
    skipped: Array<MuxEvent.ModelSkipped>
  ): Arr.NonEmptyReadonlyArray<Candidate> | undefined => {
    let offset = 0
    for (let tier = 0; tier < state.tiers.length; tier++) {
      const members = state.tiers[tier]!
      let candidates: Array<Candidate> | undefined
      for (let j = 0; j < members.length; j++) {
        const t = members[j]!
        if (skip?.has(t) === true || isExcluded(state, t, now)) continue
        if (state.minContext >= 0 && (t.model.contextWindow ?? 0) <= state.minContext) continue
        let weight = t.model.weight
        let why: string | undefined
        for (let g = 0; g < views.length; g++) {
          const v = views[g]![offset + j]!
          if (!v.admits) {
            why = v.why ?? guardName(g)
            break
          }
          weight *= v.weight
        }
        if (why !== undefined) {
          if (state.skipped?.has(t) !== true) {
            state.skipped ??= new Set()
            state.skipped.add(t)
            skipped.push({ _tag: "ModelSkipped", at: now, requestId: state.info.id, modelId: t.model.modelId, target: t.model.target, why, tier })
          }
          continue
        }
        if (weight > 0) (candidates ??= []).push({ target: t, weight, tier, index: offset + j })
      }
      if (candidates !== undefined) return candidates as unknown as Arr.NonEmptyReadonlyArray<Candidate>
      offset += members.length
    }
    return undefined
  }

  /** The selector's pick, which must be one of its candidates (anything else is a bug in the selector). */
  const checkPick = (candidates: ReadonlyArray<Candidate>, picked: Candidate): Target => {
    if (!candidates.includes(picked)) throw new Error(`selector "${selector.name}" picked a model that is not one of its candidates`)
    return picked.target as Target
  }

  const guardName = (g: number) => options.guardNames[g] ?? `guard ${g}`

  /**
   * The references the fast path reads, kept for the last context seen: a context is immutable, so one identity
   * check stands for four context lookups a call (callers run many requests with one context). Updated in
   * place: a caller with a context per request pays the four lookups, as before, and no allocation. (It keeps
   * the last context reachable until the next call: one context per mux.)
   */
  let refsContext: Context.Context<never> | undefined
  const refs: { tracing: boolean; clock: Clock.Clock; random: Random.Random } = {
    tracing: false,
    clock: undefined as unknown as Clock.Clock,
    random: undefined as unknown as Random.Random
  }
  const refsOf = (context: Context.Context<never>): FiberRefs => {
    if (context !== refsContext) {
      refs.tracing = Telemetry.tracing(context)
      refs.clock = Context.get(context, Clock.Clock)
      refs.random = Context.get(context, Random.Random)
      refsContext = context
    }
    return refs
  }

  /**
   * The select stage in plain code, where every guard and the selector answer without an Effect (an
   * in-memory store; no forced next target): the admitted pick; undefined when the general `select` must
   * decide (nothing eligible, a guard that needs its store); or the permits taken before a guard could not
   * answer, to give back before the general `select` runs.
   */
  const selectUnsafe = (
    state: RequestState,
    now: number,
    context: Context.Context<never>
  ): Admitted | { readonly taken: ReadonlyArray<Guard.Permit> } | undefined => {
    if (!fastCapable || state.next !== undefined) return undefined
    const targets = flatTargets(state.tiers)
    if (quietCapable && state.excluded === undefined && state.minContext < 0) {
      const quiet = selectQuiet(state, targets, now, context)
      if (quiet !== undefined) return quiet
    }
    const views: Array<ReadonlyArray<Guard.View>> = []
    for (const g of guards) {
      const v = g.viewUnsafe!(targets, state.info, now)
      if (v === undefined) return undefined
      views.push(v)
    }
    const skipped: Array<MuxEvent.ModelSkipped> = []
    const found = eligible(state, views, now, undefined, skipped)
    if (skipped.length > 0 && options.observer.listening()) for (const e of skipped) emitUnsafe(e, context)
    if (found === undefined) return undefined
    const { random } = refsOf(context)
    const picked = selector.pickUnsafe!(found, state.info, () => random.nextDoubleUnsafe())
    const target = checkPick(found, picked)
    const permits: Array<Guard.Permit> = []
    let serviceTier: "priority" | "reserved" | undefined
    for (let g = 0; g < guards.length; g++) {
      const p = guards[g]!.admitUnsafe!(target, state.info, views[g]![picked.index]!, now)
      // a permit that needs the store (a probe, a trial, a reservation): the general select takes it
      if (p === undefined) return permits.every(isFree) ? undefined : { taken: permits }
      permits.push(p)
      if (p.serviceTier !== undefined) serviceTier = p.serviceTier
    }
    return { target, tier: picked.tier, permits, serviceTier, t0: now }
  }

  /**
   * Every guard quiet (`Guard.Live.quietUnsafe`): nothing is out, every weight is the model's own, every permit
   * the free one. The candidates are those of the route's first tier with a model of positive weight, and their
   * permits, taken once per route before any pick (so a permit not at hand never costs a draw of `Random`)
   * (measured: guards' views, permits and releases were 7 µs of the mux's cost per call on the real SDK path,
   * scratch A/B). Undefined: a guard is not quiet; or, for good on this route, a quiet guard's permit was not
   * the free one the contract asks for.
   */
  const selectQuiet = (
    state: RequestState,
    targets: ReadonlyArray<Target>,
    now: number,
    context: Context.Context<never>
  ): Admitted | { readonly taken: ReadonlyArray<Guard.Permit> } | undefined => {
    for (let g = 0; g < guards.length; g++) if (!guards[g]!.quietUnsafe!(targets, now)) return undefined
    let route = quietRoutes.get(state.tiers)
    if (route === undefined) {
      const made = quietRouteOf(state, targets, now)
      route = "taken" in made ? null : made
      quietRoutes.set(state.tiers, route)
      // a quiet guard whose permit was not the free one: what was taken goes back before the full path runs
      if ("taken" in made && made.taken.length > 0) return made
    }
    if (route === null) return undefined
    const { random } = refsOf(context)
    const picked = selector.pickUnsafe!(route.candidates, state.info, () => random.nextDoubleUnsafe())
    const target = checkPick(route.candidates, picked)
    return { target, tier: picked.tier, permits: route.permits.get(target)!, serviceTier: undefined, t0: now }
  }
  /** The route's candidates and their permits; or, when a guard broke the quiet contract, the permits taken. */
  const quietRouteOf = (state: RequestState, targets: ReadonlyArray<Target>, now: number): QuietRoute | { readonly taken: ReadonlyArray<Guard.Permit> } => {
    const open = guards.map(() => Guard.openViews(targets.length))
    const candidates = eligible(state, open, now, undefined, [])
    if (candidates === undefined) return { taken: [] }
    const permits = new Map<Target, ReadonlyArray<Guard.Permit>>()
    const all: Array<Guard.Permit> = []
    for (const c of candidates) {
      const taken: Array<Guard.Permit> = []
      for (const g of guards) {
        const p = g.admitUnsafe!(c.target, state.info, Guard.open, now)
        if (p !== undefined) all.push(p)
        if (p === undefined || !isFree(p) || p.serviceTier !== undefined) return { taken: all.filter((x) => !isFree(x)) }
        taken.push(p)
      }
      permits.set(c.target as Target, taken)
    }
    return { candidates: Object.freeze(candidates) as Arr.NonEmptyReadonlyArray<Candidate>, permits }
  }
  const quietCapable = guards.every((g) => g.quietUnsafe !== undefined)
  /** each route's candidates and their permits while every guard is quiet (by the route's tiers, which a pool keeps) */
  const quietRoutes = new WeakMap<ReadonlyArray<ReadonlyArray<Target>>, QuietRoute | null>()

  /** Every guard's permit for the pick; a rejection excludes it (for good, or until its retry-after). */
  const tryAdmit = (
    state: RequestState,
    target: Target,
    tier: number,
    info: Guard.RequestInfo,
    views: ReadonlyArray<ReadonlyArray<Guard.View>>,
    i: number,
    now: number,
    restore: Restore
  ): Effect.Effect<Admitted | undefined, StoreError> =>
    admitAll(target, info, views, i, now, restore).pipe(
      // the attempt starts when its permits are in hand: a store's round trips count neither into its duration
      // nor against its timeout
      Effect.flatMap((permits) =>
        Effect.map(Clock.currentTimeMillis, (t0): Admitted => {
          let serviceTier = info.serviceTier
          for (const p of permits) if (p.serviceTier !== undefined) serviceTier = p.serviceTier
          return { target, tier, permits, serviceTier, t0 }
        })
      ),
      Effect.catchTag("Rejected", (r) => {
        // a quota says when it has room again; a probe or trial slot taken a moment ago: look again next round
        if (r.why === "quota") (state.excluded ??= new Map()).set(target, { why: "quota", until: now + (r.retryAfterMs ?? Infinity) })
        return Effect.succeed(undefined)
      })
    )

  const tierOf = (state: RequestState, target: Target): number => {
    for (let i = 0; i < state.tiers.length; i++) if (state.tiers[i]!.includes(target)) return i
    return 0
  }

  // --- attempt -------------------------------------------------------------------------------

  /** The request's attempts toward its budget (escalations aside where the policy does not count them). */
  const counted = (state: RequestState): number => state.attempts.length - state.uncounted
  /** Has the request made its `attempts`? */
  const budgetSpent = (state: RequestState): boolean => counted(state) >= policy.attempts
  /** The request ends here: its attempts are spent. */
  const exhausted = (state: RequestState) =>
    fail(state, new AttemptsExhausted({ attempts: state.attempts.length }), `all ${state.attempts.length} attempts failed`, state.last)

  /**
   * Where a forced next attempt on the same model (a same-model retry, an escalation) goes when a guard refuses
   * it: elsewhere, or, after an error the policy does not fail over on, nowhere (the request fails fast); such
   * an error also ends the request's hedging, since a hedge is another model (found by the fail-fast law).
   */
  const refusedAfter = (state: RequestState, error: BedrockError.BedrockError): "exclude" | "fail" => {
    if (policy.classification(error).failover) return "exclude"
    state.hedgeable = false
    return "fail"
  }

  /** Records an attempt (or replaces the record at `at`) and announces it. */
  const recordAttempt = (state: RequestState, record: AttemptRecord, now: number, at?: number, error?: BedrockError.BedrockError) => {
    if (at === undefined) state.attempts.push(record)
    else state.attempts[at] = record
    return emit(error === undefined ? { _tag: "AttemptEnded", at: now, requestId: state.info.id, record } : { _tag: "AttemptEnded", at: now, requestId: state.info.id, record, error })
  }

  /** A pick of the general loop, pending until its attempt takes it (given back at the request's end if none does). */
  const pendingPick = (state: RequestState, a: Admitted): Admitted => {
    a.pending = true
    ;(state.picks ??= []).push(a)
    return a
  }

  /** A pick given back unused, now (once: `release` is idempotent). */
  const giveBack = (a: Admitted): Effect.Effect<void> => Effect.flatMap(Clock.currentTimeMillis, (t) => release(a, { _tag: "NotSent", at: t }))

  /** A pick no attempt took, given back unused. */
  const unsent = (a: Admitted): Effect.Effect<void> => (a.pending === true ? giveBack(a) : Effect.void)

  /** Releases an attempt's permits once. */
  const release = (a: Admitted, outcome: Guard.Outcome): Effect.Effect<void> => {
    if (a.released === true) return Effect.void
    a.released = true
    return releaseAll(a.permits, outcome)
  }

  /** An attempt's limits: its timeout, capped by the deadline, and the first-token limit until its commit point. */
  const planOf = (state: RequestState, a: Admitted, commitWithin: RouteOptions<unknown>["commitWithin"]) => {
    const remaining = state.deadlineAt - a.t0
    const own = a.target.model.timeout !== undefined ? Duration.toMillis(a.target.model.timeout) : defaultTimeoutMs
    const timeoutMs = Math.min(own, remaining)
    // the first-token limit, unless the attempt timeout (or what is left of the deadline) is shorter
    const limit: Limit = commitWithin !== undefined && commitWithin.ms < timeoutMs
      ? { ms: commitWithin.ms, scope: commitWithin.scope }
      : { ms: timeoutMs, scope: own < remaining ? "attempt" : "request" }
    const context: AttemptContext = {
      timeout: Duration.millis(timeoutMs),
      deadlineScope: own < remaining ? "attempt" : "request",
      serviceTier: a.serviceTier,
      request: a.serviceTier === undefined ? state.info : { ...state.info, serviceTier: a.serviceTier }
    }
    return { limit, context }
  }

  /** An attempt the caller (or a hedge's winner) gave up on: its permits back, its record "interrupted". */
  const interruptedAttempt = (state: RequestState, a: Admitted) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      // interrupted before it began: not an attempt, its pick unused
      a.pending === true ? release(a, { _tag: "NotSent", at: now }) : Effect.andThen(
        release(a, { _tag: "Interrupted", at: now, durationMs: now - a.t0 }),
        recordAttempt(state, {
          modelId: a.target.model.modelId,
          target: a.target.model.target,
          outcome: "interrupted",
          ...(a.lostHedge === true ? { decision: "hedge-lost" as const } : {}),
          ...(a.serviceTier !== undefined ? { serviceTier: a.serviceTier } : {}),
          durationMs: now - a.t0
        }, now)
      ))

  const attemptStarted = (state: RequestState, a: Admitted, hedge: boolean): MuxEvent.AttemptStarted => ({
    _tag: "AttemptStarted",
    at: a.t0,
    requestId: state.info.id,
    modelId: a.target.model.modelId,
    target: a.target.model.target,
    attempt: state.attempts.length + (hedge ? 2 : 1),
    hedge,
    tier: a.tier,
    ...(a.serviceTier !== undefined ? { serviceTier: a.serviceTier } : {})
  })

  /**
   * The attempt stage: one call to its Exit under its timeout. An interrupted attempt (the caller gave up,
   * a lost hedge) releases its permits and is recorded here.
   */
  const attempt = <A>(
    state: RequestState,
    a: Admitted,
    run: Attempt<A>,
    routeOptions: RouteOptions<A>,
    hedge = false
  ): Effect.Effect<Exit.Exit<A, BedrockError.BedrockError>> => {
    const { limit, context } = planOf(state, a, routeOptions.commitWithin)
    const { modelId, target } = a.target.model
    const interrupted = interruptedAttempt(state, a)
    const call = Effect.suspend(() => run(a.target, context))
    /** The call under its timeout (built, not yet run: a raw attempt sends when its Effect runs). */
    const timedCall = (fiber: Fiber.Fiber<unknown, unknown>) => {
      // spans only where a tracer is installed: the native tracer exports nothing, and a span costs more than the
      // rest of the attempt's machinery (bench/results/README.md)
      const tracing = refsOf(fiber.context).tracing
      if (!tracing) {
        const raw = routeOptions.raw?.(a.target, context)
        if (raw !== undefined) return rawTimed(raw, a.t0 + limit.ms, limit, modelId, succeedExit)
      }
      const traced = tracing
        ? call.pipe(
          Effect.tapError((e) => Effect.annotateCurrentSpan("error.type", e.reason._tag)),
          Effect.withSpan(`chat ${modelId}`, {
            kind: "client",
            attributes: {
              "gen_ai.operation.name": "chat",
              "gen_ai.system": SYSTEM,
              "gen_ai.provider.name": SYSTEM,
              "gen_ai.request.model": modelId,
              "bedrock_mux.target": target,
              "bedrock_mux.request_id": state.info.id,
              "bedrock_mux.hedge": hedge,
              ...(a.serviceTier !== undefined ? { "bedrock_mux.service_tier": a.serviceTier } : {})
            }
            // a stack trace per attempt costs more than the rest of the span; the attributes say where it is from
          }, { captureStackTrace: false })
        )
        : call
      return timed(traced, a.t0 + limit.ms, timeoutOf(limit, modelId))
    }
    // the attempt takes its pick here; interrupted from here on, it is an interrupted attempt (before, the pick
    // goes back unused: see RequestState.picks)
    return Effect.withFiber((fiber) => {
      // given back already (the request ended before this fiber ran): nothing to send
      if (a.released === true) return Effect.interrupt
      a.pending = false
      return Effect.andThen(emit(attemptStarted(state, a, hedge)), timedCall(fiber))
    }).pipe(Effect.onInterrupt(() => interrupted))
  }

  /**
   * Runs `self` in a child fiber with a deadline in the mux's heap: at the deadline the child is interrupted
   * (an attempt's HTTP request aborted) and its Exit is `onTimeout()`'s failure. No race, no second fiber.
   */
  const timed = <A, E, E2>(
    self: Effect.Effect<A, E>,
    at: number,
    onTimeout: () => E2
  ): Effect.Effect<Exit.Exit<A, E | E2>> =>
    Effect.flatMap(Effect.forkChild(self, { startImmediately: true }), (fiber) => {
      const done = fiber.pollUnsafe()
      if (done !== undefined) return Effect.succeed(done)
      let timedOut = false
      const entry = deadlines.add(at, () => {
        timedOut = true
        fiber.interruptUnsafe()
      })
      return Effect.map(Fiber.await(fiber), (exit) => {
        deadlines.remove(entry)
        return timedOut && Exit.isFailure(exit) ? Exit.fail(onTimeout()) : exit
      })
    })

  /**
   * Runs a raw attempt (a Promise) under a deadline in the mux's heap, as one Effect step: no fiber, no race.
   * At `at` its controller is aborted and it fails with the `limit`'s DeadlineExceeded at once (an attempt that ignores its
   * signal cannot hold the request); interrupting it aborts it (then `onCancel` runs). `k` continues in the
   * same step with how it ended.
   */
  const rawTimed = <A, B, E>(
    raw: (controller: AbortController) => Promise<A>,
    at: number,
    limit: Limit,
    modelId: string,
    k: (exit: Exit.Exit<A, BedrockError.BedrockError>) => Effect.Effect<B, E>,
    onCancel: () => Effect.Effect<void> = voidEffect
  ): Effect.Effect<B, E> =>
    Effect.callback<B, E>((resume) => {
      const call = new RawCall(at, limit, modelId, k, onCancel, resume, deadlines)
      call.start(raw)
      return call.cancel
    })

  // --- record --------------------------------------------------------------------------------

  /** Records a failed attempt and decides (the decide stage) what comes next. */
  const failed = (state: RequestState, a: Admitted, error: BedrockError.BedrockError, now: number, hedgeInFlight: boolean) =>
    Effect.suspend(() => {
      const decision = policy.classification(error)
      const action = decide(state, a.target, error, decision, a.serviceTier, hedgeInFlight)
      return Effect.as(recordFailure(state, a, error, decision, action._tag === "FailFast", recordDecision(action), now), action)
    })

  /**
   * The record stage of a failed attempt, before its answer's commit point or after it (a stream cut): the
   * request's last failure, the permits back, the target's stats, the attempt's record (replacing the one at
   * `at`, when the attempt was recorded as a success at its commit point).
   */
  const recordFailure = (
    state: RequestState,
    a: Admitted,
    error: BedrockError.BedrockError,
    decision: BedrockError.Decision,
    failsFast: boolean,
    recorded: RecordDecision,
    now: number,
    at?: number
  ) =>
    Effect.gen(function*() {
      const t = a.target
      state.last = error
      state.lastFailure ??= new Map()
      state.lastFailure.set(t, error)
      yield* release(a, { _tag: "Failure", at: now, durationMs: now - a.t0, error, decision, slow: isSlow(error) })
      const kind = error.reason._tag === "Throttled"
        ? "throttle"
        : error.reason._tag === "Refused"
        ? "refusal"
        : failsFast || !decision.failover
        ? "fail-fast"
        : "failure"
      t.stats.failed(now, kind, decision.breaker, { reason: error.reason._tag, message: error.message, at: now })
      // an attempt the mux aborted (its timeout, the deadline, a stall) is interrupted; the reason says why
      const aborted = error.reason._tag === "DeadlineExceeded"
      yield* recordAttempt(state, {
        modelId: t.model.modelId,
        target: t.model.target,
        outcome: aborted ? "interrupted" : "failure",
        reason: error.reason._tag,
        decision: recorded,
        ...(a.serviceTier !== undefined ? { serviceTier: a.serviceTier } : {}),
        ...(error.httpStatusCode !== undefined ? { httpStatusCode: error.httpStatusCode } : {}),
        message: error.message,
        ...(error.reason._tag === "DeadlineExceeded" ? { limitMs: Duration.toMillis(error.reason.after) } : {}),
        durationMs: now - a.t0
      }, now, at, error)
    })

  /** The request leaves `target` (for good, or until its cooldown ends): counted and announced. */
  const failOver = (state: RequestState, t: Target, error: BedrockError.BedrockError, action: Extract<Action, { _tag: "Failover" }>, now: number) => {
    muxStats.failovers += 1
    if (action.exclude) (state.excluded ??= new Map()).set(t, { why: "tried" })
    if (action.minContext !== undefined) state.minContext = Math.max(state.minContext, action.minContext)
    return emit({ _tag: "Failover", at: now, requestId: state.info.id, modelId: t.model.modelId, target: t.model.target, reason: error.reason._tag })
  }

  const fail = (state: RequestState, reason: MuxError["reason"], message: string, last?: BedrockError.BedrockError) =>
    Effect.fail(new MuxError({ reason, message, attempts: state.attempts, requestId: state.info.id, ...(last !== undefined ? { last } : {}) }))

  const deadlineExceeded = (state: RequestState, last: BedrockError.BedrockError | undefined) =>
    fail(
      state,
      new DeadlineExceeded({ deadlineMs: state.deadlineMs, scope: "request", afterMs: state.deadlineMs }),
      `request deadline of ${state.deadlineMs} ms exceeded`,
      last
    )

  /** Records a success; an open one (a commit point) is settled later. */
  const succeeded = <A>(state: RequestState, a: Admitted, value: A, now: number, open: boolean, usage: ((a: A) => Guard.Usage | undefined) | undefined): Effect.Effect<Routed<A>> => {
    const routed = routedOf(state, a, value, now)
    return open ? Effect.succeed(routed) : Effect.as(routed.settle({ _tag: "Success", usage: usage?.(value) }, now), routed)
  }

  /**
   * A success's record and routing, in plain code; a one-shot call settles it at once, an open stream
   * when its answer ends.
   */
  const routedOf = <A>(state: RequestState, a: Admitted, value: A, now: number): Routed<A> => {
    const t = a.target
    const at = state.attempts.length
    const record: AttemptRecord = successRecord(t, a.serviceTier, now - a.t0)
    // an open success is announced when it is settled, with its final record
    state.attempts.push(record)
    let settled = false
    const settle = (end: AttemptEnd, ended?: number): Effect.Effect<{ readonly restart: boolean }> =>
      Effect.suspend(() => {
        if (settled) return Effect.succeed(NO_RESTART)
        settled = true
        return ended === undefined ? Effect.flatMap(Clock.currentTimeMillis, (at1) => settleAt(end, at1)) : settleAt(end, ended)
      })
    const settleAt = (end: AttemptEnd, now1: number): Effect.Effect<{ readonly restart: boolean }> => {
      switch (end._tag) {
        case "Success": {
          t.stats.succeeded(now1, now1 - a.t0, end.usage?.outputTokens)
          return Effect.as(
            Effect.andThen(
              recordAttempt(state, { ...record, durationMs: now1 - a.t0 }, now1, at),
              release(a, { _tag: "Success", at: now1, durationMs: now1 - a.t0, usage: end.usage })
            ),
            NO_RESTART
          )
        }
        case "Interrupted":
          // the caller stopped reading: not the model's fault
          return Effect.as(
            Effect.andThen(
              recordAttempt(state, { ...record, outcome: "interrupted", durationMs: now1 - a.t0 }, now1, at),
              release(a, { _tag: "Interrupted", at: now1, durationMs: now1 - a.t0 })
            ),
            NO_RESTART
          )
        case "Failure": {
          const error = end.error
          const decision = policy.classification(error)
          // the request deadline is terminal (no restart can answer in time), and an error the policy fails fast
          // on (the request is at fault) would fail the same way on any model: neither restarts
          const restart = end.restart && decision.failover &&
            !(error.reason._tag === "DeadlineExceeded" && error.reason.scope === "request")
          t.stats.interrupted += 1
          muxStats.interrupted += 1
          return Effect.gen(function*() {
            yield* recordFailure(state, a, error, decision, !decision.failover, restart ? "failover" : "stop", now1, at)
            if (restart) {
              muxStats.restarts += 1
              state.excluded ??= new Map()
              state.excluded.set(t, { why: "tried" })
              yield* emit({ _tag: "Failover", at: now1, requestId: state.info.id, modelId: t.model.modelId, target: t.model.target, reason: error.reason._tag })
            }
            return restart ? RESTART : NO_RESTART
          })
        }
      }
    }
    return { value, requestId: state.info.id, target: t, tier: a.tier, attempts: state.attempts, settle }
  }

  /**
   * Routes a request. Its first select and attempt run in plain code where they can (see `routeFast`): one
   * Effect step up to the attempt's end (measured: a stream's time to first token, bench/results/README.md).
   */
  const routeRequest = <A>(state: RequestState, run: Attempt<A>, routeOptions: RouteOptions<A>): Effect.Effect<Routed<A>, MuxError> => {
    // routeFast's own first check, here too: a route that cannot take the fast path skips the withFiber step
    if (!fastCapable || routeOptions.raw === undefined || routeOptions.hedge !== undefined) return generalRoute(state, run, routeOptions)
    return Effect.withFiber((fiber) => routeFast(state, run, routeOptions, fiber.context, identity) ?? generalRoute(state, run, routeOptions))
  }

  const generalRoute = <A>(state: RequestState, run: Attempt<A>, routeOptions: RouteOptions<A>): Effect.Effect<Routed<A>, MuxError> =>
    storeFailure(state, routeLoop(state, run, routeOptions))

  /** A store's failure as the request's MuxError, with its attempts so far. */
  const storeFailure = <B>(state: RequestState, self: Effect.Effect<B, MuxError | StoreError>): Effect.Effect<B, MuxError> =>
    Effect.catchTag(self, "StoreError", (e) => Effect.fail(storeError(e, state.attempts)))

  /**
   * The route's first select and attempt in plain code (every guard and the selector answer without an
   * Effect, a raw attempt, no hedge, no tracer), its answer mapped by `f`: the attempt is one Effect step
   * (no fiber, no race), and an open success (a stream at its commit point) is mapped in the attempt's own
   * callback. Whatever the attempt's end asks for (a failure to decide on) is the general loop's. Undefined
   * where the route starts in the general loop.
   */
  const routeFast = <A, B>(
    state: RequestState,
    run: Attempt<A>,
    routeOptions: RouteOptions<A>,
    context: Context.Context<never>,
    f: (routed: Routed<A>) => B
  ): Effect.Effect<B, MuxError> | undefined => {
    const rawOf = routeOptions.raw
    if (!fastCapable || rawOf === undefined || routeOptions.hedge !== undefined) return undefined
    const { tracing, clock } = refsOf(context)
    if (tracing) return undefined
    const now = clock.currentTimeMillisUnsafe()
    if (state.deadlineAt <= now || budgetSpent(state)) return undefined
    const chosen = selectUnsafe(state, now, context)
    if (chosen === undefined) return undefined
    if ("taken" in chosen) return Effect.map(Effect.andThen(releaseAll(chosen.taken, { _tag: "NotSent", at: now }), generalRoute(state, run, routeOptions)), f)
    const a = chosen
    state.hedgeable = false
    const ended = (exit: Exit.Exit<A, BedrockError.BedrockError>): Effect.Effect<B, MuxError> =>
      // an open success (a stream at its commit point) in plain code: nothing to settle until the answer ends
      Exit.isSuccess(exit) && routeOptions.open === true
        ? Effect.succeed(f(routedOf(state, a, exit.value, clock.currentTimeMillisUnsafe())))
        : Effect.map(
          storeFailure(
            state,
            Effect.flatMap(
              afterAttempt(state, a, exit, clock.currentTimeMillisUnsafe(), routeOptions.open === true, routeOptions.usage),
              (done) => done ?? routeLoop(state, run, routeOptions)
            )
          ),
          f
        )
    const { limit, context: attemptContext } = planOf(state, a, routeOptions.commitWithin)
    const raw = rawOf(a.target, attemptContext)
    if (raw === undefined) return Effect.flatMap(attempt(state, a, run, routeOptions), ended)
    if (options.observer.listening()) emitUnsafe(attemptStarted(state, a, false), context)
    return rawTimed(raw, a.t0 + limit.ms, limit, a.target.model.modelId, ended, () => interruptedAttempt(state, a))
  }

  // --- the loop ------------------------------------------------------------------------------

  const routeLoop = <A>(
    state: RequestState,
    run: Attempt<A>,
    routeOptions: RouteOptions<A>
  ): Effect.Effect<Routed<A>, MuxError | StoreError> =>
    Effect.gen(function*() {
      const open = routeOptions.open === true
      const { hedge, usage } = routeOptions
      const fiber = yield* Effect.withFiber(Effect.succeed)
      state.hedgeable = hedge !== undefined
      if (state.hedgeable) muxStats.hedgeWindow.record(state.started, true)
      while (true) {
        const now = yield* Clock.currentTimeMillis
        const remaining = state.deadlineAt - now
        if (remaining <= 0) return yield* deadlineExceeded(state, state.last)
        if (budgetSpent(state)) return yield* exhausted(state)

        // select: in plain code where it can be, else through the guards' and selector's Effects
        const fast = selectUnsafe(state, now, fiber.context)
        const chosen = fast !== undefined && !("taken" in fast)
          ? pendingPick(state, fast)
          : yield* Effect.andThen(fast === undefined ? Effect.void : releaseAll(fast.taken, { _tag: "NotSent", at: now }), selectWithin(state, now)).pipe(
            Effect.catchTag("DeadlinePassed", () => deadlineExceeded(state, state.last))
          )
        if ("_tag" in chosen && chosen._tag === "FailFast") {
          // a same-model retry a guard refused, of an error that must not fail over
          return yield* fail(state, new Failed({ error: state.last! }), state.last!.message, state.last)
        }
        // an escalation a guard refused, at the budget's end
        if ("_tag" in chosen && chosen._tag === "Exhausted") return yield* exhausted(state)
        if ("_tag" in chosen) {
          // the select stage may have taken a while (a slow view): a wait counts from its end (found by the
          // deadline law with slow guards: a wait for a recovery slept 200 ms past the deadline)
          const t = yield* Clock.currentTimeMillis
          const wait = yield* nothingEligible(state, chosen.views, chosen.targets, now, t, state.deadlineAt - t)
          if (wait === "again") continue
          return yield* wait
        }

        // attempt (hedged when asked)
        let current = chosen
        let exit: Exit.Exit<A, BedrockError.BedrockError>
        const hedgeMs = state.hedgeable ? hedge!.afterMs(current.target) : undefined
        if (hedgeMs === undefined || hedgeMs >= remaining) {
          exit = yield* attempt(state, current, run, routeOptions)
        } else {
          const outcome = yield* hedged(state, current, run, hedge!, hedgeMs, routeOptions)
          if (outcome._tag === "Done") return yield* outcome.result
          current = outcome.winner
          exit = outcome.exit
        }
        const t1 = yield* Clock.currentTimeMillis
        const done = yield* afterAttempt(state, current, exit, t1, open, usage)
        if (done !== undefined) return yield* done
      }
    })

  /**
   * The decide and record stages after one attempt: the request's end when it ends here (a success, a
   * fail-fast, a stop, a defect), or undefined for another turn of the loop.
   */
  const afterAttempt = <A>(
    state: RequestState,
    current: Admitted,
    exit: Exit.Exit<A, BedrockError.BedrockError>,
    t1: number,
    open: boolean,
    usage: ((a: A) => Guard.Usage | undefined) | undefined
  ): Effect.Effect<Effect.Effect<Routed<A>, MuxError> | undefined, StoreError> =>
    Effect.gen(function*() {
      if (Exit.isSuccess(exit)) return Effect.succeed(yield* succeeded(state, current, exit.value, t1, open, usage))
      const error = exitError(exit)
      if (error === undefined) {
        // a defect: the permits go back without blaming the model, the reservations with them (the request
        // failed, as for any failure); an interruption keeps what Bedrock may have counted
        const died = exit.cause.reasons.some((r) => r._tag === "Die")
        yield* release(current, died ? { _tag: "NotSent", at: t1 } : { _tag: "Interrupted", at: t1, durationMs: t1 - current.t0 })
        return exit as Exit.Exit<never>
      }
      const action = yield* failed(state, current, error, t1, false)
      return yield* act(state, current, error, action, t1)
    })

  /** Carries out the decision; returns the request's end when it ends here. */
  const act = (state: RequestState, a: Admitted, error: BedrockError.BedrockError, action: Action, now: number) =>
    Effect.gen(function*() {
      const t = a.target
      switch (action._tag) {
        case "Stop":
          return deadlineExceeded(state, error)
        case "FailFast":
          return fail(state, new Failed({ error }), error.message, error)
        case "Escalate": {
          state.escalated ??= new Set()
          state.escalated.add(t)
          // the escalated attempt that follows, once per model, outside the budget (taken back if it never runs)
          if (policy.countEscalations === false) state.uncounted += 1
          state.next = { target: t, serviceTier: action.serviceTier, refused: refusedAfter(state, error), escalation: true }
          yield* emit({ _tag: "Escalated", at: now, requestId: state.info.id, modelId: t.model.modelId, target: t.model.target, serviceTier: action.serviceTier })
          return undefined
        }
        case "RetrySame": {
          let step = state.retrySteps?.get(t)
          if (step === undefined) {
            step = (yield* Schedule.toStep(policy.retry)) as Step
            state.retrySteps ??= new Map()
            state.retrySteps.set(t, step)
          }
          const r = yield* Effect.result(step(now, error))
          const delay = r._tag === "Success" ? Duration.toMillis(r.success[1]) : Infinity
          if (now + delay < state.deadlineAt) {
            state.sameTries ??= new Map()
            state.sameTries.set(t, (state.sameTries?.get(t) ?? 0) + 1)
            if (delay > 0) yield* Effect.sleep(delay)
            state.next = { target: t, serviceTier: a.serviceTier, refused: refusedAfter(state, error) }
            return undefined
          }
          // the schedule is done, or its delay would pass the deadline: another model may still answer in time,
          // unless the error is one the policy does not fail over on
          if (!policy.classification(error).failover) return fail(state, new Failed({ error }), error.message, error)
          return yield* Effect.as(failOver(state, t, error, { _tag: "Failover", exclude: true, minContext: undefined }, now), undefined)
        }
        case "Failover": {
          yield* failOver(state, t, error, action, now)
          if (policy.backoff === undefined || action.minContext !== undefined) return undefined
          // the single-model backoff: only when no other model could take the request
          // a guard's view past the deadline: no backoff; the loop ends the request as a deadline at its next turn
          const others = yield* within(anyEligible(state, now, t), state.deadlineAt).pipe(Effect.catchTag("DeadlinePassed", () => Effect.succeed(true)))
          if (others) return undefined
          // the look may have taken a while (a guard's slow view): the wait counts from its end
          const looked = yield* Clock.currentTimeMillis
          if (state.backoffStep === undefined) state.backoffStep = (yield* Schedule.toStep(policy.backoff)) as Step
          const r = yield* Effect.result(state.backoffStep(looked, error))
          if (r._tag === "Failure") return undefined // schedule done
          const delay = Duration.toMillis(r.success[1])
          // a wait that would pass the deadline ends the request as what it is: a deadline
          if (looked + delay >= state.deadlineAt) return deadlineExceeded(state, error)
          yield* Effect.sleep(delay)
          state.excluded?.delete(t)
          state.next = { target: t, serviceTier: undefined, refused: action.exclude ? "exclude" : "keep" }
          return undefined
        }
      }
    })

  /** Could another model than `but` take the request now (guards' views, exclusions, weights)? */
  const anyEligible = (state: RequestState, now: number, but: Target) =>
    Effect.gen(function*() {
      const targets = flatTargets(state.tiers)
      const views = yield* viewsOf(targets, state.info, now)
      return targets.some((t, i) =>
        t !== but && !isExcluded(state, t, now) && views.every((v) => v[i]!.admits) &&
        views.reduce((w, v) => w * v[i]!.weight, t.model.weight) > 0
      )
    })

  /**
   * Nothing is eligible: wait for the earliest recovery inside the deadline (a throttle cooldown always;
   * breakers, quotas and other guards with `waitForRecovery`), or end the request with why.
   */
  const nothingEligible = (
    state: RequestState,
    views: ReadonlyArray<ReadonlyArray<Guard.View>>,
    targets: ReadonlyArray<Target>,
    viewedAt: number,
    now: number,
    remaining: number
  ) =>
    Effect.gen(function*() {
      // as the views saw them (a breaker's probe in flight is one whose recovery is the view's own time)
      const models = availability(state, views, targets, viewedAt)
      let earliest: number | undefined
      let earliestAny: number | undefined
      for (const m of models) {
        if (m.recoversAt === undefined) continue
        if (earliestAny === undefined || m.recoversAt < earliestAny) earliestAny = m.recoversAt
        const waitable = m.excluded === "cooldown" || (state.waitForRecovery && m.excluded !== "tried" && m.excluded !== "route" &&
          m.excluded !== "context-window" && m.excluded !== "weight")
        if (waitable && (earliest === undefined || m.recoversAt < earliest)) earliest = m.recoversAt
      }
      if (earliest !== undefined && earliest - now < remaining) {
        // earliest === now: a probe or trial in flight frees its slot when it ends, at a time nobody knows;
        // look again shortly instead of spinning
        // whole milliseconds, at least one: a wait below a nanosecond (floating-point times) would not suspend
        // under TestClock, and the request would spin
        yield* Effect.sleep(Math.max(1, Math.ceil(Math.min(remaining, Math.max(earliest - now, earliest <= now ? POLL_MS : 0)))))
        return "again" as const
      }
      const last = state.last
      // the last model left timed out: that is what ended the request
      if (last !== undefined && last.reason._tag === "DeadlineExceeded" && earliestAny === undefined) {
        const afterMs = Duration.toMillis(last.reason.after)
        return fail(state, new DeadlineExceeded({ deadlineMs: state.deadlineMs, scope: "attempt", afterMs }), `the attempt timed out after ${afterMs} ms and no model is left`, last)
      }
      return fail(
        state,
        new NoModelsAvailable({
          models,
          ...(earliestAny !== undefined ? { earliestRecovery: earliestAny, retryAfterMs: Math.max(0, earliestAny - now) } : {})
        }),
        last === undefined
          ? `no model can take the request${earliestAny !== undefined ? `; retry after ${Math.max(0, earliestAny - now)} ms` : ""}`
          : `no model left to fail over to after: ${last.message}`,
        last
      )
    })

  /** Each model of the route (and those out of it): why it could not take the request, and when it could. */
  const availability = (
    state: RequestState,
    views: ReadonlyArray<ReadonlyArray<Guard.View>>,
    targets: ReadonlyArray<Target>,
    now: number
  ): Array<ModelAvailability> => {
    const inRoute = new Set(targets)
    const out = pool.targets.filter((t) => !inRoute.has(t))
    const row = (t: Target, excluded: string, recoversAt: number | undefined, breaker: ModelAvailability["breaker"]): ModelAvailability => {
      const lastError = state.lastFailure?.get(t)
      const lastFailure = lastError !== undefined
        ? { reason: lastError.reason._tag, message: lastError.message, at: t.stats.lastFailureAt ?? now }
        : t.stats.lastFailure
      return {
        modelId: t.model.modelId,
        target: t.model.target,
        breaker,
        excluded,
        ...(recoversAt !== undefined ? { recoversAt } : {}),
        ...(lastFailure !== undefined ? { lastFailure } : {})
      }
    }
    const breakerIndex = guards.findIndex((_, g) => guardName(g) === "breaker")
    return [
      ...targets.map((t, i) => {
        const breakerView = breakerIndex >= 0 ? views[breakerIndex]![i] : undefined
        const breaker: ModelAvailability["breaker"] = breakerView === undefined || (breakerView.admits && breakerView.free === true)
          ? "closed"
          : breakerView.admits || breakerView.recoversAt === now
          ? "half-open"
          : "open"
        const ex = state.excluded?.get(t)
        if (ex !== undefined && (ex.until === undefined || ex.until > now)) return row(t, ex.why, ex.until === Infinity ? undefined : ex.until, breaker)
        if (state.minContext >= 0 && (t.model.contextWindow ?? 0) <= state.minContext) return row(t, "context-window", undefined, breaker)
        for (const v of views) {
          const view = v[i]!
          if (!view.admits) return row(t, view.why ?? "guard", view.recoversAt, breaker)
        }
        return row(t, t.model.weight <= 0 ? "weight" : "not-excluded", undefined, breaker)
      }),
      ...out.map((t) => row(t, "route", undefined, "closed"))
    ]
  }

  /** The attempt stage with a hedge: after `hedgeMs` without a result, the same request also starts elsewhere. */
  const hedged = <A>(
    state: RequestState,
    first: Admitted,
    run: Attempt<A>,
    hedge: HedgeOptions,
    hedgeMs: number,
    routeOptions: RouteOptions<A>
  ) => {
    // the attempts' fibers, interrupted (their HTTP requests aborted, their permits back) when the hedge fails
    // (a defect in a guard's code, a store's failure while deciding): they are children of the caller's fiber,
    // which may outlive the request (found by a review: the primary ran on, its permit never released)
    const fibers: Array<Fiber.Fiber<unknown, unknown>> = []
    return Effect.gen(function*() {
      const firstFiber = yield* Effect.forkChild(attempt(state, first, run, routeOptions))
      fibers.push(firstFiber)
      const early = yield* Effect.timeoutOption(Fiber.join(firstFiber), Duration.millis(hedgeMs))
      if (Option.isSome(early)) return { _tag: "Attempt" as const, winner: first, exit: early.value }
      const tHedge = yield* Clock.currentTimeMillis
      const [hedgeOk, hedgeBad] = muxStats.hedgeWindow.totals(tHedge)
      // a hedge is an attempt: it needs room in the budget (the one in flight is not recorded yet)
      if (hedgeBad >= hedge.budget * hedgeOk || counted(state) + 2 > policy.attempts) {
        return { _tag: "Attempt" as const, winner: first, exit: yield* Fiber.join(firstFiber) }
      }
      const picked = yield* hedgePick(state, tHedge, first.target, firstFiber)
      if ("exit" in picked) return { _tag: "Attempt" as const, winner: first, exit: picked.exit }
      const second = picked.second
      // one hedge per request
      state.hedgeable = false
      muxStats.hedges += 1
      muxStats.hedgeWindow.record(tHedge, false)
      yield* emit({ _tag: "Hedged", at: tHedge, requestId: state.info.id, primary: first.target.model.target, target: second.target.model.target, afterMs: hedgeMs })
      const secondFiber = yield* Effect.forkChild(attempt(state, second, run, routeOptions, true))
      fibers.push(secondFiber)
      const [winner, winnerExit, other, otherFiber] = yield* Effect.raceFirst(
        Effect.map(Fiber.join(firstFiber), (e) => [first, e, second, secondFiber] as const),
        Effect.map(Fiber.join(secondFiber), (e) => [second, e, first, firstFiber] as const)
      )
      const t1 = yield* Clock.currentTimeMillis
      const error = exitError(winnerExit)
      if (Exit.isSuccess(winnerExit) || error === undefined) {
        // the loser is aborted (its record says hedge-lost); what it used stays reserved (Bedrock counted it)
        other.lostHedge = true
        yield* Fiber.interrupt(otherFiber)
        // interrupted before its fiber ran (its pick came as the winner's outcome did): its pick goes back unused
        yield* unsent(other)
        if (winner === second) muxStats.hedgesWon += 1
        return { _tag: "Attempt" as const, winner, exit: winnerExit }
      }
      const action = yield* failed(state, winner, error, t1, true)
      if (action._tag === "Stop" || action._tag === "FailFast") {
        yield* Fiber.interrupt(otherFiber)
        yield* unsent(other)
        return { _tag: "Done" as const, result: (yield* act(state, winner, error, action, t1))! }
      }
      yield* failOver(state, winner.target, error, action._tag === "Failover" ? action : { _tag: "Failover", exclude: true, minContext: undefined }, t1)
      return { _tag: "Attempt" as const, winner: other, exit: yield* Fiber.join(otherFiber) }
    }).pipe(Effect.onError(() => Effect.forEach(fibers, Fiber.interrupt, { discard: true })))
  }

  /**
   * The hedge's select stage, raced with the first attempt: an answer that comes while the hedge's target is
   * still being chosen (a guard's admit on a remote store runs to its end) is the request's at once, and the
   * hedge is given up. The stage runs on in a fiber of its own, bounded by the deadline, not interrupted
   * (an admit that took a slot would lose it); a pick it makes after it was given up is released unused,
   * exactly once: by the stage's own end, or here where that end came first.
   */
  const hedgePick = <A>(
    state: RequestState,
    now: number,
    busy: Target,
    firstFiber: Fiber.Fiber<Exit.Exit<A, BedrockError.BedrockError>>
  ): Effect.Effect<{ readonly second: Admitted } | { readonly exit: Exit.Exit<A, BedrockError.BedrockError> }> =>
    Effect.suspend(() => {
      let abandoned = false
      // the stage's pick, set in the stage's own step: the stage (given up before its pick) or the abandon
      // (after it), whichever comes second, gives it back; a review found the gaps a fiber handle left
      let made: Admitted | undefined
      const abandon = Effect.suspend(() => {
        abandoned = true
        return made === undefined ? Effect.void : giveBack(made)
      })
      const stage = selectWithin(state, now, busy).pipe(
        // a hedge chosen too late is none: the first attempt has the deadline of its own
        Effect.catchTag("DeadlinePassed", () => Effect.succeed(undefined)),
        // nor is one whose store failed: the first attempt runs on
        Effect.catchTag("StoreError", () => Effect.succeed(undefined)),
        Effect.flatMap((r) => {
          const a = r !== undefined && "target" in r ? r : undefined
          if (a === undefined) return Effect.succeed(undefined)
          if (abandoned) return Effect.as(giveBack(a), undefined)
          made = a
          return Effect.succeed(a)
        })
      )
      return Effect.gen(function*() {
        const picking = yield* Effect.forkDetach(stage, { startImmediately: true })
        const won = yield* Effect.raceFirst(
          Effect.map(Fiber.join(firstFiber), (exit) => ({ exit })),
          Effect.map(Fiber.await(picking), (pick) => ({ pick }))
        )
        if ("exit" in won) return won
        // a defect of a guard's or the selector's code is the request's, as it is outside a hedge
        const pick = yield* won.pick
        return pick === undefined ? { exit: yield* Fiber.join(firstFiber) } : { second: pick }
      }).pipe(Effect.onExit((exit) => (Exit.isSuccess(exit) && "second" in exit.value ? Effect.void : abandon)))
    })

  /** The request's one outcome from how its routing ended. */
  const ending = <A>(request: Request, usage: ((a: A) => Guard.Usage | undefined) | undefined) =>
    Effect.onExit((exit: Exit.Exit<Routed<A>, MuxError>) => {
      if (Exit.isSuccess(exit)) return request.end({ _tag: "Success", target: exit.value.target, usage: usage?.(exit.value.value) })
      const error = exitError(exit as Exit.Exit<unknown, never>) as MuxError | undefined
      if (error !== undefined) return request.end({ _tag: "Failure", error })
      // a defect is a failure (its tenant reservation goes back); otherwise the caller gave up (a timeout of its own)
      return request.end(exit.cause.reasons.some((r) => r._tag === "Die") ? { _tag: "Defect" } : { _tag: "Interrupted" })
    })

  /** Every guard and the selector can answer without an Effect (an in-memory store): the fast path may apply. */
  const fastCapable = selector.pickUnsafe !== undefined && guards.every((g) => g.viewUnsafe !== undefined && g.admitUnsafe !== undefined)

  const run: Engine["run"] = (opts, attemptFn, call) => {
    const fast = fastCapable && !hasTenantQuota(opts.tenant)
    return Effect.withFiber((fiber) => {
      if (refsOf(fiber.context).tracing) {
        const general = generalRun(opts, attemptFn, call)
        return call.traced === undefined ? general : call.traced(general)
      }
      return fast ? fastRun(fiber, opts, attemptFn, call) : generalRun(opts, attemptFn, call)
    })
  }

  /** A one-shot call through the general loop from its start. */
  const generalRun = <A, B>(opts: StartOptions, attemptFn: Attempt<A>, call: RunOptions<A, B>): Effect.Effect<B, MuxError> =>
    Effect.flatMap(start(opts), (request) =>
      request.route(attemptFn, call).pipe(ending(request, call.usage), Effect.map(call.result)))

  /**
   * The fast path (measured: the mux's own cost on the real SDK path is dominated by the number of distinct
   * Effect steps a call runs, bench/results/README.md). Without a tenant quota, a tracer or a store round trip,
   * a request's stages run as plain code in one step: begin, every guard's view and permit, the selector's
   * pick, and the record of a success; the only Effect is the attempt itself. Anything else (no eligible
   * model, a guard that needs its store, a failed attempt) hands the same request over to the general loop.
   */
  const fastRun = <A, B>(
    fiber: Fiber.Fiber<unknown, unknown>,
    opts: StartOptions,
    attemptFn: Attempt<A>,
    call: RunOptions<A, B>
  ): Effect.Effect<B, MuxError> => {
    const f = fastStart(fiber.context, opts, attemptFn, call)
    return Effect.isEffect(f) ? f : fastAttempt(f)
  }

  /**
   * The fast path's stages up to its first attempt, in plain code: that attempt admitted, or what runs the
   * call from here (its InvalidRequest, the general loop).
   */
  const fastStart = <A, B>(
    context: Context.Context<never>,
    opts: StartOptions,
    attemptFn: Attempt<A>,
    call: RunOptions<A, B>
  ): Fast<A, B> | Effect.Effect<B, MuxError> => {
    const { clock } = refsOf(context)
    const now = clock.currentTimeMillisUnsafe()
    const b = begun(opts, now, context)
    if (b instanceof MuxError) return Effect.fail(b)
    const { state, request } = b
    const chosen = selectUnsafe(state, now, context)
    if (chosen === undefined) return runRest(state, request, call, routeLoop(state, attemptFn, call))
    if ("taken" in chosen) {
      return runRest(
        state,
        request,
        call,
        Effect.andThen(releaseAll(chosen.taken, { _tag: "NotSent", at: now }), routeLoop(state, attemptFn, call))
      )
    }
    const a = chosen
    const { limit, context: attemptContext } = planOf(state, a, undefined)
    if (options.observer.listening()) emitUnsafe(attemptStarted(state, a, false), context)
    return {
      state,
      request,
      a,
      // every permit is free or can be released in plain code (a memory store's quota reservation)
      plain: a.permits.every((p) => isFree(p) || p.releaseUnsafe !== undefined),
      context,
      clock,
      attemptFn,
      call,
      limit,
      attemptContext,
      raw: call.raw?.(a.target, attemptContext)
    }
  }

  /**
   * The fast path's first attempt as one Effect step where it is a raw one: the call's own AbortController,
   * aborted at the deadline (the mux's heap) or when the caller gives up.
   */
  const fastAttempt = <A, B>(f: Fast<A, B>): Effect.Effect<B, MuxError> => {
    const { a, limit } = f
    const { target } = a
    const modelId = target.model.modelId
    if (f.raw !== undefined) return rawTimed(f.raw, a.t0 + limit.ms, limit, modelId, (exit) => fastEnded(f, exit), () => fastInterrupted(f))
    let first = true
    return Effect.flatMap(timed(Effect.suspend(() => f.attemptFn(target, f.attemptContext)), a.t0 + limit.ms, timeoutOf(limit, modelId)), (exit) => {
      first = false
      return fastEnded(f, exit)
    }).pipe(Effect.onInterrupt(() => (first ? fastInterrupted(f) : Effect.void)))
  }

  /** How the fast path's attempt ended: a success recorded here, in plain code; anything else is the general loop's. */
  const fastEnded = <A, B>(f: Fast<A, B>, exit: Exit.Exit<A, BedrockError.BedrockError>): Effect.Effect<B, MuxError> => {
    const t1 = f.clock.currentTimeMillisUnsafe()
    const done = fastSucceeded(f, exit, t1)
    return done === NOT_PLAIN ? fastRest(f, exit, t1) : Effect.succeed(done)
  }

  /** A success of the fast path's attempt recorded in plain code, and the call's result; NOT_PLAIN for anything else. */
  const fastSucceeded = <A, B>(f: Fast<A, B>, exit: Exit.Exit<A, BedrockError.BedrockError>, t1: number): B | typeof NOT_PLAIN => {
    if (!Exit.isSuccess(exit) || !f.plain) return NOT_PLAIN
    const { state, a, context } = f
    const { target } = a
    const t0 = a.t0
    const used = f.call.usage?.(exit.value)
    for (const p of a.permits) if (!isFree(p)) p.releaseUnsafe!({ _tag: "Success", at: t1, durationMs: t1 - t0, usage: used })
    a.released = true
    target.stats.succeeded(t1, t1 - t0, used?.outputTokens)
    const record = successRecord(target, a.serviceTier, t1 - t0)
    state.attempts.push(record)
    // no tenant hold on this path: nothing is left to do
    if (options.observer.listening()) {
      emitUnsafe({ _tag: "AttemptEnded", at: t1, requestId: state.info.id, record }, context)
      endRequest(state, { _tag: "Success", target, usage: used }, t1, context)
    } else {
      // nobody subscribed: both events' metrics at once, by the model's cached series
      state.done = true
      countRequest(true, t1 - state.started)
      options.observer.successMetrics(target.stats, state.operation, target.model.modelId, t1 - t0, used, context)
    }
    return f.call.result({ value: exit.value, requestId: state.info.id, target, tier: a.tier, attempts: state.attempts, settle: SETTLED })
  }

  /** The general loop from the fast path's attempt's end: a failure to decide on, or permits to release. */
  const fastRest = <A, B>(f: Fast<A, B>, exit: Exit.Exit<A, BedrockError.BedrockError>, t1: number): Effect.Effect<B, MuxError> => {
    const { state, call } = f
    return runRest(
      state,
      f.request,
      call,
      Effect.flatMap(afterAttempt(state, f.a, exit, t1, false, call.usage), (done) => done ?? routeLoop(state, f.attemptFn, call))
    )
  }

  /** The caller gave up during the fast path's attempt: it was aborted; the request ends interrupted. */
  const fastInterrupted = <A, B>(f: Fast<A, B>) => Effect.andThen(interruptedAttempt(f.state, f.a), f.request.end({ _tag: "Interrupted" }))

  /**
   * `run` from plain code, for a caller outside any fiber (the Promise facade): the fast path's stages and its
   * raw first attempt run without a fiber, and a success is recorded and answered in the attempt's own
   * Promise callback (measured: the facade's added latency on the real SDK path, bench/results/README.md).
   * What the fast path hands over (the general loop, a failure to decide on, an attempt that is not raw) runs
   * in a fiber of `context`, as does the cleanup of an interrupted attempt. Undefined where `run` is the way
   * (see `Engine.runUnsafe`).
   */
  const runUnsafe = <A, B>(
    context: Context.Context<never>,
    opts: StartOptions,
    attemptFn: Attempt<A>,
    call: RunOptions<A, B>,
    onExit: (exit: Exit.Exit<B, MuxError>) => void
  ): Running<B> | undefined => {
    if (!fastCapable || hasTenantQuota(opts.tenant) || refsOf(context).tracing) return undefined
    const f = fastStart(context, opts, attemptFn, call)
    const running = new PlainRun(context, onExit)
    if (Effect.isEffect(f)) return running.fork(f)
    const raw = f.raw
    if (raw === undefined) return running.fork(fastAttempt(f))
    const { a, limit } = f
    // the attempt's end is its Exit, handed to the callback below as it is (an Exit is an Effect)
    const attempt = new RawCall<A, A, BedrockError.BedrockError>(
      a.t0 + limit.ms,
      limit,
      a.target.model.modelId,
      exitAsEffect,
      () => fastInterrupted(f),
      (ended) => {
        const exit = ended as Exit.Exit<A, BedrockError.BedrockError>
        const t1 = f.clock.currentTimeMillisUnsafe()
        let done: B | typeof NOT_PLAIN
        try {
          done = fastSucceeded(f, exit, t1)
        } catch (e) {
          // the result's own code threw (as it would inside a fiber): a defect
          return running.end(Exit.die(e))
        }
        if (done === NOT_PLAIN) running.fork(fastRest(f, exit, t1))
        else running.end(Exit.succeed(done))
      },
      deadlines
    )
    running.attempt = attempt
    attempt.start(raw)
    return running
  }

  /** The rest of a one-shot call in the general loop: `self` (the loop, or what an attempt's end asks for) to the call's result. */
  const runRest = <A, B>(
    state: RequestState,
    request: Request,
    call: RunOptions<A, B>,
    self: Effect.Effect<Routed<A>, MuxError | StoreError>
  ): Effect.Effect<B, MuxError> =>
    storeFailure(state, self).pipe(ending(request, call.usage), Effect.map(call.result))

  const health: Engine["health"] = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const current = pool
    const info: Guard.RequestInfo = { id: "health", operation: "health", label: undefined, tenant: undefined, inputTokens: () => 0, maxTokens: undefined, serviceTier: undefined }
    const views = yield* Effect.forEach(guards, (g) =>
      (g.health ?? ((ts: ReadonlyArray<Target>, n: number) => g.view(ts, info, n)))(current.targets, now).pipe(
        Effect.orElseSucceed(() => current.targets.map(() => Guard.open))
      ))
    return { pool: current, views }
  })

  const addModel: Engine["addModel"] = (model) =>
    Effect.sync(() => {
      const existing = new Map(pool.targets.map((t) => [t.model.target, t] as const))
      // the new model joins the default route at its tier, and the routes of its labels
      const route = insertAt(routeOf(pool.route), model)
      const routes = new Map([...pool.routes].map(([label, tiers]) => [label, model.labels.includes(label) ? insertAt(routeOf(tiers), model) : routeOf(tiers)] as const))
      for (const label of model.labels) if (!routes.has(label)) routes.set(label, Route.fromModels([model]))
      pool = makePool({ ...policy, route, routes }, options.runtimes, windowSeconds, existing)
      return pool.targets.find((t) => t.model.target === model.target)!
    })

  const removeModel: Engine["removeModel"] = (key) =>
    Effect.sync(() => {
      const removed = pool.targets.find((t) => t.model.target === key || t.model.modelId === key)
      if (removed === undefined) return undefined
      const existing = new Map(pool.targets.map((t) => [t.model.target, t] as const))
      const drop = (tiers: ReadonlyArray<ReadonlyArray<Target>>) => Route.filter(routeOf(tiers), (m) => m.target !== removed.model.target)
      pool = makePool(
        { ...policy, route: drop(pool.route), routes: new Map([...pool.routes].map(([l, tiers]) => [l, drop(tiers)] as const)) },
        options.runtimes,
        windowSeconds,
        existing
      )
      return removed
    })

  const resetStats: Engine["resetStats"] = Effect.sync(() => {
    muxStats.reset()
    for (const t of pool.targets) t.stats.reset()
  })

  return { policy, stats: muxStats, pool: () => pool, start, startUnsafe, run, runUnsafe, health, addModel, removeModel, resetStats, deadlines }
}

/** A success's attempt record: one literal per shape (a conditional spread is a generic copy on every call). */
const successRecord = (t: Target, serviceTier: "priority" | "reserved" | undefined, durationMs: number): AttemptRecord =>
  serviceTier === undefined
    ? { modelId: t.model.modelId, target: t.model.target, outcome: "success", durationMs }
    : { modelId: t.model.modelId, target: t.model.target, outcome: "success", serviceTier, durationMs }

interface FiberRefs {
  readonly tracing: boolean
  readonly clock: Clock.Clock
  readonly random: Random.Random
}

/** A route's targets, tier after tier: one array per route (a pool keeps its routes), which guards may key on. */
const flatTargets = (tiers: ReadonlyArray<ReadonlyArray<Target>>): ReadonlyArray<Target> => {
  if (tiers.length === 1) return tiers[0]!
  let flat = flattened.get(tiers)
  if (flat === undefined) {
    flat = tiers.flat()
    flattened.set(tiers, flat)
  }
  return flat
}
const flattened = new WeakMap<ReadonlyArray<ReadonlyArray<Target>>, ReadonlyArray<Target>>()

const routeOf = (tiers: ReadonlyArray<ReadonlyArray<Target>>): Route.Route => ({ tiers: tiers.map((tier) => tier.map((t) => t.model)) })

/**
 * A model into a route at the tier its `tier` says: beside the members of that `tier`, else a tier of its own
 * before the first tier of a higher `tier` (or last). By the members' `tier`, not by position: a tier that
 * emptied (its models removed) is gone from the route, and a re-added primary must not join the fallbacks.
 */
export const insertAt = (route: Route.Route, model: Model.Model): Route.Route => {
  const tiers = route.tiers.map((t) => t.filter((m) => m.target !== model.target)).filter((t) => t.length > 0)
  const same = tiers.findIndex((t) => t[0]!.tier === model.tier)
  if (same >= 0) tiers[same] = [...tiers[same]!, model]
  else {
    const later = tiers.findIndex((t) => t[0]!.tier > model.tier)
    if (later < 0) tiers.push([model])
    else tiers.splice(later, 0, [model])
  }
  return { tiers }
}

const succeedExit = <A>(exit: Exit.Exit<A, BedrockError.BedrockError>) => Effect.succeed(exit)
const NO_RESTART = { restart: false } as const
/**
 * One raw attempt under its deadline: the deadline entry, the Promise's two handlers and the cancel in one
 * object, where four closures and their context were (measured: memory per request in flight,
 * bench/results/README.md). Exactly one of fire / succeeded / failed / cancel takes effect.
 */
class RawCall<A, B, E> implements Deadlines.Entry {
  index = -1
  settled = false
  readonly controller = new AbortController()
  readonly at: number
  readonly limit: Limit
  readonly modelId: string
  readonly k: (exit: Exit.Exit<A, BedrockError.BedrockError>) => Effect.Effect<B, E>
  readonly onCancel: () => Effect.Effect<void>
  readonly resume: (effect: Effect.Effect<B, E>) => void
  readonly deadlines: Deadlines.Deadlines
  constructor(
    at: number,
    limit: Limit,
    modelId: string,
    k: (exit: Exit.Exit<A, BedrockError.BedrockError>) => Effect.Effect<B, E>,
    onCancel: () => Effect.Effect<void>,
    resume: (effect: Effect.Effect<B, E>) => void,
    deadlines: Deadlines.Deadlines
  ) {
    this.at = at
    this.limit = limit
    this.modelId = modelId
    this.k = k
    this.onCancel = onCancel
    this.resume = resume
    this.deadlines = deadlines
  }
  /** Sends the attempt, its deadline in the heap. A runtime whose call throws before its Promise: that attempt's failure. */
  start(raw: (controller: AbortController) => Promise<A>): void {
    this.deadlines.insert(this)
    try {
      raw(this.controller).then(this.succeeded, this.failed)
    } catch (e) {
      this.failed(e)
    }
  }
  fire() {
    if (this.settled) return
    this.settled = true
    this.controller.abort()
    this.resume(this.k(Exit.fail(BedrockError.deadline(this.limit.scope, Duration.millis(this.limit.ms), this.modelId))))
  }
  readonly succeeded = (value: A) => {
    if (this.settled) return
    this.settled = true
    this.deadlines.remove(this)
    this.resume(this.k(Exit.succeed(value)))
  }
  readonly failed = (e: unknown) => {
    if (this.settled) return
    this.settled = true
    this.deadlines.remove(this)
    this.resume(this.k(Exit.fail(BedrockError.fromSdkError(e, this.modelId))))
  }
  /** Aborts the attempt unless it has ended: did it take effect? (`onCancel` is then the caller's to run.) */
  cancelUnsafe(): boolean {
    if (this.settled) return false
    this.settled = true
    this.deadlines.remove(this)
    this.controller.abort()
    return true
  }
  get cancel(): Effect.Effect<void> {
    return Effect.suspend(() => (this.cancelUnsafe() ? this.onCancel() : Effect.void))
  }
}

const exitAsEffect = <A, E>(exit: Exit.Exit<A, E>): Effect.Effect<A, E> => exit

/**
 * A call `runUnsafe` started: its first attempt without a fiber, then (where the fast path hands over) a
 * fiber. Its observers hear its one Exit; interrupting it aborts the attempt in flight, or interrupts the fiber.
 */
class PlainRun<B> implements Running<B> {
  exit: Exit.Exit<B, MuxError> | undefined
  fiber: Fiber.Fiber<B, MuxError> | undefined
  attempt: { cancelUnsafe(): boolean; readonly onCancel: () => Effect.Effect<void> } | undefined
  /** an interruption was asked for */
  interrupted = false
  readonly observers: Array<(exit: Exit.Exit<B, MuxError>) => void>
  readonly context: Context.Context<never>
  constructor(context: Context.Context<never>, onExit: (exit: Exit.Exit<B, MuxError>) => void) {
    this.context = context
    this.observers = [onExit]
  }
  addObserver(observer: (exit: Exit.Exit<B, MuxError>) => void): void {
    if (this.exit !== undefined) observer(this.exit)
    else this.observers.push(observer)
  }
  end(exit: Exit.Exit<B, MuxError>): void {
    if (this.exit !== undefined) return
    this.exit = exit
    for (const o of this.observers) o(exit)
  }
  /** The rest of the call in a fiber of the call's context. */
  fork(effect: Effect.Effect<B, MuxError>): this {
    this.attempt = undefined
    const fiber = Effect.runForkWith(this.context)(effect)
    this.fiber = fiber
    fiber.addObserver((exit) => this.end(exit))
    // an interruption asked before the fiber could be reached (during its first steps, or before this fork)
    if (this.interrupted) fiber.interruptUnsafe()
    return this
  }
  interruptUnsafe(): void {
    if (this.exit !== undefined) return
    this.interrupted = true
    if (this.fiber !== undefined) return this.fiber.interruptUnsafe()
    const attempt = this.attempt
    // the request ends interrupted (its attempt's record, its permits) before the call's Exit is heard, as in a
    // fiber; that cleanup runs to its end whatever interrupts the fiber next (a second abort, a destroy)
    if (attempt !== undefined && attempt.cancelUnsafe()) this.fork(Effect.andThen(Effect.uninterruptible(attempt.onCancel()), Effect.interrupt))
  }
}

/** `fastSucceeded`'s answer for an end the general loop takes. */
const NOT_PLAIN: unique symbol = Symbol("effect-bedrock-mux/NotPlain")

/** The fast path's first attempt, admitted: what its end needs. */
interface Fast<A, B> {
  readonly state: RequestState
  readonly request: Request
  readonly a: Admitted
  /** every permit is free or released in plain code */
  readonly plain: boolean
  readonly context: Context.Context<never>
  readonly clock: Clock.Clock
  readonly attemptFn: Attempt<A>
  readonly call: RunOptions<A, B>
  readonly limit: Limit
  readonly attemptContext: AttemptContext
  readonly raw: ((controller: AbortController) => Promise<A>) | undefined
}

/** A request the mux refuses before any attempt: every problem, and a message (by default, all of them). */
export const invalidRequest = (problems: ReadonlyArray<string>, message = `invalid request: ${problems.join("; ")}`): MuxError =>
  new MuxError({ reason: new InvalidRequest({ problems }), message, attempts: [] })

/** The settle of a one-shot call's Routed: it was settled when it succeeded. */
const SETTLED = (): Effect.Effect<{ readonly restart: boolean }> => Effect.succeed(NO_RESTART)
const voidEffect = (): Effect.Effect<void> => Effect.void
/** An attempt's DeadlineExceeded at `limit`, for `timed`: the error is built only when the limit expires. */
const timeoutOf = (limit: Limit, modelId: string) => (): BedrockError.BedrockError => BedrockError.deadline(limit.scope, Duration.millis(limit.ms), modelId)
const RESTART = { restart: true } as const
interface TenantHold {
  readonly release: Effect.Effect<void>
  readonly settle: (tokens: number | undefined) => Effect.Effect<void>
}
const NO_HOLD: TenantHold = { release: Effect.void, settle: () => Effect.void }
/** The output reservation of a tenant's request that sets no maxTokens. */
const DEFAULT_OUTPUT_TOKENS = 4_096

/** A guard's or the selector's own Effect ran past the request's deadline (`within`, `selectWithin`). */
class DeadlinePassed extends Data.TaggedError("DeadlinePassed") {}
const DEADLINE_PASSED = new DeadlinePassed()
const deadlinePassed = () => DEADLINE_PASSED

/** What may be interrupted inside an uninterruptible region (`Effect.uninterruptibleMask`'s restore). */
type Restore = <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>

/** A tenant over its quota (retried while waiting for room, else a QuotaExceeded). */
class TenantRejected extends Data.TaggedError("TenantRejected")<{
  readonly kind: "requests" | "tokens"
  readonly retryAfterMs: number
  readonly at: number
}> {}
