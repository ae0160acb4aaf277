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
import { Clock, Duration, Effect, Exit, Pull, Random, Schedule } from "effect"
import * as BedrockError from "../BedrockError.ts"
import type { Service as Runtime } from "../BedrockRuntime.ts"
import type * as MuxConfig from "../MuxConfig.ts"
import {
  type AttemptRecord,
  AttemptsExhausted,
  DeadlineExceeded,
  Failed,
  InvalidRequest,
  type ModelAvailability,
  MuxError,
  NoModelsAvailable,
  StoreUnavailable
} from "../MuxError.ts"
import type { Service as Store, StoreError } from "../MuxStore.ts"
import type * as Policy from "../Policy.ts"
import * as Breaker from "./breaker.ts"
import type { Candidate } from "./selection.ts"
import { ModelStats, MuxStats } from "./stats.ts"

/** A pool entry with everything an attempt needs. */
export interface Target {
  readonly index: number
  readonly model: MuxConfig.Model
  /** the breaker's key in the store */
  readonly key: string
  readonly runtime: Runtime
  readonly stats: ModelStats
}

/** Per-request options the engine understands. */
export interface RouteOptions {
  readonly label?: string | undefined
  readonly deadline?: Duration.Input | undefined
  readonly waitForRecovery?: boolean | undefined
}

/** A success: the value and how it was reached. */
export interface Routed<A> {
  readonly value: A
  readonly target: Target
  readonly attempts: ReadonlyArray<AttemptRecord>
}

