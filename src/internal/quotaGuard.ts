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

    const permitOf = (target: Target, id: string): Guard.Permit => ({
      release: (outcome) => {
        const key = keyOf(target)
        switch (outcome._tag) {
          case "Success":
            return outcome.usage === undefined ? Effect.void : Effect.ignore(env.store.settle(key, id, outcome.usage.quota))
          case "Failure":
            // only what Bedrock did not count goes back: an error response before any work. A timeout, a cut or an
            // in-stream failure may have been counted, so its reservation stays (as the estimate) until the minute passes.
            return countedByBedrock(outcome.error) ? Effect.void : Effect.ignore(env.store.release(key, id))
          case "NotSent":
            return Effect.ignore(env.store.release(key, id))
          case "Interrupted":
            // the model worked on it: it counts
            return Effect.void
        }
      }
    })

    const live: Guard.Live = {
      // room is only known by reserving: every model admits until its reservation says no
      view: (targets) => Effect.succeed(targets.map(() => Guard.open)),
      admit: (target, request, _view, now) => {
        if (!limited(target)) return Effect.succeed(Guard.noPermit)
        const id = `${instance}:${++reservations}`
        const tokens = request.inputTokens() + (request.maxTokens ?? target.model.maxTokens)
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
      viewUnsafe: (targets) => targets.map(() => Guard.open),
      admitUnsafe: (target) => (limited(target) ? undefined : Guard.noPermit),
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
