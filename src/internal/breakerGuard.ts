/**
 * The breaker guard: `internal/breaker.ts`'s arithmetic on the mux's store.
 *
 * Hot path: a closed breaker admits without a store round trip (the view of
 * this selection says closed), and a success of an attempt admitted while
 * closed is not written either; only counted failures, probes and
 * transitions touch the store.
 */
import { Duration, Effect } from "effect"
import type { Service as Store, StoreError } from "../MuxStore.ts"
import type { Target } from "../Target.ts"
import * as Breaker from "./breaker.ts"
import * as Guard from "./guard.ts"
import { keyCache, keyOf as storeKey } from "./keys.ts"

export const settingsOf = (s: Guard.BreakerSettings): Breaker.BreakerSettings => ({
  failures: s.failures,
  windowMs: Duration.toMillis(s.window),
  probeIntervalMs: Duration.toMillis(s.probeInterval),
  probeIntervalMaxMs: Duration.toMillis(s.probeIntervalMax),
  halfOpen: s.halfOpen,
  rampUpMs: Duration.toMillis(s.rampUp)
})

const rejected = (view: Guard.View, now: number) => ({
  guard: "breaker",
  why: "breaker",
  retryAfterMs: view.recoversAt === undefined ? undefined : Math.max(0, view.recoversAt - now)
})