export interface Engine {
  readonly targets: ReadonlyArray<Target>
  readonly settings: Breaker.BreakerSettings
  readonly stats: MuxStats
  readonly route: <A>(
    options: RouteOptions,
    run: (target: Target, timeout: Duration.Duration, deadlineScope: "attempt" | "request") => Effect.Effect<A, BedrockError.BedrockError>
  ) => Effect.Effect<Routed<A>, MuxError>
  /** every target's breaker state now (store failures read as closed) */
  readonly states: Effect.Effect<ReadonlyArray<Breaker.BreakerState>>
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
}): Engine => {
  const { config, store } = options
  const policy = config.policy
  const settings = settingsOf(policy.breaker)
  const windowSeconds = Math.max(1, Math.ceil(settings.windowMs / 1000))
  const targets: ReadonlyArray<Target> = config.models.map((model, index) => ({
    index,
    model,
    key: `${config.name}/breaker/${model.target}`,
    runtime: options.runtimes(model),
    stats: new ModelStats(windowSeconds)
  }))
  const keys = targets.map((t) => t.key)
  const all = targets.map((t) => t.index)
  const muxStats = new MuxStats()
  const failOpen = config.onStoreError === "allow"
  const defaultDeadlineMs = Duration.toMillis(policy.deadline)

  /** A store failure: fail open (treat as closed) or fail the request. */
  const storeFailed = <A>(fallback: A) => (e: StoreError): Effect.Effect<A, StoreError> =>
    failOpen ? Effect.succeed(fallback) : Effect.fail(e)

  const readStates = store.getMany(keys).pipe(
    Effect.map((states) => states.map(asState)),
    Effect.catch(storeFailed(targets.map(() => Breaker.initial)))
  )

  const states: Effect.Effect<ReadonlyArray<Breaker.BreakerState>> = Effect.orElseSucceed(
    Effect.map(store.getMany(keys), (states) => states.map(asState)),
    () => targets.map(() => Breaker.initial)
  )

  const acquire = (target: Target, now: number) =>
    store.modify(target.key, (s) => Breaker.acquire(settings, asState(s), now)).pipe(
      Effect.catch(storeFailed<Breaker.Permit>("granted"))
    )

  const recordBreaker = (target: Target, outcome: Breaker.BreakerOutcome, probe: boolean, admittedAt: number) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      store.modify(target.key, (s) => {
        const state = asState(s)
        return [undefined, Breaker.record(settings, state, now, outcome, probe, admittedAt)] as const
      })).pipe(Effect.ignore)

  const route: Engine["route"] = (routeOptions, run) =>
    Effect.gen(function*() {
      const started = yield* Clock.currentTimeMillis
      const deadlineMs = routeOptions.deadline === undefined
        ? defaultDeadlineMs
        : Duration.toMillis(Duration.fromInputUnsafe(routeOptions.deadline))
      const attempts: Array<AttemptRecord> = []
      const fail = (reason: MuxError["reason"], message: string, last?: BedrockError.BedrockError) =>
        Effect.fail(
          new MuxError({ reason, message, attempts, ...(last !== undefined ? { last } : {}) })
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
      // why each model is out of this request, if it is
      const excluded = new Map<number, ModelAvailability["excluded"]>()
      const sameTries = new Map<number, number>()
      let forced: Target | undefined
      let minContext = -1
      let last: BedrockError.BedrockError | undefined
      let backoffStep: BackoffStep | undefined

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

        // 1. select (pure) and take a permit (atomic)
        const states = yield* readStates
        let target: Target | undefined
        let permit: Breaker.Permit = "refused"
        const skip = new Set<number>()
        while (target === undefined) {
          let choice: Target | undefined
          if (forced !== undefined && !skip.has(forced.index)) {
            if (!Breaker.admits(settings, states[forced.index]!, now)) {
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
              const state = states[i]!
              if (!Breaker.admits(settings, state, now)) continue
              const weight = t.model.weight * Breaker.weightFactor(settings, state, now)
              if (weight > 0) candidates.push({ index: i, tier: t.model.tier, weight })
            }
            const picked = candidates.length === 0 ? undefined : policy.selection.pick(candidates, yield* Random.next)
            choice = picked === undefined ? undefined : targets[picked.index]
          }
          if (choice === undefined) break
          permit = Breaker.current(states[choice.index]!, now)._tag === "Closed" ? "granted" : yield* acquire(choice, now)
          if (permit === "refused") skip.add(choice.index)
          else target = choice
        }
        forced = undefined

        // 2. nothing eligible
        if (target === undefined) {
          const models = availability(pool, excluded, states, now, minContext)
          const earliest = models.reduce<number | undefined>(
            (m, a) => a.recoversAt !== undefined && a.excluded === "breaker" && (m === undefined || a.recoversAt < m) ? a.recoversAt : m,
            undefined
          )
          if (waitForRecovery && earliest !== undefined && earliest - now < remaining) {
            // earliest === now: a half-open breaker with every probe slot taken frees one when a probe
            // ends, at a time nobody knows; poll for it instead of spinning
            yield* Effect.sleep(Math.max(earliest - now, Math.min(HALF_OPEN_POLL_MS, remaining)))
            continue
          }
          return yield* fail(
            new NoModelsAvailable({ models, ...(earliest !== undefined ? { earliestRecovery: earliest } : {}) }),
            last === undefined ? "no model can take the request" : `no model left to fail over to after: ${last.message}`,
            last
          )
        }

        // 3. attempt under its timeout, bounded by the request deadline
        const attemptTimeout = target.model.timeout !== undefined
          ? Duration.toMillis(target.model.timeout)
          : Duration.toMillis(policy.timeout)
        const scope = attemptTimeout < remaining ? "attempt" : "request"
        const timeout = Math.min(attemptTimeout, remaining)
        const probe = permit === "probe"
        const t0 = now
        const chosen = target
        const exit = yield* run(chosen, Duration.millis(timeout), scope).pipe(
          Effect.onInterrupt(() => recordBreaker(chosen, "ignored", probe, t0)),
          Effect.exit
        )
        const t1 = yield* Clock.currentTimeMillis
        const durationMs = t1 - t0

        // 4. classify (pure) and 5. record
        if (Exit.isSuccess(exit)) {
          attempts.push({ modelId: chosen.model.modelId, target: chosen.model.target, outcome: "success", durationMs })
          chosen.stats.successes += 1
          chosen.stats.lastSuccessAt = t1
          chosen.stats.latency.record(durationMs)
          chosen.stats.window.record(t1, true)
          if (probe || states[chosen.index]!._tag !== "Closed") yield* recordBreaker(chosen, "success", probe, t0)
          muxStats.latency.record(t1 - started)
          return { value: exit.value, target: chosen, attempts }
        }
        const error = exitError(exit)
        if (error === undefined) {
          // a defect: give a probe slot back, or a half-open breaker would never admit again
          yield* recordBreaker(chosen, "ignored", probe, t0)
          return yield* (exit as Exit.Exit<never>)
        }
        last = error
        const decision = policy.classification(error)
        // a context-window error fails over only to a larger window; with none in the pool the request is at fault
        const failover = decision.failover && (!decision.largerContextOnly || pool.some((i) =>
          (targets[i]!.model.contextWindow ?? 0) > Math.max(minContext, chosen.model.contextWindow ?? 0)
        ))
        yield* recordBreaker(chosen, decision.breaker ? "failure" : "ignored", probe, t0)
        const stats = chosen.stats
        stats.lastFailureAt = t1
        if (error.reason._tag === "Throttled") stats.throttles += 1
        else if (!failover) stats.failFast += 1
        else stats.failures += 1
        if (decision.breaker) stats.window.record(t1, false)

        const tries = sameTries.get(chosen.index) ?? 0
        const terminal = error.reason._tag === "DeadlineExceeded" && error.reason.scope === "request"
        let next: AttemptRecord["decision"]
        if (terminal) next = "stop"
        else if (tries < decision.retrySame) next = "retry-same"
        else if (failover) next = "failover"
        else next = "fail-fast"
        attempts.push({
          modelId: chosen.model.modelId,
          target: chosen.model.target,
          outcome: "failure",
          reason: error.reason._tag,
          decision: next,
          durationMs
        })
        switch (next) {
          case "stop":
            return yield* fail(new DeadlineExceeded({ deadlineMs }), `request deadline of ${deadlineMs} ms exceeded`, error)
          case "fail-fast":
            return yield* fail(new Failed({ error }), error.message, error)
          case "retry-same":
            sameTries.set(chosen.index, tries + 1)
            forced = chosen
            continue
          case "failover": {
            muxStats.failovers += 1
            excluded.set(chosen.index, "tried")
            if (decision.largerContextOnly) minContext = Math.max(minContext, chosen.model.contextWindow ?? 0)
            if (policy.backoff === undefined || decision.largerContextOnly) continue
            // the single-model backoff: only when no other model could take the request
            const nowStates = yield* readStates
            const others = pool.some((i) =>
              !excluded.has(i) && Breaker.admits(settings, nowStates[i]!, t1) &&
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
            continue
          }
        }
      }
    }).pipe(
      Effect.catchTag("StoreError", (e) =>
        Effect.fail(
          new MuxError({ reason: new StoreUnavailable({ message: e.message }), message: `store unavailable: ${e.message}`, attempts: [] })
        )),
      Effect.tap(() => Effect.sync(() => recordRequest(true))),
      Effect.tapError(() => Effect.sync(() => recordRequest(false)))
    )

  const recordRequest = (ok: boolean) => {
    muxStats.requests += 1
    if (ok) muxStats.successes += 1
    else muxStats.failures += 1
  }

  const availability = (
    pool: ReadonlyArray<number>,
    excluded: ReadonlyMap<number, ModelAvailability["excluded"]>,
    states: ReadonlyArray<Breaker.BreakerState>,
    now: number,
    minContext: number
  ): Array<ModelAvailability> =>
    targets.map((t) => {
      const state = states[t.index]!
      const recoversAt = Breaker.recoversAt(settings, state, now)
      const why: ModelAvailability["excluded"] = !pool.includes(t.index)
        ? "route"
        : excluded.get(t.index) ??
          (!Breaker.admits(settings, state, now)
            ? "breaker"
            : minContext >= 0 && (t.model.contextWindow ?? 0) <= minContext
            ? "context-window"
            : t.model.weight <= 0
            ? "weight"
            : "not-excluded")
      return {
        modelId: t.model.modelId,
        target: t.model.target,
        breaker: Breaker.stateName(state, now),
        excluded: why,
        ...(recoversAt !== undefined ? { recoversAt } : {})
      }
    })

  return { targets, settings, stats: muxStats, route, states }
}

/** How often a request waiting for recovery re-checks a half-open breaker whose probe slots are all taken. */
const HALF_OPEN_POLL_MS = 100

type BackoffStep = (now: number, input: BedrockError.BedrockError) => Pull.Pull<[unknown, Duration.Duration], never, unknown>

const exitError = (exit: Exit.Exit<unknown, BedrockError.BedrockError>): BedrockError.BedrockError | undefined => {
  if (exit._tag !== "Failure") return undefined
  for (const r of exit.cause.reasons) if (r._tag === "Fail") return r.error
  return undefined
}
