/**
 * The event bridge: `mux.events` (what the mux did) in the original's
 * events, argument lists and order. One source of truth: nothing here counts
 * or decides; it translates, keeping only what translation needs (an
 * escalation in progress, a classification waiting for its attempt's end).
 *
 * | MuxEvent | original event(s) |
 * |---|---|
 * | `ModelSkipped` (why `breaker`) | `model-circuit-open-skipped` |
 * | `AttemptStarted` | `model-selected` (its retry count leaves escalations out), `model-invocation-start`; nothing for an escalated attempt (the original sends it without either) |
 * | `AttemptEnded` | `model-invocation-complete` (not for an escalated attempt); the attempt's refusal classification (`refusal-classification`, and `refusal-detected` for a refusal); a failure also `error(errorResponse, outcome)` (`error(null, outcome)` for a refusal, as the original) and `stats`; an attempt cut off at its timeout the same, with the original's timeout response ("Request timed out after Nms", FAIL_FAST); the attempt after an escalation `tier-escalation-success` / `-failure` |
 * | `Escalated` | `tier-escalation` |
 * | `ModelAdded` / `ModelRemoved` | `model-added` / `model-removed` |
 *
 * An attempt interrupted for any other reason (a hedge's loser, the caller
 * giving up) did not fail: only `model-invocation-complete`.
 *
 * `request`, `success(response, outcome)` then its `stats` (as the
 * original: `success`, then `stats`), and the request's final
 * `error(error, null)` are emitted by the facade around the call itself.
 * Classifications come from the facade's own classifier wrapper
 * (`classified`), since events never carry answers.
 */
import type * as Model from "../../Model.ts"
import type { MuxEvent } from "../../MuxEvent.ts"
import { errorResponseOf, outcomeOf, timedOut, timeoutResponseOf } from "./errors.ts"
import type { MultiplexerEvents, ServiceTierType } from "./model.ts"

/** One event to emit: its name and arguments (`stats` without its argument: the facade reads the stats when it emits). */
export type Emission =
  | { [K in Exclude<keyof MultiplexerEvents, "stats">]: readonly [K, ...Parameters<MultiplexerEvents[K]>] }[Exclude<keyof MultiplexerEvents, "stats">]
  | readonly ["stats"]

/** The events derived from `mux.events`. */
export const BRIDGED: ReadonlyArray<keyof MultiplexerEvents> = [
  "model-selected",
  "model-invocation-start",
  "model-invocation-complete",
  "model-circuit-open-skipped",
  "model-added",
  "model-removed",
  "error",
  "stats",
  "refusal-detected",
  "refusal-classification",
  "tier-escalation",
  "tier-escalation-success",
  "tier-escalation-failure"
]

/** How one answer was classified (never part of `mux.events`: it holds the answer's text). */
export interface Classification {
  readonly refused: boolean
  readonly score: number
  readonly durationMs: number
  readonly text: string
}

const key = (requestId: string, target: string) => `${requestId}\u0000${target}`

/**
 * A translator over the pool `models` (as the bridge starts; it follows
 * `ModelAdded` / `ModelRemoved`), and where the facade's classifier leaves
 * what it found.
 */
export const makeTranslator = (models: ReadonlyArray<Model.Model>) => {
  /** each model's configured tier: `isFallback` is the model's, as in the original, whatever route it is on */
  const tiers = new Map(models.map((m) => [m.target, m.tier]))
  /** escalations in progress, by request and target */
  const escalations = new Map<string, ServiceTierType>()
  /** escalated attempts started so far, by request: not retries in the original's count */
  const escalated = new Map<string, number>()
  /** classifications waiting for their attempt's end, by request and target */
  const classifications = new Map<string, Classification>()
  /** the requests that have an entry in either map, with their keys */
  const open = new Map<string, Array<string>>()
  const remember = (requestId: string, k: string) => {
    const keys = open.get(requestId)
    if (keys === undefined) open.set(requestId, [k])
    else keys.push(k)
  }

  const translate = (e: MuxEvent, wantStats: boolean): ReadonlyArray<Emission> => {
    switch (e._tag) {
      case "ModelSkipped":
        return e.why === "breaker" ? [["model-circuit-open-skipped", e.modelId]] : []
      case "AttemptStarted": {
        // an escalation is not a selection: the original sends it to the model directly, with no model-selected or
        // model-invocation-* of its own (its `tier-escalation` went out at `Escalated`), and does not count it as a retry
        if (e.serviceTier !== undefined && escalations.get(key(e.requestId, e.target)) === e.serviceTier) {
          escalated.set(e.requestId, (escalated.get(e.requestId) ?? 0) + 1)
          return []
        }
        const retries = e.attempt - 1 - (escalated.get(e.requestId) ?? 0)
        return [["model-selected", e.modelId, (tiers.get(e.target) ?? e.tier) > 0, retries], ["model-invocation-start", e.modelId, e.requestId]]
      }
      case "AttemptEnded": {
        const r = e.record
        const k = key(e.requestId, r.target)
        const escalation = r.serviceTier !== undefined ? escalations.get(k) : undefined
        const out: Array<Emission> = escalation === undefined ? [["model-invocation-complete", r.modelId, e.requestId, r.durationMs]] : []
        const c = classifications.get(k)
        if (c !== undefined) {
          classifications.delete(k)
          out.push(["refusal-classification", r.modelId, c.refused, c.score, c.durationMs])
          if (c.refused) out.push(["refusal-detected", r.modelId, c.score, c.text])
        }
        // a timed-out attempt failed, as the original reports it; a hedge's loser or the caller's interrupt did not
        const timeout = timedOut(r)
        const error = r.outcome === "failure" ? (r.reason === "Refused" ? undefined : errorResponseOf(r, e.error)) : timeout ? timeoutResponseOf(r) : undefined
        const tier = escalation
        if (tier !== undefined) {
          escalations.delete(k)
          if (r.outcome === "success") out.push(["tier-escalation-success", r.modelId, tier])
          else if (r.outcome === "failure" || timeout) out.push(["tier-escalation-failure", r.modelId, tier, timeout ? error!.message : r.message ?? r.reason ?? "failure"])
        }
        if (r.outcome === "failure" || timeout) {
          out.push(["error", error ?? null, outcomeOf(r, e.at, error)])
          if (wantStats) out.push(["stats"])
        }
        // a success's stats go out after its `success`, which the facade emits
        return out
      }
      case "Escalated": {
        const k = key(e.requestId, e.target)
        escalations.set(k, e.serviceTier)
        remember(e.requestId, k)
        return [["tier-escalation", e.modelId, "default", e.serviceTier]]
      }
      case "ModelAdded":
        tiers.set(e.target, e.tier)
        return [["model-added", e.modelId]]
      case "ModelRemoved":
        tiers.delete(e.target)
        return [["model-removed", e.modelId]]
      case "RequestEnded": {
        escalated.delete(e.requestId)
        const keys = open.get(e.requestId)
        if (keys !== undefined) {
          open.delete(e.requestId)
          for (const k of keys) {
            escalations.delete(k)
            classifications.delete(k)
          }
        }
        return []
      }
      default:
        return []
    }
  }

  /** An answer of `target` in request `requestId` was classified: it goes out with the attempt's end. */
  const classified = (requestId: string, target: string, c: Classification): void => {
    const k = key(requestId, target)
    classifications.set(k, c)
    remember(requestId, k)
  }

  return { translate, classified }
}
