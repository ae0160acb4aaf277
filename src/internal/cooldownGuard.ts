/**
 * The throttle cooldown guard: `internal/cooldown.ts`'s arithmetic on the
 * mux's store, one state per target and service tier.
 *
 * A model with `escalate` has two buckets: its default tier and its
 * escalation tier. While the default tier cools, requests go straight to the
 * escalation tier (the permit says so), instead of the model being out for
 * everyone; an escalated throttle cools the escalation tier.
 *
 * Hot path: a target that is not cooling admits without a store round trip,
 * and its success is not written.
 */
import { Clock, Duration, Effect } from "effect"
import type * as BedrockError from "../BedrockError.ts"
import type { Service as Store, StoreError } from "../MuxStore.ts"
import type { Target } from "../Target.ts"
import * as Cooldown from "./cooldown.ts"
import * as Guard from "./guard.ts"
import { keyCache, keyOf } from "./keys.ts"

export const settingsOf = (s: Guard.CooldownSettings): Cooldown.CooldownSettings => ({
  baseMs: Duration.toMillis(s.base),
  maxMs: {
    requests: Duration.toMillis(s.requests),
    tokens: Duration.toMillis(s.tokens),
    daily: Duration.toMillis(s.daily),
    unknown: Duration.toMillis(s.unknown)
  }
})

type Tier = "default" | "priority" | "reserved"

/** Each tier's key suffix. */
const SUFFIX: Record<Tier, string> = { default: "", priority: "#priority", reserved: "#reserved" }

