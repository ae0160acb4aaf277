/**
 * The next mux config, written from the evidence. Pure.
 *
 * - The current config's JSON is the starting point: its other fields
 *   (policy, breaker, tenants, ...) and each kept model's own settings
 *   (tier, rpm, timeout, client, ...) are carried over unchanged.
 * - Evaluated models that are not promoted leave the pool. Models of the
 *   current config that were not evaluated stay as they were (noted).
 *   Promoted models that are new join tier 0 with the candidate's rpm/tpm.
 * - Weights of the promoted models follow the policy:
 *   - `equal`: 100 each;
 *   - `score`: 100 for the best mean score and every model not
 *     significantly worse than it (paired bootstrap), else
 *     round(100 × mean / best mean), at least 1;
 *   - `cost`: round(100 × cheapest cost per case / cost per case), at least
 *     1 (100 for a model that costs nothing).
 * - When no tier-0 model with a weight is left, the promoted model with the
 *   best mean moves to tier 0 (noted), so the config still has a primary.
 * - Routes: existing routes lose the models that left; a route left empty
 *   is dropped (noted). With `routes`, a gated tag that some promoted model
 *   fails gets a route of the promoted models that pass it.
 * - Prices: every model of the next config with a price in the run's table
 *   (the config's own, with the run's `prices` over them) gets it as its
 *   `price`; a model without one keeps what it had.
 */
import type { Prices } from "./prices.ts"
import type { Candidate } from "./runner.ts"
import type { DiffLine, WeightPolicy } from "./types.ts"

/** What the config is written from, per evaluated model. */
export interface Evidence {
  readonly modelId: string
  readonly promoted: boolean
  readonly mean: number | undefined
  readonly costPerCase: number | undefined
  /** gated tags it fails (kept out of their routes with `routes`) */
  readonly failedTags: ReadonlyArray<string>
  /** not significantly worse than the best promoted model (for `score` weights) */
  readonly tiesBest: boolean
  /** why it left the pool */
  readonly reasons: ReadonlyArray<string>
}

type Json = Record<string, unknown>
type Entry = Json & { readonly modelId: string }

const isObject = (u: unknown): u is Json => typeof u === "object" && u !== null && !Array.isArray(u)

/** The current config as an object (a bare array of models is `{ models }`), or undefined. */
export const currentObject = (current: unknown): Json | undefined =>
  current === undefined ? undefined : Array.isArray(current) ? { models: current } : isObject(current) ? current : undefined

const entriesOf = (config: Json | undefined): ReadonlyArray<Entry> =>
  Array.isArray(config?.["models"]) ? (config["models"] as Array<unknown>).filter((m): m is Entry => isObject(m) && typeof m["modelId"] === "string") : []

const tierOf = (e: Json): number => (typeof e["tier"] === "number" ? e["tier"] : e["isFallback"] === true ? 1 : 0)
const weightOfEntry = (e: Json): number => (typeof e["weight"] === "number" ? e["weight"] : 1)
const targetOf = (e: Json): string => (typeof e["client"] === "string" ? `${e["client"]}:${e["modelId"]}` : String(e["modelId"]))

/** The weight each promoted model gets under `policy`. */
export const weightsOf = (evidence: ReadonlyArray<Evidence>, policy: WeightPolicy): Map<string, number> => {
  const promoted = evidence.filter((e) => e.promoted)
  const out = new Map<string, number>()
  const best = Math.max(...promoted.map((e) => e.mean ?? 0))
  const cheapest = Math.min(...promoted.map((e) => e.costPerCase ?? Infinity))
  for (const e of promoted) {
    switch (policy) {
      case "equal":
        out.set(e.modelId, 100)
        break
      case "score":
        out.set(e.modelId, e.tiesBest || best <= 0 ? 100 : Math.max(1, Math.round((100 * (e.mean ?? 0)) / best)))
        break
      case "cost":
        out.set(
          e.modelId,
          e.costPerCase === undefined || e.costPerCase <= 0 ? 100 : Math.max(1, Math.round((100 * cheapest) / e.costPerCase))
        )
    }
  }
  return out
}

