/**
 * The model quota guard: a model's own `rpm` / `tpm`, kept in the store's
 * sliding-minute windows (`internal/quota.ts`; one Lua script in Redis). A
 * request reserves one request and its estimated tokens (input estimate +
 * `maxTokens`) when its attempt is admitted, and settles the reservation to
 * what it really used when it ends. Models without limits are never touched.
 */
import { Effect, Random } from "effect"
import type * as BedrockError from "../BedrockError.ts"
import type { StoreError } from "../MuxStore.ts"
import type { Target } from "../Target.ts"
import * as Guard from "./guard.ts"
import { keyCache } from "./keys.ts"

/** Did Bedrock (probably) count this failed call against the model's quota? */
export const countedByBedrock = (error: BedrockError.BedrockError): boolean => {
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

const limited = (t: Target): boolean => t.model.rpm !== undefined || t.model.tpm !== undefined

export const make = (env: Guard.Env) =>
  Effect.map(Random.nextInt, (seed) => {
    const keyOf = keyCache(`${env.name}/quota`)
    const instance = (seed >>> 0).toString(36)
    let reservations = 0
    const failOpen = env.onStoreError === "allow"
    const storeFailed = <A>(fallback: A) => (e: StoreError): Effect.Effect<A, StoreError> =>
      failOpen ? Effect.succeed(fallback) : Effect.fail(e)

    /** What an attempt's end does to its reservation: settle it to what was used, give it back, or keep it. */
    const endOf = (outcome: Guard.Outcome): "settle" | "release" | "keep" => {
      switch (outcome._tag) {
        case "Success":
          return outcome.usage === undefined ? "keep" : "settle"
        case "Failure":
          // only what Bedrock did not count goes back: an error response before any work. A timeout, a cut or an
          // in-stream failure may have been counted, so its reservation stays (as the estimate) until the minute passes.
          return countedByBedrock(outcome.error) ? "keep" : "release"
        case "NotSent":
          return "release"
        case "Interrupted":
          // the model worked on it: it counts
          return "keep"
      }
    }
    const sync = env.store.quotaUnsafe
    const permitOf = (target: Target, id: string): Guard.Permit => ({
      release: (outcome) => {
        const key = keyOf(target)
        switch (endOf(outcome)) {
          case "settle":
            return Effect.ignore(env.store.settle(key, id, (outcome as Extract<Guard.Outcome, { _tag: "Success" }>).usage!.quota))
          case "release":
            return Effect.ignore(env.store.release(key, id))
          case "keep":
            return Effect.void
        }
      },
      ...(sync === undefined ? {} : {
        releaseUnsafe: (outcome: Guard.Outcome) => {
          const key = keyOf(target)
          switch (endOf(outcome)) {
            case "settle":
              return sync.settle(key, id, (outcome as Extract<Guard.Outcome, { _tag: "Success" }>).usage!.quota)
            case "release":
              return sync.release(key, id)
            case "keep":
              return
          }
        }
      })
    })
    const reservationOf = (target: Target, request: Guard.RequestInfo) => ({
      id: `${instance}:${++reservations}`,
      tokens: request.inputTokens() + (request.maxTokens ?? target.model.maxTokens)
    })

    const unlimited = new WeakMap<ReadonlyArray<Target>, boolean>()
    const live: Guard.Live = {
      // room is only known by reserving: every model admits until its reservation says no
      view: (targets) => Effect.succeed(Guard.openViews(targets.length)),
      admit: (target, request, _view, now) => {
        if (!limited(target)) return Effect.succeed(Guard.noPermit)
        const { id, tokens } = reservationOf(target, request)
        return env.store.reserve(keyOf(target), now, { rpm: target.model.rpm, tpm: target.model.tpm }, id, tokens).pipe(
          Effect.flatMap((r) =>
            r.ok
              ? Effect.succeed(permitOf(target, id))
              : Effect.andThen(
                env.emit({ _tag: "QuotaRejected", at: now, scope: "model", key: target.model.target, kind: r.kind, retryAfterMs: r.retryAfterMs }),
                Effect.fail(new Guard.Rejected({ guard: "quota", why: "quota", retryAfterMs: r.retryAfterMs }))
              )
          ),
          Effect.catchTag("StoreError", storeFailed(Guard.noPermit))
        )
      },
      viewUnsafe: (targets) => Guard.openViews(targets.length),
      // no model with a quota among them (a pool's target arrays are kept, so the answer is too)
      quietUnsafe: (targets) => {
        let q = unlimited.get(targets)
        if (q === undefined) {
          q = !targets.some(limited)
          unlimited.set(targets, q)
        }
        return q
      },
      // a memory store reserves in plain code; a refusal (its event, the retry-after) is the general path's
      admitUnsafe: (target, request, _view, now) => {
        if (!limited(target)) return Guard.noPermit
        if (sync === undefined) return undefined
        const { id, tokens } = reservationOf(target, request)
        const r = sync.reserve(keyOf(target), now, { rpm: target.model.rpm, tpm: target.model.tpm }, id, tokens)
        return r.ok ? permitOf(target, id) : undefined
      },
      // for health: a model whose window is full has no room now
      health: (targets, now) =>
        Effect.forEach(targets, (t) => {
          if (!limited(t)) return Effect.succeed(Guard.open)
          return env.store.usage(keyOf(t), now).pipe(
            Effect.map((u): Guard.View =>
              (t.model.rpm !== undefined && u.requests >= t.model.rpm) || (t.model.tpm !== undefined && u.tokens >= t.model.tpm)
                ? { admits: false, weight: 0, why: "quota" }
                : Guard.open
            ),
            Effect.orElseSucceed(() => Guard.open)
          )
        })
    }
    return live
  })
