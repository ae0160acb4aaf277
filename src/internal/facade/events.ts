/**
 * The event bridge: `mux.events` (what the mux did) in the original's
 * events, argument lists and order. One source of truth: nothing here counts
 * or decides; it translates, keeping only what translation needs (which
 * breakers are open, what a request tried, an escalation in progress).
 *
 * | MuxEvent | original event(s) |
 * |---|---|
 * | `AttemptStarted` | `model-circuit-open-skipped` for each open-breaker model the selection passed over, then `model-selected`, `model-invocation-start` |
 * | `AttemptEnded` | `model-invocation-complete`; a failure also `error(errorResponse, outcome)` and `stats`; an `escalate` decision `tier-escalation`, and the next attempt of that model `tier-escalation-success` / `-failure` |
 * | `RequestEnded` | with `NoModelsAvailable`: `model-circuit-open-skipped` for each open-breaker model not tried; with a success: `stats` (the success is counted by then) |
 * | `BreakerChanged` | (keeps the open set) |
 *
 * `request`, `success(response, outcome)` and the request's final
 * `error(error, null)` are emitted by the facade around the call itself.
 */
import type * as MuxConfig from "../../MuxConfig.ts"
import type { MuxEvent } from "../../MuxEvent.ts"
import { errorResponseOf, outcomeOf } from "./errors.ts"
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
  "error",
  "stats",
  "tier-escalation",
  "tier-escalation-success",
  "tier-escalation-failure"
]

interface RequestState {
  readonly tried: Set<string>
  escalation: { readonly target: string; readonly tier: ServiceTierType } | undefined
}

/**
 * A translator over a pool. `open` seeds the targets whose breaker is open
 * when the bridge starts; `stats` is called (only) for a `stats` emission.
 */
export const makeTranslator = (models: ReadonlyArray<MuxConfig.Model>, open: Iterable<string>) => {
  const byTarget = new Map(models.map((m) => [m.target, m]))
  const openTargets = new Set(open)
  const requests = new Map<string, RequestState>()
  const stateOf = (requestId: string): RequestState => {
    let s = requests.get(requestId)
    if (s === undefined) {
      s = { tried: new Set(), escalation: undefined }
      requests.set(requestId, s)
    }
    return s
  }
  const skipped = (out: Array<Emission>, tried: ReadonlySet<string>, maxTier: number) => {
    for (const target of openTargets) {
      const m = byTarget.get(target)
      if (m !== undefined && m.tier <= maxTier && !tried.has(target)) out.push(["model-circuit-open-skipped", m.modelId])
    }
  }
  return (e: MuxEvent, wantStats: boolean): ReadonlyArray<Emission> => {
    const out: Array<Emission> = []
    switch (e._tag) {
      case "AttemptStarted": {
        const s = stateOf(e.requestId)
        const m = byTarget.get(e.target)
        const tier = m?.tier ?? 0
        if (!e.hedge && openTargets.size > 0) skipped(out, s.tried, tier)
        s.tried.add(e.target)
        out.push(["model-selected", e.modelId, tier > 0, e.attempt - 1], ["model-invocation-start", e.modelId, e.requestId])
        return out
      }
      case "AttemptEnded": {
        const r = e.record
        const s = stateOf(e.requestId)
        out.push(["model-invocation-complete", r.modelId, e.requestId, r.durationMs])
        const escalation = s.escalation
        if (escalation !== undefined && escalation.target === r.target) {
          s.escalation = undefined
          if (r.outcome === "success") out.push(["tier-escalation-success", r.modelId, escalation.tier])
          else if (r.outcome === "failure") out.push(["tier-escalation-failure", r.modelId, escalation.tier, r.reason ?? "failure"])
        }
        if (r.outcome === "failure") {
          const error = errorResponseOf(r)
          out.push(["error", error, outcomeOf(r, e.at, error)])
          const tier = byTarget.get(r.target)?.escalate
          if (r.decision === "escalate" && tier !== undefined) {
            s.escalation = { target: r.target, tier }
            out.push(["tier-escalation", r.modelId, "default", tier])
          }
        }
        // a success is counted after its AttemptEnded: its stats go out with the RequestEnded
        if (wantStats && r.outcome === "failure") out.push(["stats"])
        return out
      }
      case "RequestEnded": {
        const s = requests.get(e.requestId)
        requests.delete(e.requestId)
        if (e.error === "NoModelsAvailable" && openTargets.size > 0) skipped(out, s?.tried ?? new Set(), Infinity)
        if (wantStats && e.outcome === "success") out.push(["stats"])
        return out
      }
      case "BreakerChanged":
        if (e.to === "open") openTargets.add(e.target)
        else openTargets.delete(e.target)
        return out
      default:
        return out
    }
  }
}
