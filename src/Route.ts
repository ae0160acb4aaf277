/**
 * `Route`: the models a request may use, in tiers. A request goes to the
 * first tier that has an eligible model; a later tier is used only while
 * every model of the earlier ones is out (tried, breaker open, cooling,
 * without quota room).
 *
 * Routes compose: `Route.orElse(primary, fallback)` is the primary's tiers
 * followed by the fallback's, so a fallback chain is a composition of routes
 * and the composition is associative (`Route.empty` is its identity). A
 * model appears once in a route: where it first appears.
 *
 * The JSON config's `models[]` (with `isFallback` / `tier`) is
 * `Route.fromModels`, and each `routes` label is the route of its models.
 *
 * @example
 * ```ts
 * import { pipe } from "effect"
 * import { Route } from "effect-bedrock-mux"
 *
 * const route = pipe(
 *   Route.tier([{ modelId: "us.amazon.nova-2-lite-v1:0", weight: 100 }, { modelId: "us.anthropic.claude-haiku-4-5-20251001-v1:0", weight: 50 }]),
 *   Route.orElse(Route.tier([{ modelId: "us.amazon.nova-pro-v1:0" }]))
 * )
 * ```
 *
 * @since 0.1.0
 */
import { dual } from "effect/Function"
import * as Model from "./Model.ts"

/**
 * Tiers of models, first to last.
 * @since 0.1.0
 */
export interface Route {
  readonly tiers: ReadonlyArray<ReadonlyArray<Model.Model>>
}

const normalize = (tiers: ReadonlyArray<ReadonlyArray<Model.Model>>): Route => {
  const seen = new Set<string>()
  const out: Array<ReadonlyArray<Model.Model>> = []
  for (const tier of tiers) {
    const kept = tier.filter((m) => (seen.has(m.target) ? false : (seen.add(m.target), true)))
    if (kept.length > 0) out.push(kept)
  }
  return { tiers: out }
}

const toModel = (m: Model.Model | Model.Input): Model.Model => (Model.isModel(m) ? m : Model.make(m))

/**
 * The route with no model: the identity of `orElse`.
 * @example
 * ```ts
 * import { Route } from "effect-bedrock-mux"
 * Route.orElse(Route.empty, Route.tier([{ modelId: "m" }])) // the same as Route.tier([{ modelId: "m" }])
 * ```
 * @since 0.1.0
 */
export const empty: Route = { tiers: [] }

/**
 * One tier: its models share the traffic by weight.
 * @example
 * ```ts
 * import { Route } from "effect-bedrock-mux"
 * const primary = Route.tier([{ modelId: "a", weight: 3 }, { modelId: "b", weight: 1 }])
 * ```
 * @since 0.1.0
 */
export const tier = (models: ReadonlyArray<Model.Model | Model.Input>): Route => normalize([models.map(toModel)])

/**
 * The tiers of `self`, then those of `that` (without the models `self`
 * already has): `that` is used only while all of `self` is out.
 * @example
 * ```ts
 * import { Route } from "effect-bedrock-mux"
 * const chain = Route.tier([{ modelId: "a" }]).pipe(Route.orElse(Route.tier([{ modelId: "b" }])))
 * ```
 * @since 0.1.0
 */
export const orElse: {
  (that: Route): (self: Route) => Route
  (self: Route, that: Route): Route
} = dual(2, (self: Route, that: Route): Route => normalize([...self.tiers, ...that.tiers]))

/**
 * A route from models that say their own tier (`tier`, or `isFallback`):
 * tiers in ascending order, models in declaration order within each.
 * @example
 * ```ts
 * import { Route } from "effect-bedrock-mux"
 * const r = Route.fromModels([{ modelId: "a" }, { modelId: "b", isFallback: true }]) // tiers [[a], [b]]
 * ```
 * @since 0.1.0
 */
export const fromModels = (models: ReadonlyArray<Model.Model | Model.Input>): Route => {
  const built = models.map(toModel)
  const levels = [...new Set(built.map((m) => m.tier))].sort((a, b) => a - b)
  return normalize(levels.map((level) => built.filter((m) => m.tier === level)))
}

/**
 * Every model of a route, first tier first.
 * @example
 * ```ts
 * import { Route } from "effect-bedrock-mux"
 * Route.models(Route.tier([{ modelId: "a" }])).map((m) => m.modelId) // ["a"]
 * ```
 * @since 0.1.0
 */
export const models = (self: Route): ReadonlyArray<Model.Model> => self.tiers.flat()

/**
 * Only the models that pass `keep`, tiers kept.
 * @example
 * ```ts
 * import { Route } from "effect-bedrock-mux"
 * const cheap = Route.filter(Route.tier([{ modelId: "a" }, { modelId: "b" }]), (m) => m.modelId !== "b")
 * ```
 * @since 0.1.0
 */
export const filter: {
  (keep: (model: Model.Model) => boolean): (self: Route) => Route
  (self: Route, keep: (model: Model.Model) => boolean): Route
} = dual(2, (self: Route, keep: (model: Model.Model) => boolean): Route => normalize(self.tiers.map((t) => t.filter(keep))))