export const make = (settings: Guard.BreakerSettings, env: Guard.Env) =>
  Effect.sync(() => {
    const s = settingsOf(settings)
    const states = env.store.states("breaker", Breaker.BreakerState)
    const keyOf = keyCache(env.name)
    const failOpen = env.onStoreError === "allow"
    const storeFailed = <A>(fallback: A) => (e: StoreError): Effect.Effect<A, StoreError> =>
      failOpen ? Effect.succeed(fallback) : Effect.fail(e)

    const viewOf = (state: Breaker.BreakerState | undefined, now: number): Guard.View => {
      if (state === undefined) return CLOSED
      const c = Breaker.current(state, now)
      const admits = Breaker.admits(s, c, now)
      const weight = Breaker.weightFactor(s, c, now)
      if (c._tag === "Closed" && weight === 1) return CLOSED
      const recoversAt = Breaker.recoversAt(s, c, now)
      return { admits, weight, why: "breaker", free: c._tag === "Closed", ...(recoversAt !== undefined ? { recoversAt } : {}) }
    }

    /** `viewOf`, with the failures the breaker counts (for health) */
    const healthOf = (state: Breaker.BreakerState | undefined, now: number): Guard.View => {
      const view = viewOf(state, now)
      const failures = state === undefined ? 0 : Breaker.failureCount(s, state, now)
      return failures === 0 ? view : { ...view, failures }
    }

    /** Announces a change of the public state name (an Open past its interval was open until this change). */
    const changed = (target: Target, now: number, from: Breaker.BreakerState, to: Breaker.BreakerState) => {
      const a = from._tag === "Open" ? "open" : Breaker.stateName(from, now)
      const b = Breaker.stateName(to, now)
      return a === b
        ? Effect.void
        : env.emit({ _tag: "BreakerChanged", at: now, modelId: target.model.modelId, target: target.model.target, from: a, to: b })
    }

    const record = (target: Target, outcome: Breaker.BreakerOutcome, probe: boolean, admittedAt: number, now: number) =>
      states.modify(keyOf(target), (st) => {
        const from = st ?? Breaker.initial
        const to = Breaker.record(s, from, now, outcome, probe, admittedAt)
        return [[from, to] as const, to] as const
      }).pipe(
        Effect.flatMap(([from, to]) => changed(target, now, from, to)),
        Effect.ignore
      )

    const permit = (target: Target, probe: boolean, wasClosed: boolean, admittedAt: number): Guard.Permit => ({
      // a success of an attempt admitted while closed is not written
      free: !probe && wasClosed,
      release: (outcome) => {
        switch (outcome._tag) {
          case "Success":
            return probe || !wasClosed ? record(target, "success", probe, admittedAt, outcome.at) : Effect.void
          case "Failure":
            return outcome.decision.breaker
              ? record(target, outcome.slow ? "slow-failure" : "fast-failure", probe, admittedAt, outcome.at)
              : probe
              ? record(target, "ignored", probe, admittedAt, outcome.at)
              : Effect.void
          default:
            // an interruption or an attempt never sent says nothing about the model; a probe gives its slot back
            return probe ? record(target, "ignored", probe, admittedAt, outcome.at) : Effect.void
        }
      }
    })

    const free = new WeakMap<Target, Guard.Permit>()
    const freePermit = (target: Target, now: number): Guard.Permit => {
      let p = free.get(target)
      if (p === undefined) {
        p = permit(target, false, true, now)
        free.set(target, p)
      }
      return p
    }

    /**
     * Quiet: every breaker of the targets closed and past its ramp-up (its failures, if any, change no view). Read
     * from the states once per store version and targets, then by the clock alone: from when the last ramp-up
     * ends (never, while one is open or half-open).
     */
    let quietVersion = -1
    let quietTargets: ReadonlyArray<Target> | undefined
    let quietFrom = Infinity
    const quiet = (targets: ReadonlyArray<Target>, now: number): boolean => {
      if (states.emptyUnsafe?.() === true) return true
      const version = states.versionUnsafe!()
      if (version !== quietVersion || targets !== quietTargets) {
        quietVersion = version
        quietTargets = targets
        quietFrom = -Infinity
        for (const st of states.getManyUnsafe!(targets.map(keyOf))) {
          if (st === undefined) continue
          if (st._tag !== "Closed") {
            quietFrom = Infinity
            break
          }
          if (st.closedAt !== undefined && s.rampUpMs > 0) quietFrom = Math.max(quietFrom, st.closedAt + s.rampUpMs)
        }
      }
      return now >= quietFrom
    }

    const live: Guard.Live = {
      view: (targets, _request, now) =>
        states.getMany(targets.map(keyOf)).pipe(
          Effect.map((all) => all.map((st) => viewOf(st, now))),
          Effect.catch(storeFailed(targets.map(() => CLOSED)))
        ),
      admit: (target, _request, view, now) => {
        if (view.free === true) return Effect.succeed(permit(target, false, true, now))
        return states.modify(keyOf(target), (st) => {
          const from = st ?? Breaker.initial
          const [p, to] = Breaker.acquire(s, from, now)
          return [[p, from, to] as const, to] as const
        }).pipe(
          Effect.tap(([, from, to]) => changed(target, now, from, to)),
          Effect.flatMap(([p, from]) =>
            p === "refused"
              ? Effect.fail(new Guard.Rejected(rejected(viewOf(from, now), now)))
              : Effect.succeed(permit(target, p === "probe", Breaker.current(from, now)._tag === "Closed", now))
          ),
          Effect.catchTag("StoreError", storeFailed(permit(target, false, true, now)))
        )
      },
      viewUnsafe: states.getManyUnsafe === undefined
        ? undefined
        : (targets, _request, now) =>
          states.emptyUnsafe?.() === true ? Guard.openViews(targets.length) : states.getManyUnsafe!(targets.map(keyOf)).map((st) => viewOf(st, now)),
      quietUnsafe: states.getManyUnsafe === undefined || states.versionUnsafe === undefined ? undefined : quiet,
      // a closed breaker's permit records nothing of when it was taken (only probes do): one per target serves
      admitUnsafe: (target, _request, view, now) => (view.free === true ? freePermit(target, now) : undefined),
      health: (targets, now) =>
        states.getMany(targets.map(keyOf)).pipe(
          Effect.map((all) => all.map((st) => healthOf(st, now))),
          Effect.orElseSucceed(() => targets.map(() => CLOSED))
        )
    }
    return live
  })

const CLOSED: Guard.View = { admits: true, weight: 1, free: true }

/**
 * Forgets the breaker state of `target` (a pool key) in `store`, under the
 * mux's `namespace`: the model starts closed, with no failures counted.
 */
export const forget = (store: Store, namespace: string, target: string): Effect.Effect<void, StoreError> =>
  store.states("breaker", Breaker.BreakerState).modify(storeKey(namespace, target), () => [undefined, undefined] as const)