export const make = (settings: Guard.CooldownSettings, env: Guard.Env) =>
  Effect.map(Effect.scope, (scope) => {
    const s = settingsOf(settings)
    const states = env.store.states("cooldown", Cooldown.CooldownState)
    const keys: Record<Tier, (t: Target) => string> = {
      default: keyCache(env.name, SUFFIX.default),
      priority: keyCache(env.name, SUFFIX.priority),
      reserved: keyCache(env.name, SUFFIX.reserved)
    }
    const failOpen = env.onStoreError === "allow"
    const storeFailed = <A>(fallback: A) => (e: StoreError): Effect.Effect<A, StoreError> =>
      failOpen ? Effect.succeed(fallback) : Effect.fail(e)

    /** The tiers a view covers: the asked one, else the default (and the escalation tier). */
    const tiersOf = (t: Target, asked: "priority" | "reserved" | undefined): ReadonlyArray<Tier> =>
      asked !== undefined ? [asked] : t.model.escalate !== undefined ? ["default", t.model.escalate] : ["default"]

    const viewOf = (t: Target, tiers: ReadonlyArray<Tier>, found: ReadonlyArray<Cooldown.CooldownState | undefined>, now: number): Guard.View => {
      let recoversAt: number | undefined
      let kind: string | undefined
      for (let i = 0; i < tiers.length; i++) {
        const st = found[i]
        // a trial, or a long-over cooldown whose success clears its level, takes a store round trip (not free)
        const free = st === undefined
        if (free || Cooldown.admits(st, now)) {
          if (i === 0) return free ? Guard.open : TRIAL
          // the default tier cools, the escalation tier admits: send there; health still sees the default tier's hold
          return { admits: true, weight: 1, free, serviceTier: t.model.escalate!, why: "cooldown", kind, recoversAt }
        }
        const at = Cooldown.recoversAt(st, now)
        if (at !== undefined && (recoversAt === undefined || at < recoversAt)) recoversAt = at
        kind ??= st.kind
      }
      return { admits: false, weight: 0, why: "cooldown", kind, ...(recoversAt !== undefined ? { recoversAt } : {}) }
    }

    /** Announces the cooldown and, in the mux's scope, its end (unless a later throttle extended it). */
    const started = (target: Target, tier: Tier, until: number, kind: BedrockError.ThrottleKind, now: number) =>
      Effect.gen(function*() {
        const { modelId, target: key } = target.model
        if (kind === "daily") {
          yield* Effect.logWarning(`model ${key} hit its daily token quota; out of rotation for ${Math.round((until - now) / 60_000)} min`)
        }
        yield* env.emit({ _tag: "CooldownStarted", at: now, modelId, target: key, until, kind, ...(tier !== "default" ? { serviceTier: tier } : {}) })
        yield* Effect.sleep(until - now).pipe(
          Effect.andThen(states.getMany([keys[tier](target)])),
          Effect.flatMap(([current]) =>
            current !== undefined && current.until > until
              ? Effect.void
              : Effect.flatMap(Clock.currentTimeMillis, (at) => env.emit({ _tag: "CooldownEnded", at, modelId, target: key }))
          ),
          Effect.ignore,
          Effect.forkIn(scope)
        )
      })

    const record = (target: Target, tier: Tier, outcome: Cooldown.Outcome, permit: Cooldown.Permit, admittedAt: number, now: number) =>
      states.modify(keys[tier](target), (st) => {
        const [next, until] = Cooldown.record(s, st, now, outcome, permit, admittedAt)
        return [until === undefined ? undefined : ([until, next!.kind] as const), next] as const
      }).pipe(
        Effect.flatMap((start) => (start === undefined ? Effect.void : started(target, tier, start[0], start[1], now))),
        Effect.ignore
      )

    const permitOf = (target: Target, tier: Tier, p: Cooldown.Permit, admittedAt: number): Guard.Permit => ({
      ...(tier !== "default" ? { serviceTier: tier } : {}),
      // no cooldown was in force: its success changes nothing
      free: p === "free",
      release: (outcome) => {
        if (outcome._tag === "Failure" && outcome.error.reason._tag === "Throttled") {
          const r = outcome.error.reason
          const retryAfterMs = r.retryAfter === undefined ? undefined : Duration.toMillis(r.retryAfter)
          return record(target, tier, { _tag: "Throttled", kind: r.kind, retryAfterMs }, p, admittedAt, outcome.at)
        }
        // a request admitted with no cooldown in force that got through changes nothing
        if (p === "free") return Effect.void
        return record(target, tier, outcome._tag === "Success" ? { _tag: "Success" } : { _tag: "Other" }, p, admittedAt, outcome.at)
      }
    })

    /** The keys a view reads, and the views from what they hold. */
    const lookup = (targets: ReadonlyArray<Target>, request: Guard.RequestInfo) => {
      const tiers = targets.map((t) => tiersOf(t, request.serviceTier))
      const ks = targets.flatMap((t, i) => tiers[i]!.map((tier) => keys[tier](t)))
      const views = (found: ReadonlyArray<Cooldown.CooldownState | undefined>, now: number) => {
        let j = 0
        return targets.map((t, i) => {
          const ts = tiers[i]!
          const view = viewOf(t, ts, found.slice(j, j + ts.length), now)
          j += ts.length
          return view
        })
      }
      return { ks, views }
    }

    const freePermits: Record<Tier, WeakMap<Target, Guard.Permit>> = { default: new WeakMap(), priority: new WeakMap(), reserved: new WeakMap() }

    const live: Guard.Live = {
      view: (targets, request, now) => {
        const { ks, views } = lookup(targets, request)
        return states.getMany(ks).pipe(
          Effect.map((found) => views(found, now)),
          Effect.catch(storeFailed(targets.map(() => Guard.open)))
        )
      },
      viewUnsafe: states.getManyUnsafe === undefined
        ? undefined
        : (targets, request, now) => {
          // no model cooling anywhere: the common case, without a key per target
          if (states.emptyUnsafe?.() === true) return Guard.openViews(targets.length)
          const { ks, views } = lookup(targets, request)
          return views(states.getManyUnsafe!(ks), now)
        },
      // no cooldown anywhere (a success clears a model's): every view open, every permit the free one
      quietUnsafe: states.emptyUnsafe === undefined ? undefined : () => states.emptyUnsafe!(),
      // with no cooldown in force, a permit records nothing of when it was taken: one per target and tier serves
      admitUnsafe: (target, request, view, now) => {
        if (view.free !== true) return undefined
        const tier: Tier = request.serviceTier ?? view.serviceTier ?? "default"
        const cache = freePermits[tier]
        let p = cache.get(target)
        if (p === undefined) {
          p = permitOf(target, tier, "free", now)
          cache.set(target, p)
        }
        return p
      },
      admit: (target, request, view, now) => {
        const tier: Tier = request.serviceTier ?? view.serviceTier ?? "default"
        if (view.free === true) return Effect.succeed(permitOf(target, tier, "free", now))
        return states.modify(keys[tier](target), (st) => Cooldown.acquire(st, now)).pipe(
          Effect.flatMap((p) =>
            p === "refused"
              ? Effect.fail(new Guard.Rejected({ guard: "cooldown", why: "cooldown" }))
              : Effect.succeed(permitOf(target, tier, p, now))
          ),
          Effect.catchTag("StoreError", storeFailed(permitOf(target, tier, "free", now)))
        )
      }
    }
    return live
  })

/** A cooldown just ended: the next request is its trial (a store round trip takes the slot). */
const TRIAL: Guard.View = { admits: true, weight: 1 }

/**
 * Forgets the cooldowns of `target` (a pool key) in `store`, under the mux's
 * `namespace`, at every service tier: the model is not cooling.
 */
export const forget = (store: Store, namespace: string, target: string): Effect.Effect<void, StoreError> => {
  const states = store.states("cooldown", Cooldown.CooldownState)
  return Effect.forEach(Object.values(SUFFIX), (suffix) => states.modify(keyOf(namespace, target, suffix), () => [undefined, undefined] as const), { discard: true })
}