/** The next config's JSON and the notes on what was decided. */
export const nextConfigOf = (input: {
  readonly current: unknown
  readonly evidence: ReadonlyArray<Evidence>
  readonly candidates: ReadonlyArray<Candidate>
  readonly prices: Prices
  readonly weights: WeightPolicy
  readonly routes: boolean
  readonly gatedTags: ReadonlyArray<string>
}): { readonly config: Json; readonly notes: ReadonlyArray<string> } => {
  const current = currentObject(input.current)
  const byId = new Map(input.evidence.map((e) => [e.modelId, e] as const))
  const weights = weightsOf(input.evidence, input.weights)
  const notes: Array<string> = []
  const models: Array<Entry> = []
  const present = new Set<string>()
  for (const entry of entriesOf(current)) {
    const e = byId.get(entry.modelId)
    if (e === undefined) {
      notes.push(`${entry.modelId}: not evaluated, kept with its weight and tier`)
      models.push(entry)
      continue
    }
    present.add(entry.modelId)
    if (!e.promoted) continue
    const next: Entry = { ...entry, weight: weights.get(e.modelId)! }
    if (input.routes && Array.isArray(entry["labels"])) {
      next["labels"] = (entry["labels"] as Array<unknown>).filter((l) => !e.failedTags.includes(String(l)))
    }
    models.push(next)
  }
  for (const e of input.evidence) {
    if (!e.promoted || present.has(e.modelId)) continue
    const c = input.candidates.find((c) => c.modelId === e.modelId)
    models.push({
      modelId: e.modelId,
      weight: weights.get(e.modelId)!,
      ...(c?.rpm === undefined ? {} : { rpm: c.rpm }),
      ...(c?.tpm === undefined ? {} : { tpm: c.tpm })
    })
  }
  if (models.length > 0 && !models.some((m) => tierOf(m) === 0 && weightOfEntry(m) > 0)) {
    const best = input.evidence.filter((e) => e.promoted).sort((a, b) => (b.mean ?? 0) - (a.mean ?? 0))[0]
    const i = best === undefined ? -1 : models.findIndex((m) => m.modelId === best.modelId)
    if (i >= 0) {
      const { isFallback: _f, tier: _t, ...rest } = models[i]!
      models[i] = { ...rest, modelId: models[i]!.modelId }
      notes.push(`${models[i]!.modelId}: moved to tier 0, the config had no primary left`)
    }
  }
  for (const [i, m] of models.entries()) {
    const price = input.prices[m.modelId]
    if (price !== undefined) models[i] = { ...m, price: { input: price.input, output: price.output } }
  }
  const targets = new Set(models.flatMap((m) => [m.modelId, targetOf(m)]))
  const routes: Record<string, Array<string>> = {}
  const currentRoutes = isObject(current?.["routes"]) ? current["routes"] : {}
  for (const [label, ids] of Object.entries(currentRoutes)) {
    if (!Array.isArray(ids)) continue
    const kept = ids.filter((id): id is string =>
      typeof id === "string" && targets.has(id) && !(input.routes && (byId.get(id)?.failedTags.includes(label) ?? false))
    )
    if (kept.length > 0) routes[label] = kept
    else notes.push(`route "${label}": every model left, route dropped`)
  }
  if (input.routes) {
    const promoted = input.evidence.filter((e) => e.promoted)
    for (const tag of input.gatedTags) {
      if (!promoted.some((e) => e.failedTags.includes(tag))) continue
      const passing = promoted.filter((e) => !e.failedTags.includes(tag)).map((e) => e.modelId)
      if (passing.length === 0) notes.push(`tag "${tag}": no promoted model passes it, no route written`)
      else routes[tag] = passing
    }
  }
  // the current config's key order, so the diff of the file in a PR is only what changed
  const config: Json = {}
  for (const [key, value] of Object.entries(current ?? {})) config[key] = key === "models" ? models : key === "routes" ? routes : value
  if (!("models" in config)) config["models"] = models
  if (!("routes" in config) && Object.keys(routes).length > 0) config["routes"] = routes
  return { config, notes }
}

const describePrice = (price: unknown): string =>
  isObject(price) ? `, price $${String(price["input"])} in / $${String(price["output"])} out per 1k` : ""

const describeEntry = (e: Json): string =>
  `tier ${tierOf(e)}, weight ${weightOfEntry(e)}${Array.isArray(e["labels"]) && e["labels"].length > 0 ? `, labels ${(e["labels"] as Array<unknown>).join(",")}` : ""}${
    describePrice(e["price"])
  }`

/** The diff from the current config to the next: models added, removed, reweighted, retiered; routes. */
export const diffOf = (current: unknown, next: Json, evidence: ReadonlyArray<Evidence>): ReadonlyArray<DiffLine> => {
  const before = entriesOf(currentObject(current))
  const after = entriesOf(next)
  const lines: Array<DiffLine> = []
  const why = (id: string) => {
    const reasons = evidence.find((e) => e.modelId === id)?.reasons ?? []
    return reasons.length === 0 ? "" : ` (${reasons.join("; ")})`
  }
  for (const b of before) {
    const a = after.find((m) => targetOf(m) === targetOf(b))
    if (a === undefined) lines.push({ op: "-", text: `model ${targetOf(b)}${why(b.modelId)}` })
    else if (describeEntry(a) !== describeEntry(b)) lines.push({ op: "~", text: `model ${targetOf(b)}: ${describeEntry(b)} → ${describeEntry(a)}` })
  }
  for (const a of after) {
    if (!before.some((b) => targetOf(b) === targetOf(a))) lines.push({ op: "+", text: `model ${targetOf(a)}: ${describeEntry(a)}` })
  }
  const routes = (c: Json | undefined) => (isObject(c?.["routes"]) ? (c["routes"] as Record<string, unknown>) : {})
  const rb = routes(currentObject(current))
  const ra = routes(next)
  const show = (ids: unknown) => (Array.isArray(ids) ? ids.join(", ") : String(ids))
  for (const label of [...new Set([...Object.keys(rb), ...Object.keys(ra)])].sort()) {
    if (!(label in ra)) lines.push({ op: "-", text: `route ${label}: ${show(rb[label])}` })
    else if (!(label in rb)) lines.push({ op: "+", text: `route ${label}: ${show(ra[label])}` })
    else if (show(ra[label]) !== show(rb[label])) lines.push({ op: "~", text: `route ${label}: ${show(rb[label])} → ${show(ra[label])}` })
  }
  return lines
}
