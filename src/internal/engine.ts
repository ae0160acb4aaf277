/**
 * The engine: one routing loop for every kind of call. Each turn selects a
 * model (pure), takes a breaker permit (atomic, in the store), runs the
 * attempt under its timeout, classifies the outcome (pure) and records it;
 * it stops on success, a fail-fast error, an exhausted budget, the deadline,
 * or when nothing is eligible.
 *
 * The attempt itself is a parameter (`run`), so Converse and ConverseStream
 * share this loop: for a stream, an attempt ends at its commit point.
 */
import { Clock, Duration, Effect, Exit, Fiber, Option, Pull, Random, Schedule, Scope } from "effect"
import * as BedrockError from "../BedrockError.ts"
import type { Service as Runtime } from "../BedrockRuntime.ts"
import type * as MuxConfig from "../MuxConfig.ts"
import { DEFAULT_MAX_TOKENS } from "../MuxConfig.ts"
import {
  type AttemptRecord,
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
import type { Service as Store, StoreError } from "../MuxStore.ts"
import type * as MuxEvent from "../MuxEvent.ts"
import type * as Policy from "../Policy.ts"
import * as Breaker from "./breaker.ts"
import type { Candidate } from "./selection.ts"
import { ModelStats, MuxStats } from "./stats.ts"
import { type Observer, SYSTEM } from "./telemetry.ts"

/** A pool entry with everything an attempt needs. */
export interface Target {
  readonly index: number
  readonly model: MuxConfig.Model
  /** the breaker's key in the store */
  readonly key: string
  /** the throttle cooldown's key */
  readonly cooldownKey: string
  /** the client-side quota's key (undefined: no rpm/tpm configured) */
  readonly quotaKey: string | undefined
  readonly runtime: Runtime
  readonly stats: ModelStats
}

/** A throttled target stays out until `until` (epoch ms of the mux's Clock). */
export interface Cooldown {
  readonly until: number
  readonly kind: BedrockError.ThrottleKind
}

/** Per-request options the engine understands. */
export interface RouteOptions {
  readonly label?: string | undefined
  readonly deadline?: Duration.Input | undefined
  readonly waitForRecovery?: boolean | undefined
  /** what admission control needs: token estimate and tenant */
  readonly admission?: {
    /** the input-token estimate, computed only when a quota needs it */
    readonly inputTokens: () => number
    readonly maxTokens: number | undefined
    readonly tenant?: string | undefined
    /** a tenant over its quota waits for room (inside the deadline) instead of failing */
    readonly waitForQuota?: boolean | undefined
  } | undefined
  /** hedging: after `afterMs(target)` without a result, the same request starts on another model */
  readonly hedge?: {
    readonly afterMs: (target: Target) => number | undefined
    /** the largest share of hedgeable requests hedged over the last minute */
    readonly budget: number
  } | undefined
  /** a success is an attempt's commit point, not its end: `Routed.complete` records how it ended (streams) */
  readonly deferred?: boolean | undefined
  /** the continuation of a request whose committed stream failed (restart): same deadline, attempts, tenant */
  readonly resume?: Resume | undefined
  /** for events and metrics */
  readonly operation?: MuxEvent.Operation | undefined
}

/** Tokens a call used: input and output as reported, `quota` as Bedrock counts it against TPM. */
export interface TokenUsage {
  readonly inputTokens: number
  readonly outputTokens: number
  readonly quota: number
}

/** How a deferred success ended. */
export type End =
  | { readonly _tag: "Success"; readonly usage: TokenUsage | undefined; readonly timeToFirstTokenMs?: number | undefined }
  | { readonly _tag: "Failure"; readonly error: BedrockError.BedrockError; readonly restart: boolean }
  | { readonly _tag: "Interrupted" }

/** A request's hold on its tenant's quota. */
export interface TenantHold {
  readonly release: Effect.Effect<void>
  readonly settle: (tokens: number | undefined) => Effect.Effect<void>
}
const noTenant: TenantHold = { release: Effect.void, settle: () => Effect.void }

/** Where a restarted request picks up. */
export interface Resume {
  readonly requestId: string
  readonly started: number
  readonly attempts: Array<AttemptRecord>
  /** pool indexes already tried */
  readonly tried: ReadonlyArray<number>
  readonly tenant: TenantHold
}

/** One attempt in flight: its target, breaker permit and quota reservation. */
interface Running {
  /** set before a hedge's loser is interrupted, so its record says why */
  lostHedge?: boolean
  readonly target: Target
  readonly probe: boolean
  readonly wasClosed: boolean
  readonly reservation: string | undefined
  readonly t0: number
}

/** What one attempt is asked to do beyond the request itself. */
export interface AttemptOptions {
  readonly timeout: Duration.Duration
  readonly deadlineScope: "attempt" | "request"
  /** set when a throttled attempt is escalated to another service tier */
  readonly serviceTier: "priority" | "reserved" | undefined
}

/** A success: the value and how it was reached. */
export interface Routed<A> {
  readonly value: A
  readonly target: Target
  readonly attempts: ReadonlyArray<AttemptRecord>
  /** records how the answer ended (called by the engine itself unless the request was `deferred`) */
  readonly complete: (end: End) => Effect.Effect<void>
  /** the continuation of this request after `tried` failed past its commit point */
  readonly resume: (tried: ReadonlyArray<number>) => Resume
}

export interface Engine {
  readonly targets: ReadonlyArray<Target>
  readonly settings: Breaker.BreakerSettings
  readonly stats: MuxStats
  readonly route: <A>(
    options: RouteOptions,
    run: (target: Target, attempt: AttemptOptions) => Effect.Effect<A, BedrockError.BedrockError>,
    /** tokens a success really used (settles quota reservations); undefined: keep the estimate */
    usageOf?: (a: A) => TokenUsage | undefined
  ) => Effect.Effect<Routed<A>, MuxError>
  /** every target's breaker state and throttle cooldown now, in one store read (failures read as closed) */
  readonly snapshot: Effect.Effect<Snapshot>
  /** the pool's policy */
  readonly policy: Policy.Policy
}

/** The pool's state as the store holds it: breakers and cooldowns, by target index. */
export interface Snapshot {
  readonly breakers: ReadonlyArray<Breaker.BreakerState>
  readonly cooldowns: ReadonlyArray<Cooldown | undefined>
}

const asState = (u: unknown): Breaker.BreakerState =>
  u === undefined || u === null ? Breaker.initial : (u as Breaker.BreakerState)

export const settingsOf = (b: Policy.Breaker): Breaker.BreakerSettings => ({
  failures: b.failures,
  windowMs: Duration.toMillis(b.window),
  cooldownMs: Duration.toMillis(b.cooldown),
  cooldownMaxMs: Duration.toMillis(b.cooldownMax),
  halfOpen: b.halfOpen,
  rampUpMs: Duration.toMillis(b.rampUp)
})

export const make = (options: {
  readonly config: MuxConfig.MuxConfig
  readonly runtimes: (model: MuxConfig.Model) => Runtime
  readonly store: Store
  /** unique per mux instance: prefixes quota reservation ids in a shared store */
  readonly instance: string
  /** where events go (and metrics come from) */
  readonly observer: Observer
  /** the mux's lifetime: cooldown-end watchers run in it */
  readonly scope: Scope.Scope
}): Engine => {
  const { config, store } = options
  const emit = options.observer.emit
  let requests = 0
  const policy = config.policy
  const settings = settingsOf(policy.breaker)
  const windowSeconds = Math.max(1, Math.ceil(settings.windowMs / 1000))
  const targets: ReadonlyArray<Target> = config.models.map((model, index) => ({
    index,
    model,
    key: `${config.name}/breaker/${model.target}`,
    cooldownKey: `${config.name}/cooldown/${model.target}`,
    quotaKey: model.rpm !== undefined || model.tpm !== undefined ? `${config.name}/quota/${model.target}` : undefined,
    runtime: options.runtimes(model),
    stats: new ModelStats(windowSeconds)
  }))
  const keys = [...targets.map((t) => t.key), ...targets.map((t) => t.cooldownKey)]
  const all = targets.map((t) => t.index)
  const n = targets.length
  let reservations = 0
  const nextId = () => `${options.instance}:${++reservations}`
  const muxStats = new MuxStats()
  const failOpen = config.onStoreError === "allow"
  const defaultDeadlineMs = Duration.toMillis(policy.deadline)

  /** A store failure: fail open (treat as closed) or fail the request. */
  const storeFailed = <A>(fallback: A) => (e: StoreError): Effect.Effect<A, StoreError> =>
    failOpen ? Effect.succeed(fallback) : Effect.fail(e)

  const emptySnapshot: Snapshot = {
    breakers: targets.map(() => Breaker.initial),
    cooldowns: targets.map(() => undefined)
  }
  const toSnapshot = (raw: ReadonlyArray<unknown>): Snapshot => ({
    breakers: raw.slice(0, n).map(asState),
    cooldowns: raw.slice(n).map((c) => (c === undefined || c === null ? undefined : (c as Cooldown)))
  })
  // one round trip for every breaker and cooldown of the pool
  const readStates = store.getMany(keys).pipe(
    Effect.map(toSnapshot),
    Effect.catch(storeFailed(emptySnapshot))
  )
  const snapshot = Effect.orElseSucceed(Effect.map(store.getMany(keys), toSnapshot), () => emptySnapshot)
  const cooling = (c: Cooldown | undefined, now: number): boolean => c !== undefined && c.until > now

  /** A throttle puts the target out until the quota allows again; a later throttle extends, never shortens. */
  const coolDown = (target: Target, reason: BedrockError.Throttled, now: number) => {
    const base = Duration.toMillis(config.cooldowns[reason.kind])
    const hinted = reason.retryAfter === undefined ? 0 : Duration.toMillis(reason.retryAfter)
    const until = now + Math.max(base, hinted)
    return store.modify(target.cooldownKey, (c) => {
      const current = c as Cooldown | undefined
      const next: Cooldown = current !== undefined && current.until >= until ? current : { until, kind: reason.kind }
      return [next, next] as const
    }).pipe(
      Effect.tap((c) => c.until !== until ? Effect.void : cooldownStarted(target, c, now)),
      Effect.ignore
    )
  }

  /** Announces a cooldown and, in the mux's scope, its end (unless a later throttle extended it). */
  const cooldownStarted = (target: Target, c: Cooldown, now: number) =>
    Effect.gen(function*() {
      const { modelId, target: key } = target.model
      if (c.kind === "daily") {
        yield* Effect.logWarning(`model ${key} hit its daily token quota; out of rotation for ${Math.round((c.until - now) / 60_000)} min`)
      }
      yield* emit({ _tag: "CooldownStarted", at: now, modelId, target: key, until: c.until, kind: c.kind })
      yield* Effect.sleep(c.until - now).pipe(
        Effect.andThen(store.getMany([target.cooldownKey])),
        Effect.flatMap(([current]) =>
          current !== undefined && current !== null && (current as Cooldown).until > c.until
            ? Effect.void
            : Effect.flatMap(Clock.currentTimeMillis, (at) => emit({ _tag: "CooldownEnded", at, modelId, target: key }))
        ),
        Effect.ignore,
        Effect.forkIn(options.scope)
      )
    })

  const tenantLimits = (tenant: string | undefined) =>
    tenant === undefined ? config.defaultTenant : config.tenants.get(tenant) ?? config.defaultTenant

  const changed = (target: Target, now: number, from: Breaker.BreakerState, to: Breaker.BreakerState) => {
    // the stored state: an Open breaker past its cooldown reads as half-open, but it was open until this change
    const a = from._tag === "Open" ? "open" : Breaker.stateName(from, now)
    const b = Breaker.stateName(to, now)
    return a === b
      ? Effect.void
      : emit({ _tag: "BreakerChanged", at: now, modelId: target.model.modelId, target: target.model.target, from: a, to: b })
  }

  const acquire = (target: Target, now: number) =>
    store.modify(target.key, (s) => {
      const state = asState(s)
      const [permit, next] = Breaker.acquire(settings, state, now)
      return [[permit, state, next] as const, next] as const
    }).pipe(
      Effect.tap(([, from, to]) => changed(target, now, from, to)),
      Effect.map(([permit]) => permit),
      Effect.catch(storeFailed<Breaker.Permit>("granted"))
    )

  const recordBreaker = (target: Target, outcome: Breaker.BreakerOutcome, probe: boolean, admittedAt: number) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      store.modify(target.key, (s) => {
        const state = asState(s)
        const next = Breaker.record(settings, state, now, outcome, probe, admittedAt)
        return [[state, next] as const, next] as const
      }).pipe(Effect.flatMap(([from, to]) => changed(target, now, from, to)))).pipe(Effect.ignore)

  const route: Engine["route"] = (routeOptions, run, usageOf) =>
    Effect.suspend(() => {
    const resume = routeOptions.resume
    // every attempt of this run of the request (an Effect may run many times), for its MuxError
    // whatever ends it, a store failure included
    const attempts: Array<AttemptRecord> = resume?.attempts ?? []
    const deferred = routeOptions.deferred === true
    const operation = routeOptions.operation ?? "converse"
    const requestId = resume?.requestId ?? `${options.instance}-${++requests}`
    /** Records an attempt (or replaces the record at `at`) and announces it. */
    const recordAttempt = (record: AttemptRecord, at?: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if (at === undefined) attempts.push(record)
        else attempts[at] = record
        return emit({ _tag: "AttemptEnded", at: now, requestId, record })
      })
    /** The request's one outcome, announced (and counted in the stats). */
    const ended = (
      outcome: MuxEvent.RequestEnded["outcome"],
      extra: { readonly modelId?: string | undefined; readonly error?: string | undefined; readonly usage?: TokenUsage | undefined; readonly timeToFirstTokenMs?: number | undefined }
    ) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        if (outcome !== "interrupted") recordRequest(outcome === "success")
        return emit({
          _tag: "RequestEnded",
          at: now,
          requestId,
          operation,
          outcome,
          modelId: extra.modelId ?? attempts[attempts.length - 1]?.modelId,
          error: extra.error,
          durationMs: now - startedAt,
          attempts: attempts.length,
          usage: extra.usage === undefined ? undefined : { inputTokens: extra.usage.inputTokens, outputTokens: extra.usage.outputTokens },
          timeToFirstTokenMs: extra.timeToFirstTokenMs
        })
      })
    let startedAt = resume?.started ?? 0
    return Effect.gen(function*() {
      const started = resume?.started ?? (yield* Clock.currentTimeMillis)
      startedAt = started
      const deadlineMs = routeOptions.deadline === undefined
        ? defaultDeadlineMs
        : Duration.toMillis(Duration.fromInputUnsafe(routeOptions.deadline))
      let tenantHold: TenantHold = resume?.tenant ?? noTenant
      const fail = (reason: MuxError["reason"], message: string, last?: BedrockError.BedrockError) =>
        Effect.andThen(
          tenantHold.release,
          Effect.fail(new MuxError({ reason, message, attempts, ...(last !== undefined ? { last } : {}) }))
        )
      let pool: ReadonlyArray<number> = all
      if (routeOptions.label !== undefined) {
        const routed = config.routes.get(routeOptions.label)
        if (routed === undefined) {
          return yield* fail(
            new InvalidRequest({ problems: [`unknown route label "${routeOptions.label}"`] }),
            `unknown route label "${routeOptions.label}"`
          )
        }
        pool = routed
      }
      const waitForRecovery = routeOptions.waitForRecovery ?? policy.waitForRecovery
      const admission = routeOptions.admission
      let input: number | undefined
      const inputTokens = () => (input ??= admission === undefined ? 0 : admission.inputTokens())
      const estimate = (t: Target) => inputTokens() + (admission?.maxTokens ?? t.model.maxTokens)

      // the tenant's quota: one request and its estimated tokens, for the whole request (a restart keeps it)
      const tenant = admission?.tenant ?? "default"
      const limits = tenantLimits(admission?.tenant)
      if (resume === undefined && limits !== undefined && (limits.rpm !== undefined || limits.tpm !== undefined)) {
        const tokens = inputTokens() + (admission?.maxTokens ?? DEFAULT_MAX_TOKENS)
        const id = nextId()
        // requests without a tenant have a bucket of their own that no tenant name can collide with
        const key = admission?.tenant === undefined ? `${config.name}/tenant-default` : `${config.name}/tenant/${tenant}`
        while (true) {
          const now = yield* Clock.currentTimeMillis
          const r = yield* store.reserve(key, now, limits, id, tokens).pipe(Effect.catch(storeFailed({ ok: true } as const)))
          if (r.ok) break
          yield* emit({ _tag: "QuotaRejected", at: now, scope: "tenant", key: tenant, kind: r.kind, retryAfterMs: r.retryAfterMs })
          const left = started + deadlineMs - now
          if (admission?.waitForQuota === true && r.retryAfterMs < left) {
            yield* Effect.sleep(Math.max(1, r.retryAfterMs))
            continue
          }
          return yield* fail(
            new QuotaExceeded({ tenant, kind: r.kind, retryAfterMs: r.retryAfterMs }),
            `tenant "${tenant}" is over its ${r.kind === "requests" ? "RPM" : "TPM"} quota; retry after ${r.retryAfterMs} ms`
          )
        }
        // a request that fails gives its tenant reservation back (an interrupted one keeps it)
        tenantHold = {
          release: store.release(key, id).pipe(Effect.ignore),
          settle: (tokens) => tokens === undefined ? Effect.void : store.settle(key, id, tokens).pipe(Effect.ignore)
        }
      }
      // escalation to another service tier: once per model per request
      const escalated = new Set<number>()
      let tier: "priority" | "reserved" | undefined
      let bypassCooldown = false
      const quotaUntil = new Map<number, number>()
      // why each model is out of this request, if it is
      const excluded = new Map<number, ModelAvailability["excluded"]>()
      for (const i of resume?.tried ?? []) excluded.set(i, "tried")
      const sameTries = new Map<number, number>()
      /** The request leaves `target` for good: counted, announced, out of this request. */
      const failOver = (target: Target, error: BedrockError.BedrockError, at: number) => {
        muxStats.failovers += 1
        excluded.set(target.index, "tried")
        return emit({ _tag: "Failover", at, requestId, modelId: target.model.modelId, target: target.model.target, reason: error.reason._tag })
      }
      let forced: Target | undefined
      let minContext = -1
      let last: BedrockError.BedrockError | undefined
      let backoffStep: BackoffStep | undefined
      let hedgeable = routeOptions.hedge !== undefined
      if (hedgeable) muxStats.hedgeWindow.record(started, true)

      /** Select (pure), take a permit (atomic), admit (atomic quota reservation); `busy` is in flight. */
      const select = (now: number, snap: Snapshot, busy?: number) =>
        Effect.gen(function*() {
          const states = snap.breakers
          const skip = new Set<number>(busy === undefined ? [] : [busy])
          while (true) {
            let choice: Target | undefined
            if (forced !== undefined && !skip.has(forced.index)) {
              // an escalated retry goes to another tier's quota: the default tier's cooldown does not apply
              if (!Breaker.admits(settings, states[forced.index]!, now) || (!bypassCooldown && cooling(snap.cooldowns[forced.index], now))) {
                // its breaker opened since (this very failure may have tripped it): fail over instead
                excluded.set(forced.index, "tried")
                skip.add(forced.index)
                continue
              }
              choice = forced
            } else {
              const candidates: Array<Candidate> = []
              for (const i of pool) {
                if (excluded.has(i) || skip.has(i)) continue
                const t = targets[i]!
                if (minContext >= 0 && (t.model.contextWindow ?? 0) <= minContext) continue
                if (cooling(snap.cooldowns[i], now)) continue
                const state = states[i]!
                if (!Breaker.admits(settings, state, now)) continue
                const weight = t.model.weight * Breaker.weightFactor(settings, state, now)
                if (weight > 0) candidates.push({ index: i, tier: t.model.tier, weight })
              }
              const picked = candidates.length === 0 ? undefined : policy.selection.pick(candidates, yield* Random.next)
              choice = picked === undefined ? undefined : targets[picked.index]
            }
            if (choice === undefined) return undefined
            const permit: Breaker.Permit = Breaker.current(states[choice.index]!, now)._tag === "Closed"
              ? "granted"
              : yield* acquire(choice, now)
            if (permit === "refused") {
              skip.add(choice.index)
              continue
            }
            let reservation: string | undefined
            if (choice.quotaKey !== undefined) {
              // no throttled call is sent when the limit is known: a target without room is skipped
              const id = nextId()
              const r = yield* store.reserve(choice.quotaKey, now, { rpm: choice.model.rpm, tpm: choice.model.tpm }, id, estimate(choice))
                .pipe(Effect.catch(storeFailed({ ok: true } as const)))
              if (!r.ok) {
                yield* emit({ _tag: "QuotaRejected", at: now, scope: "model", key: choice.model.target, kind: r.kind, retryAfterMs: r.retryAfterMs })
                if (permit === "probe") yield* recordBreaker(choice, "ignored", true, now)
                excluded.set(choice.index, "quota")
                quotaUntil.set(choice.index, now + r.retryAfterMs)
                if (forced === choice) forced = undefined
                continue
              }
              reservation = id
            }
            const running: Running = {
              target: choice,
              probe: permit === "probe",
              reservation,
              wasClosed: Breaker.current(states[choice.index]!, now)._tag === "Closed",
              t0: now
            }
            return running
          }
        })

      /** Runs one attempt to its Exit; an interrupted attempt gives its probe slot back. */
      const attempt = (r: Running, remaining: number, serviceTier: "priority" | "reserved" | undefined, hedge = false) => {
        const attemptTimeout = r.target.model.timeout !== undefined
          ? Duration.toMillis(r.target.model.timeout)
          : Duration.toMillis(policy.timeout)
        const timeout = Math.min(attemptTimeout, remaining)
        const { modelId, target } = r.target.model
        return emit({ _tag: "AttemptStarted", at: r.t0, requestId, modelId, target, attempt: attempts.length + (hedge ? 2 : 1), hedge }).pipe(
          Effect.andThen(run(r.target, {
            timeout: Duration.millis(timeout),
            deadlineScope: attemptTimeout < remaining ? "attempt" : "request",
            serviceTier
          })),
          Effect.tapError((e) => Effect.annotateCurrentSpan("error.type", e.reason._tag)),
          Effect.withSpan(`chat ${modelId}`, {
            kind: "client",
            attributes: {
              "gen_ai.operation.name": "chat",
              "gen_ai.system": SYSTEM,
              "gen_ai.provider.name": SYSTEM,
              "gen_ai.request.model": modelId,
              "bedrock_mux.target": target,
              "bedrock_mux.request_id": requestId,
              "bedrock_mux.hedge": hedge,
              ...(serviceTier !== undefined ? { "bedrock_mux.service_tier": serviceTier } : {})
            }
          // a stack trace per attempt costs more than the rest of the span; the attributes say where it is from
          }, { captureStackTrace: false }),
          Effect.onInterrupt(() =>
            Effect.andThen(
              recordBreaker(r.target, "ignored", r.probe, r.t0),
              Effect.flatMap(Clock.currentTimeMillis, (now) =>
                recordAttempt({
                  modelId,
                  target,
                  outcome: "interrupted",
                  ...(r.lostHedge === true ? { decision: "hedge-lost" as const } : {}),
                  durationMs: now - r.t0
                }))
            )
          ),
          Effect.exit
        )
      }

      /** Records a success; a deferred one (a stream at its commit point) is settled later by `complete`. */
      const succeeded = (r: Running, value: unknown, t1: number) =>
        Effect.gen(function*() {
          const at = attempts.length
          const record: AttemptRecord = { modelId: r.target.model.modelId, target: r.target.model.target, outcome: "success", durationMs: t1 - r.t0 }
          // a deferred success is announced when it ends, with its final record
          attempts.push(record)
          let done = false
          const finish = (end: End) =>
            Effect.gen(function*() {
              if (done) return
              done = true
              const now = yield* Clock.currentTimeMillis
              const stats = r.target.stats
              const { modelId } = r.target.model
              if (end._tag === "Success") {
                yield* recordAttempt({ ...record, durationMs: now - r.t0 }, at)
                stats.successes += 1
                stats.lastSuccessAt = now
                stats.latency.record(now - r.t0)
                stats.window.record(now, true)
                if (r.probe || !r.wasClosed) yield* recordBreaker(r.target, "success", r.probe, r.t0)
                muxStats.latency.record(now - started)
                if (r.reservation !== undefined && end.usage !== undefined) {
                  yield* store.settle(r.target.quotaKey!, r.reservation, end.usage.quota).pipe(Effect.ignore)
                }
                yield* tenantHold.settle(end.usage?.quota)
                yield* ended("success", { modelId, usage: end.usage, timeToFirstTokenMs: end.timeToFirstTokenMs })
              } else if (end._tag === "Interrupted") {
                // the caller stopped reading: not the model's fault; the reservations stay (the model worked)
                yield* recordAttempt({ ...record, outcome: "interrupted", durationMs: now - r.t0 }, at)
                yield* recordBreaker(r.target, "ignored", r.probe, r.t0)
                yield* ended("interrupted", { modelId })
              } else {
                const error = end.error
                const decision = policy.classification(error)
                yield* recordAttempt({
                  ...record,
                  outcome: "failure",
                  reason: error.reason._tag,
                  decision: end.restart ? "failover" : "stop",
                  durationMs: now - r.t0
                }, at)
                if (error.reason._tag === "Throttled") yield* coolDown(r.target, error.reason, now)
                yield* recordBreaker(r.target, decision.breaker ? "failure" : "ignored", r.probe, r.t0)
                stats.lastFailureAt = now
                stats.interrupted += 1
                stats.failures += 1
                if (decision.breaker) stats.window.record(now, false)
                muxStats.interrupted += 1
                if (end.restart) {
                  muxStats.restarts += 1
                  yield* emit({ _tag: "Failover", at: now, requestId, modelId, target: r.target.model.target, reason: error.reason._tag })
                } else {
                  yield* tenantHold.release
                  yield* ended("failure", { modelId, error: "StreamInterrupted" })
                }
              }
            })
          if (!deferred) yield* finish({ _tag: "Success", usage: usageOf?.(value as never) })
          return finish
        })

      /**
       * Classifies and records a failed attempt and decides what comes next. With a hedge still in flight,
       * anything but a terminal decision becomes a failover to it.
       */
      const failed = (r: Running, error: BedrockError.BedrockError, t1: number, serviceTier: "priority" | "reserved" | undefined, hedgeInFlight: boolean) =>
        Effect.gen(function*() {
          const chosen = r.target
          last = error
          // release only what Bedrock did not count: an error response before any work. A timeout, a cut or an
          // in-stream failure may have been counted, so its reservation stays (as the estimate) until the minute passes.
          if (r.reservation !== undefined && !countedByBedrock(error)) yield* store.release(chosen.quotaKey!, r.reservation).pipe(Effect.ignore)
          if (error.reason._tag === "Throttled") yield* coolDown(chosen, error.reason, t1)
          const decision = policy.classification(error)
          // a context-window error fails over only to a larger window; with none in the pool the request is at fault
          const failover = decision.failover && (!decision.largerContextOnly || pool.some((i) =>
            (targets[i]!.model.contextWindow ?? 0) > Math.max(minContext, chosen.model.contextWindow ?? 0)
          ))
          yield* recordBreaker(chosen, decision.breaker ? "failure" : "ignored", r.probe, r.t0)
          const stats = chosen.stats
          stats.lastFailureAt = t1
          if (error.reason._tag === "Throttled") stats.throttles += 1
          else if (!failover) stats.failFast += 1
          else stats.failures += 1
          if (decision.breaker) stats.window.record(t1, false)

          const tries = sameTries.get(chosen.index) ?? 0
          const terminal = error.reason._tag === "DeadlineExceeded" && error.reason.scope === "request"
          const escalate = error.reason._tag === "Throttled" && serviceTier === undefined &&
            chosen.model.escalate !== undefined && !escalated.has(chosen.index)
          let next: NonNullable<AttemptRecord["decision"]>
          if (terminal) next = "stop"
          else if (!failover && !escalate && tries >= decision.retrySame) next = "fail-fast"
          else if (hedgeInFlight) next = "failover"
          else if (escalate) next = "escalate"
          else if (tries < decision.retrySame) next = "retry-same"
          else next = "failover"
          yield* recordAttempt({
            modelId: chosen.model.modelId,
            target: chosen.model.target,
            outcome: "failure",
            reason: error.reason._tag,
            decision: next,
            durationMs: t1 - r.t0
          })
          return { next, decision }
        })

      while (true) {
        const now = yield* Clock.currentTimeMillis
        const remaining = started + deadlineMs - now
        if (remaining <= 0) {
          return yield* fail(new DeadlineExceeded({ deadlineMs }), `request deadline of ${deadlineMs} ms exceeded`, last)
        }
        if (attempts.length >= policy.attempts) {
          return yield* fail(
            new AttemptsExhausted({ attempts: attempts.length }),
            `all ${attempts.length} attempts failed`,
            last
          )
        }

        // 1. select, take a permit, admit
        const snap = yield* readStates
        let current = yield* select(now, snap)
        forced = undefined
        bypassCooldown = false

        // 2. nothing eligible
        if (current === undefined) {
          const models = availability(pool, excluded, snap, quotaUntil, now, minContext)
          const earliest = models.reduce<number | undefined>(
            (m, a) =>
              a.recoversAt !== undefined && (a.excluded === "breaker" || a.excluded === "cooldown" || a.excluded === "quota") &&
                (m === undefined || a.recoversAt < m)
                ? a.recoversAt
                : m,
            undefined
          )
          if (waitForRecovery && earliest !== undefined && earliest - now < remaining) {
            // earliest === now: a half-open breaker with every probe slot taken frees one when a probe
            // ends, at a time nobody knows; poll for it instead of spinning
            yield* Effect.sleep(Math.max(earliest - now, Math.min(HALF_OPEN_POLL_MS, remaining)))
            // a model out for quota may have room again: look again
            for (const [i, why] of excluded) if (why === "quota" && (quotaUntil.get(i) ?? 0) <= now + remaining) excluded.delete(i)
            continue
          }
          return yield* fail(
            new NoModelsAvailable({ models, ...(earliest !== undefined ? { earliestRecovery: earliest } : {}) }),
            last === undefined ? "no model can take the request" : `no model left to fail over to after: ${last.message}`,
            last
          )
        }

        // 3. the attempt under its timeout, bounded by the request deadline; hedged when asked
        let serviceTier = tier
        tier = undefined
        const hedgeMs = hedgeable ? routeOptions.hedge!.afterMs(current.target) : undefined
        let exit: Exit.Exit<unknown, BedrockError.BedrockError>
        if (hedgeMs === undefined || hedgeMs >= remaining) {
          exit = yield* attempt(current, remaining, serviceTier)
        } else {
          const first = current
          const firstFiber = yield* Effect.forkChild(attempt(first, remaining, serviceTier))
          const early = yield* Effect.timeoutOption(Fiber.join(firstFiber), Duration.millis(hedgeMs))
          const tHedge = yield* Clock.currentTimeMillis
          const [hedgeOk, hedgeBad] = muxStats.hedgeWindow.totals(tHedge)
          // a hedge is an attempt: it needs room in the budget (the one in flight is not recorded yet)
          const second = Option.isSome(early) || hedgeBad >= routeOptions.hedge!.budget * hedgeOk ||
              attempts.length + 2 > policy.attempts
            ? undefined
            : yield* select(tHedge, yield* readStates, first.target.index)
          if (Option.isSome(early)) exit = early.value
          else if (second === undefined) exit = yield* Fiber.join(firstFiber)
          else {
            // one hedge per request
            hedgeable = false
            muxStats.hedges += 1
            muxStats.hedgeWindow.record(tHedge, false)
            yield* emit({ _tag: "Hedged", at: tHedge, requestId, primary: first.target.model.target, target: second.target.model.target, afterMs: hedgeMs })
            const secondFiber = yield* Effect.forkChild(attempt(second, started + deadlineMs - tHedge, undefined, true))
            const [winner, winnerExit, other, otherFiber] = yield* Effect.raceFirst(
              Effect.map(Fiber.join(firstFiber), (e) => [first, e, second, secondFiber] as const),
              Effect.map(Fiber.join(secondFiber), (e) => [second, e, first, firstFiber] as const)
            )
            const t1 = yield* Clock.currentTimeMillis
            if (Exit.isSuccess(winnerExit) || exitError(winnerExit) === undefined) {
              // the loser is aborted (its record says hedge-lost); what it used stays reserved (Bedrock counted it)
              other.lostHedge = true
              yield* Fiber.interrupt(otherFiber)
              if (winner === second) muxStats.hedgesWon += 1
              current = winner
              exit = winnerExit
              if (winner === second) serviceTier = undefined
            } else {
              const error = exitError(winnerExit)!
              const { next } = yield* failed(winner, error, t1, winner === first ? serviceTier : undefined, true)
              if (next === "stop" || next === "fail-fast") {
                yield* Fiber.interrupt(otherFiber)
                return yield* next === "stop"
                  ? fail(new DeadlineExceeded({ deadlineMs }), `request deadline of ${deadlineMs} ms exceeded`, error)
                  : fail(new Failed({ error }), error.message, error)
              }
              yield* failOver(winner.target, error, t1)
              current = other
              exit = yield* Fiber.join(otherFiber)
              if (other === second) serviceTier = undefined
            }
          }
        }
        const t1 = yield* Clock.currentTimeMillis
        const chosen = current.target

        // 4. classify (pure) and 5. record
        if (Exit.isSuccess(exit)) {
          const complete = yield* succeeded(current, exit.value, t1)
          return {
            value: exit.value as never,
            target: chosen,
            attempts,
            complete,
            // the models this route failed over from are out of the continuation too, with the committed ones
            resume: (tried: ReadonlyArray<number>) => ({
              requestId,
              started,
              attempts,
              tried: [...new Set([...tried, ...[...excluded].flatMap(([i, why]) => (why === "tried" ? [i] : []))])],
              tenant: tenantHold
            })
          }
        }
        const error = exitError(exit)
        if (error === undefined) {
          // a defect: give a probe slot back, or a half-open breaker would never admit again
          yield* recordBreaker(chosen, "ignored", current.probe, current.t0)
          if (exit._tag === "Failure" && exit.cause.reasons.some((r) => r._tag === "Die")) {
            // the request failed: its quota reservations go back, as for any failure
            if (current.reservation !== undefined) yield* store.release(chosen.quotaKey!, current.reservation).pipe(Effect.ignore)
            yield* tenantHold.release
          }
          return yield* (exit as Exit.Exit<never>)
        }
        const { next, decision } = yield* failed(current, error, t1, serviceTier, false)
        switch (next) {
          case "stop":
            return yield* fail(new DeadlineExceeded({ deadlineMs }), `request deadline of ${deadlineMs} ms exceeded`, error)
          case "fail-fast":
            return yield* fail(new Failed({ error }), error.message, error)
          case "retry-same":
            sameTries.set(chosen.index, (sameTries.get(chosen.index) ?? 0) + 1)
            forced = chosen
            continue
          case "escalate":
            escalated.add(chosen.index)
            tier = chosen.model.escalate
            forced = chosen
            bypassCooldown = true
            continue
          default: {
            yield* failOver(chosen, error, t1)
            if (decision.largerContextOnly) minContext = Math.max(minContext, chosen.model.contextWindow ?? 0)
            if (policy.backoff === undefined || decision.largerContextOnly) continue
            // the single-model backoff: only when no other model could take the request
            const nowSnap = yield* readStates
            const nowStates = nowSnap.breakers
            const others = pool.some((i) =>
              !excluded.has(i) && Breaker.admits(settings, nowStates[i]!, t1) && !cooling(nowSnap.cooldowns[i], t1) &&
              targets[i]!.model.weight * Breaker.weightFactor(settings, nowStates[i]!, t1) > 0
            )
            if (others || !Breaker.admits(settings, nowStates[chosen.index]!, t1)) continue
            if (backoffStep === undefined) {
              backoffStep = yield* Schedule.toStep(policy.backoff)
            }
            const step = yield* Effect.result(backoffStep(t1, error))
            if (step._tag === "Failure") continue // schedule done
            const delay = Duration.toMillis(step.success[1])
            if (t1 + delay >= started + deadlineMs) continue
            yield* Effect.sleep(delay)
            excluded.delete(chosen.index)
            forced = chosen
            // the caller asked for this retry: it goes whatever the throttle cooldown says
            bypassCooldown = true
            continue
          }
        }
      }
    }).pipe(
      Effect.catchTag("StoreError", (e) =>
        Effect.fail(
          new MuxError({ reason: new StoreUnavailable({ message: e.message }), message: `store unavailable: ${e.message}`, attempts })
        )),
      Effect.tapError((e) => ended("failure", { error: e.reason._tag })),
      // the caller gave up (a timeout of its own, a stream it stopped reading before the answer began)
      Effect.onInterrupt(() => ended("interrupted", {}))
    )
    })

  const recordRequest = (ok: boolean) => {
    muxStats.requests += 1
    if (ok) muxStats.successes += 1
    else muxStats.failures += 1
  }

  const availability = (
    pool: ReadonlyArray<number>,
    excluded: ReadonlyMap<number, ModelAvailability["excluded"]>,
    snap: Snapshot,
    quotaUntil: ReadonlyMap<number, number>,
    now: number,
    minContext: number
  ): Array<ModelAvailability> =>
    targets.map((t) => {
      const state = snap.breakers[t.index]!
      const cooldown = snap.cooldowns[t.index]
      const why: ModelAvailability["excluded"] = !pool.includes(t.index)
        ? "route"
        : excluded.get(t.index) ??
          (!Breaker.admits(settings, state, now)
            ? "breaker"
            : cooling(cooldown, now)
            ? "cooldown"
            : minContext >= 0 && (t.model.contextWindow ?? 0) <= minContext
            ? "context-window"
            : t.model.weight <= 0
            ? "weight"
            : "not-excluded")
      const recoversAt = why === "quota"
        ? quotaUntil.get(t.index)
        : why === "cooldown"
        ? cooldown!.until
        : Breaker.recoversAt(settings, state, now)
      return {
        modelId: t.model.modelId,
        target: t.model.target,
        breaker: Breaker.stateName(state, now),
        excluded: why,
        ...(recoversAt !== undefined ? { recoversAt } : {})
      }
    })

  return { targets, settings, stats: muxStats, route, snapshot, policy }
}

/** Did Bedrock (probably) count this failed call against the model's quota? */
const countedByBedrock = (error: BedrockError.BedrockError): boolean => {
  switch (error.reason._tag) {
    case "DeadlineExceeded":
    case "Incomplete":
    case "ModelStreamError":
    case "ModelTimeout":
      return true
    case "Network":
      return error.reason.phase === "after-response"
    default:
      return false
  }
}

/** How often a request waiting for recovery re-checks a half-open breaker whose probe slots are all taken. */
const HALF_OPEN_POLL_MS = 100

type BackoffStep = (now: number, input: BedrockError.BedrockError) => Pull.Pull<[unknown, Duration.Duration], never, unknown>

const exitError = (exit: Exit.Exit<unknown, BedrockError.BedrockError>): BedrockError.BedrockError | undefined => {
  if (exit._tag !== "Failure") return undefined
  for (const r of exit.cause.reasons) if (r._tag === "Fail") return r.error
  return undefined
}
