/**
 * The mux's JSON configuration: one Schema, decoded into the same policy
 * values code composes (`Policy`), with every problem reported at once.
 *
 * The aws-samples multiplexer's shape decodes unchanged: a bare array of
 * `{ modelId, weight, isFallback }`, or `{ models, defaultTimeoutMs,
 * maxRetries }` (`maxRetries` n means n + 1 attempts).
 *
 * Every key is checked: an unknown key at any depth (a typo such as
 * `isFallbak`, an unknown `decisions` reason tag) is a problem with its path
 * and the closest allowed key ("unknown key; did you mean `isFallback`?"), or
 * the allowed keys when none is close.
 *
 * Checks beyond the field types, each reported with its path and the allowed
 * range: a duplicate model (same `modelId` and `client`), no primary (no
 * tier-0 model with weight > 0), `isFallback: true` with `tier: 0`, an
 * attempt timeout (global or per model) that is 0 or longer than the
 * deadline, a deadline, breaker `window`/`probeInterval`, retry or backoff
 * `base`, stream `firstTokenTimeout`/`stallTimeout`/`hedge.after` that is 0,
 * `probeIntervalMax` shorter than `probeInterval`, retry or backoff `max`
 * shorter than `base`, a route naming an unknown model. An unknown `client`
 * key is reported when the layer is built (the clients are not part of the
 * JSON). A field that does not decode does not hide the range problems of its
 * neighbours: one error lists them all.
 *
 * Without `retry`, same-model retries use `Policy.defaultRetry` (100 ms
 * doubling, jittered, at least the retry-after); `retry: { base, max? }`
 * decodes to `Policy.exponentialRetry`.
 *
 * Durations are milliseconds (a number) or Effect duration strings
 * ("30 seconds", "500 millis"; units nanos to weeks). Without a `timeout`, the
 * attempt timeout is the default 30 s cut to the deadline. Without a
 * `deadline`, it is 60 s, or the longest timeout × the attempts when that is
 * longer (`defaultTimeoutMs: 120000` with `maxRetries: 3`: 480 s); a given
 * `deadline` shorter than a timeout is a problem.
 *
 * @example
 * ```ts
 * import { MuxConfig } from "effect-bedrock-mux"
 * const config = MuxConfig.decodeSync({
 *   models: [
 *     { modelId: "amazon.nova-lite-v1:0", weight: 100 },
 *     { modelId: "amazon.nova-pro-v1:0", weight: 30, isFallback: true }
 *   ],
 *   deadline: "20 seconds",
 *   breaker: { failures: 3, probeInterval: "10 seconds" }
 * })
 * ```
 * @since 0.1.0
 */
import { Config, ConfigProvider, Context, Duration, Effect, Option, Result, Schema } from "effect"
import * as BedrockError from "./BedrockError.ts"
import {
  DurationInput,
  isRecord,
  NonNegative,
  NonNegativeInt,
  PositiveInt,
  Probability,
  type Problem,
  problemsOf,
  strict
} from "./internal/schema.ts"
import * as Guard from "./Guard.ts"
import * as ModelModule from "./Model.ts"
import * as Policy from "./Policy.ts"
import * as Route from "./Route.ts"
import * as Selector from "./Selector.ts"

const ModelEntry = Schema.Struct({
  modelId: Schema.NonEmptyString,
  weight: Schema.optionalKey(NonNegative),
  isFallback: Schema.optionalKey(Schema.Boolean),
  tier: Schema.optionalKey(NonNegativeInt),
  timeout: Schema.optionalKey(DurationInput),
  contextWindow: Schema.optionalKey(PositiveInt),
  labels: Schema.optionalKey(Schema.Array(Schema.String)),
  client: Schema.optionalKey(Schema.NonEmptyString),
  rpm: Schema.optionalKey(PositiveInt),
  tpm: Schema.optionalKey(PositiveInt),
  maxTokens: Schema.optionalKey(PositiveInt),
  escalate: Schema.optionalKey(Schema.Literals(["priority", "reserved"])),
  price: Schema.optionalKey(Schema.Struct({ input: NonNegative, output: NonNegative }))
})

const TenantLimits = Schema.Struct({
  rpm: Schema.optionalKey(PositiveInt),
  tpm: Schema.optionalKey(PositiveInt)
})

const Decision = Schema.Struct({
  retrySame: Schema.optionalKey(NonNegativeInt),
  failover: Schema.optionalKey(Schema.Boolean),
  breaker: Schema.optionalKey(Schema.Boolean),
  largerContextOnly: Schema.optionalKey(Schema.Boolean)
})

const BreakerFields = Schema.Struct({
  failures: Schema.optionalKey(PositiveInt),
  window: Schema.optionalKey(DurationInput),
  probeInterval: Schema.optionalKey(DurationInput),
  probeIntervalMax: Schema.optionalKey(DurationInput),
  // the older names of probeInterval / probeIntervalMax, still read
  cooldown: Schema.optionalKey(DurationInput),
  cooldownMax: Schema.optionalKey(DurationInput),
  halfOpen: Schema.optionalKey(PositiveInt),
  rampUp: Schema.optionalKey(DurationInput)
})

const Fields = Schema.Struct({
  name: Schema.optionalKey(Schema.NonEmptyString),
  models: Schema.Array(ModelEntry).check(Schema.isMinLength(1)),
  attempts: Schema.optionalKey(PositiveInt),
  maxRetries: Schema.optionalKey(NonNegativeInt),
  timeout: Schema.optionalKey(DurationInput),
  defaultTimeoutMs: Schema.optionalKey(DurationInput),
  deadline: Schema.optionalKey(DurationInput),
  breaker: Schema.optionalKey(BreakerFields),
  routes: Schema.optionalKey(Schema.Record(Schema.String, Schema.Array(Schema.String))),
  selection: Schema.optionalKey(Schema.Literals(["weighted", "ordered", "latency", "cheapest"])),
  waitForRecovery: Schema.optionalKey(Schema.Boolean),
  // optionalKey: a finite-literal-key record otherwise requires every reason tag
  decisions: Schema.optionalKey(Schema.Record(Schema.Literals(BedrockError.reasonTags), Schema.optionalKey(Decision))),
  retry: Schema.optionalKey(Schema.Struct({
    base: DurationInput,
    max: Schema.optionalKey(DurationInput)
  })),
  backoff: Schema.optionalKey(Schema.Struct({
    base: DurationInput,
    max: DurationInput,
    times: PositiveInt
  })),
  onStoreError: Schema.optionalKey(Schema.Literals(["allow", "fail"])),
  captureBodies: Schema.optionalKey(Schema.Boolean),
  tenants: Schema.optionalKey(Schema.Record(Schema.String, TenantLimits)),
  defaultTenant: Schema.optionalKey(TenantLimits),
  stream: Schema.optionalKey(Schema.Struct({
    firstTokenTimeout: Schema.optionalKey(DurationInput),
    stallTimeout: Schema.optionalKey(DurationInput),
    metadataGrace: Schema.optionalKey(DurationInput),
    onInterrupt: Schema.optionalKey(Schema.Literals(["fail", "restart"])),
    hedge: Schema.optionalKey(Schema.Struct({
      after: Schema.optionalKey(Schema.Union([Schema.Literal("p95"), DurationInput])),
      budget: Schema.optionalKey(Probability)
    }))
  })),
  cooldowns: Schema.optionalKey(Schema.Struct({
    base: Schema.optionalKey(DurationInput),
    requests: Schema.optionalKey(DurationInput),
    tokens: Schema.optionalKey(DurationInput),
    daily: Schema.optionalKey(DurationInput),
    unknown: Schema.optionalKey(DurationInput)
  }))
})

/**
 * The config as written (JSON). A bare array is read as `{ models: array }`.
 * @since 0.1.0
 */
export type Input = typeof Fields.Encoded | ReadonlyArray<typeof ModelEntry.Encoded>
type Fields = typeof Fields.Type

/**
 * One model of the pool, decoded (the same value `Model.make` builds).
 * @since 0.1.0
 */
export type Model = ModelModule.Model

/**
 * Per-tenant limits.
 * @since 0.1.0
 */
export type TenantLimits = Policy.Limits

/** The output reservation when neither the request nor the model says (Bedrock reserves the model's maximum). @since 0.1.0 */
export const DEFAULT_MAX_TOKENS = ModelModule.DEFAULT_MAX_TOKENS

/**
 * Same-model retry settings as decoded (the policy holds them as a
 * `Schedule`, `Policy.exponentialRetry`).
 * @since 0.1.0
 */
export interface RetrySettings {
  readonly base: Duration.Duration
  readonly max?: Duration.Duration | undefined
}

/**
 * Backoff settings as decoded (the policy holds them as a `Schedule`).
 * @since 0.1.0
 */
export interface BackoffSettings {
  readonly base: Duration.Duration
  readonly max: Duration.Duration
  readonly times: number
}

/**
 * The decoded config: a `Policy` (what `BedrockMux.layer` runs, exactly what
 * code composes), with the sections that became functions also kept as
 * written, for display.
 * @since 0.1.0
 */
export interface MuxConfig extends Policy.Policy {
  /** the `decisions` overrides as written (folded into `classification`) */
  readonly decisions: Readonly<Partial<Record<BedrockError.ReasonTag, Partial<BedrockError.Decision>>>>
  /** the `retry` section as written (`retry` is its `Schedule`); undefined: `Policy.defaultRetry` */
  readonly retrySettings: RetrySettings | undefined
  /** the `backoff` section as written (`backoff` is its `Schedule`) */
  readonly backoffSettings: BackoffSettings | undefined
}

/**
 * A config that failed to decode or check, with every problem. A problem with
 * an empty path concerns the config as a whole (e.g. the variable holding it
 * is not set).
 * @since 0.1.0
 */
export class MuxConfigError extends Schema.TaggedError<MuxConfigError>()("MuxConfigError", {
  problems: Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String }))
}) {
  override get message(): string {
    return `Invalid mux config (${this.problems.length} problem${this.problems.length === 1 ? "" : "s"}):\n${
      this.problems.map((p) => `  ${p.path === "" ? "" : `${p.path}: `}${p.message}`).join("\n")
    }`
  }
}

const ms = Duration.toMillis

type DeepPartial<T> = T extends Duration.Duration ? T
  : T extends ReadonlyArray<infer A> ? ReadonlyArray<DeepPartial<A>>
  : T extends object ? { readonly [K in keyof T]?: DeepPartial<T[K]> }
  : T

/** What the cross-field checks read: decoded fields, or what could be salvaged of a config that failed to decode. */
type Checked = DeepPartial<Omit<Fields, "models">> & { readonly models: ReadonlyArray<Partial<typeof ModelEntry.Type>> }

/**
 * The request deadline of a config: its `deadline` when it gives one. Without
 * one, the default (60 s), or longer when a timeout is set (`timeout`,
 * `defaultTimeoutMs`, a model's): the longest timeout × the attempts, the
 * longest the aws-samples multiplexer (which has no request deadline) could
 * take. So `defaultTimeoutMs: 120000` decodes as it did there, and a config
 * with a short timeout keeps the default deadline. Pure.
 */
const deadlineOf = (f: Checked): Duration.Duration => {
  if (f.deadline !== undefined) return f.deadline
  let longest = 0
  for (const d of [f.timeout, f.defaultTimeoutMs, ...f.models.map((m) => m.timeout)]) {
    if (d !== undefined && Duration.isFinite(d) && ms(d) > longest) longest = ms(d)
  }
  const attempts = f.attempts ?? (f.maxRetries !== undefined ? f.maxRetries + 1 : Policy.defaults.attempts)
  const derived = longest * attempts
  return Number.isFinite(derived) && derived > ms(Policy.defaults.deadline) ? Duration.millis(derived) : Policy.defaults.deadline
}

/** Cross-field checks on decoded fields; every problem, in order. Pure. */
const check = (f: Checked): Array<Problem> => {
  const problems: Array<Problem> = []
  const seen = new Map<string, number>()
  let primary = false
  const deadline = deadlineOf(f)
  /** a duration that must be above 0 (its documented range excludes 0) */
  const positive = (path: string, d: Duration.Duration | undefined, allowed: string, what = path.slice(path.lastIndexOf(".") + 1)) => {
    if (d !== undefined && ms(d) <= 0) problems.push({ path, message: `${what} must be positive; allowed: ${allowed}` })
  }
  const attemptTimeout = (path: string, d: Duration.Duration | undefined) => {
    if (d === undefined) return
    if (ms(d) <= 0 || ms(d) > ms(deadline)) {
      problems.push({
        path,
        message: `attempt timeout ${ms(d)} ms ${ms(d) <= 0 ? "is not positive" : `is longer than the deadline ${ms(deadline)} ms`}; allowed: 0 < timeout <= deadline`
      })
    }
  }
  positive("deadline", f.deadline, "0 < deadline")
  f.models.forEach((m, i) => {
    const target = m.modelId === undefined ? undefined : m.client === undefined ? m.modelId : `${m.client}:${m.modelId}`
    const prev = target === undefined ? undefined : seen.get(target)
    if (target === undefined) {
      // a modelId that did not decode is reported by the schema
    } else if (prev !== undefined) {
      problems.push({
        path: `models[${i}].modelId`,
        message: `duplicate model "${m.modelId}"${m.client !== undefined ? ` on client "${m.client}"` : ""} (also models[${prev}]); each modelId may appear once per client`
      })
    } else seen.set(target, i)
    if (m.isFallback === true && m.tier === 0) {
      problems.push({ path: `models[${i}].tier`, message: "isFallback: true needs a tier >= 1 (or leave tier out)" })
    }
    if (tierOf(m) === 0 && (m.weight ?? 1) > 0) primary = true
    attemptTimeout(`models[${i}].timeout`, m.timeout)
  })
  if (!primary) {
    problems.push({
      path: "models",
      message: "no primary model: at least one model needs tier 0 (isFallback false) and weight > 0"
    })
  }
  attemptTimeout("timeout", f.timeout)
  attemptTimeout("defaultTimeoutMs", f.defaultTimeoutMs)
  if (f.attempts !== undefined && f.maxRetries !== undefined && f.attempts !== f.maxRetries + 1) {
    problems.push({ path: "maxRetries", message: `maxRetries ${f.maxRetries} contradicts attempts ${f.attempts}; give one of them` })
  }
  const b = f.breaker
  if (b !== undefined) {
    positive("breaker.window", b.window, "0 < window")
    for (const [now, old] of [["probeInterval", "cooldown"], ["probeIntervalMax", "cooldownMax"]] as const) {
      if (b[now] !== undefined && b[old] !== undefined) {
        problems.push({ path: `breaker.${old}`, message: `${old} is the older name of ${now}; give one of them` })
      }
    }
    const interval = b.probeInterval ?? b.cooldown
    const intervalMax = b.probeIntervalMax ?? b.cooldownMax
    const intervalPath = b.probeInterval !== undefined ? "breaker.probeInterval" : "breaker.cooldown"
    positive(intervalPath, interval, "0 < probeInterval <= probeIntervalMax")
    const i = interval ?? Guard.defaultBreaker.probeInterval
    const iMax = intervalMax ?? Guard.defaultBreaker.probeIntervalMax
    if (ms(iMax) < ms(i)) {
      const name = b.probeIntervalMax !== undefined || b.cooldownMax === undefined ? "probeIntervalMax" : "cooldownMax"
      problems.push({
        path: `breaker.${name}`,
        message: `${name} ${ms(iMax)} ms is shorter than the probe interval ${ms(i)} ms; allowed: probeIntervalMax >= probeInterval`
      })
    }
  }
  for (const section of ["retry", "backoff"] as const) {
    const s = f[section]
    if (s === undefined) continue
    positive(`${section}.base`, s.base, "0 < base <= max")
    if (s.base !== undefined && s.max !== undefined && ms(s.max) < ms(s.base)) {
      problems.push({ path: `${section}.max`, message: `max ${ms(s.max)} ms is shorter than base ${ms(s.base)} ms; allowed: max >= base` })
    }
  }
  positive("stream.firstTokenTimeout", f.stream?.firstTokenTimeout, "0 < firstTokenTimeout")
  positive("stream.stallTimeout", f.stream?.stallTimeout, "0 < stallTimeout")
  const after = f.stream?.hedge?.after
  if (after !== undefined && after !== "p95" && ms(after) <= 0) {
    problems.push({ path: "stream.hedge.after", message: "hedge.after must be positive or \"p95\"; allowed: 0 < after" })
  }
  for (const [label, ids] of Object.entries(f.routes ?? {})) {
    for (const [j, id] of (ids ?? []).entries()) {
      if (!f.models.some((m) => m.modelId === id || `${m.client}:${m.modelId}` === id)) {
        problems.push({ path: `routes.${label}[${j}]`, message: `unknown model "${id}"; allowed: a modelId of models[]` })
      }
    }
  }
  return problems
}

const tierOf = (m: { readonly tier?: number; readonly isFallback?: boolean }): number =>
  m.tier ?? (m.isFallback === true ? 1 : 0)

const toConfig = (f: Fields): MuxConfig => {
  const models = f.models.map((m) => ModelModule.make(m))
  const routes = new Map<string, Array<ModelModule.Model>>()
  const add = (label: string, m: ModelModule.Model) => {
    const list = routes.get(label) ?? []
    if (!list.includes(m)) list.push(m)
    routes.set(label, list)
  }
  for (const [label, ids] of Object.entries(f.routes ?? {})) {
    for (const id of ids) for (const m of models) if (m.modelId === id || m.target === id) add(label, m)
  }
  for (const m of models) for (const label of m.labels) add(label, m)
  let classification = Policy.defaultClassification
  const decisions: Partial<Record<BedrockError.ReasonTag, Partial<BedrockError.Decision>>> = {}
  for (const [tag, decision] of Object.entries(f.decisions ?? {})) {
    if (decision === undefined) continue
    decisions[tag as BedrockError.ReasonTag] = decision
    classification = Policy.override(tag as BedrockError.ReasonTag, decision as Partial<BedrockError.Decision>)(classification)
  }
  const b = f.breaker ?? {}
  const c = f.cooldowns ?? {}
  const deadline = deadlineOf(f)
  const st = f.stream ?? {}
  const policy = Policy.make(Route.fromModels(models), {
    name: f.name ?? "default",
    routes: new Map([...routes].map(([label, ms]) => [label, Route.fromModels(ms)] as const)),
    selector: selectors[f.selection ?? "weighted"](),
    guards: [
      Guard.breaker({
        failures: b.failures,
        window: b.window,
        probeInterval: b.probeInterval ?? b.cooldown,
        probeIntervalMax: b.probeIntervalMax ?? b.cooldownMax,
        halfOpen: b.halfOpen,
        rampUp: b.rampUp
      }),
      Guard.cooldown({ base: c.base, requests: c.requests, tokens: c.tokens, daily: c.daily, unknown: c.unknown }),
      Guard.quota()
    ],
    tenants: { limits: new Map(Object.entries(f.tenants ?? {})), default: f.defaultTenant },
    attempts: f.attempts ?? (f.maxRetries !== undefined ? f.maxRetries + 1 : Policy.defaults.attempts),
    // the default attempt timeout never outlasts the deadline it runs under
    timeout: f.timeout ?? f.defaultTimeoutMs ?? Duration.min(Policy.defaults.timeout, deadline),
    deadline,
    classification,
    retry: f.retry === undefined ? Policy.defaultRetry : Policy.exponentialRetry(f.retry),
    backoff: f.backoff === undefined ? undefined : Policy.exponentialBackoff(f.backoff),
    waitForRecovery: f.waitForRecovery ?? false,
    onStoreError: f.onStoreError ?? "allow",
    captureBodies: f.captureBodies ?? false
  })
  const streamed = Policy.withStreaming({
    ...(st.firstTokenTimeout !== undefined ? { firstToken: st.firstTokenTimeout } : {}),
    ...(st.stallTimeout !== undefined ? { stall: st.stallTimeout } : {}),
    ...(st.metadataGrace !== undefined ? { metadataGrace: st.metadataGrace } : {}),
    ...(st.onInterrupt !== undefined ? { onInterrupt: st.onInterrupt } : {}),
    ...(st.hedge !== undefined ? { hedge: Policy.hedge(st.hedge) } : {})
  })(policy)
  return { ...streamed, decisions, retrySettings: f.retry, backoffSettings: f.backoff }
}

const selectors: Record<NonNullable<Fields["selection"]>, () => Selector.Selector> = {
  weighted: () => Selector.weighted,
  ordered: () => Selector.ordered,
  latency: () => Selector.latency(),
  cheapest: () => Selector.cheapest()
}

const decodeFields = Schema.decodeUnknownResult(Fields)

/** The fields of a struct schema, seen through `optionalKey`; undefined for anything else. */
const structFields = (s: unknown): Schema.Struct.Fields | undefined => {
  // schemas are functions as well as objects
  const has = (u: unknown, key: string): u is Record<string, unknown> =>
    (typeof u === "object" || typeof u === "function") && u !== null && key in u
  const inner = has(s, "fields") ? s : has(s, "schema") ? s.schema : undefined
  return has(inner, "fields") ? (inner.fields as Schema.Struct.Fields) : undefined
}

/**
 * Decodes each field of `fields` found in `raw` on its own; a nested struct
 * that does not decode as a whole is salvaged field by field in turn, and
 * what does not decode is left out.
 */
const fieldwise = (fields: Schema.Struct.Fields, raw: unknown, skip: ReadonlyArray<string> = []): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  if (!isRecord(raw)) return out
  for (const key of Object.keys(fields)) {
    if (skip.includes(key) || !(key in raw)) continue
    const one = Schema.Struct({ [key]: fields[key]! }) as unknown as Schema.Decoder<Record<string, unknown>>
    const r = Schema.decodeUnknownResult(one)({ [key]: raw[key] })
    if (Result.isSuccess(r)) Object.assign(out, r.success)
    else {
      const nested = structFields(fields[key])
      if (nested !== undefined && isRecord(raw[key])) out[key] = fieldwise(nested, raw[key])
    }
  }
  return out
}

/**
 * What can be read of a config that failed to decode (each field on its own,
 * models and nested sections field by field, the fields that do not decode
 * left out), so that the cross-field checks still run and one error lists
 * every problem. Undefined when there is no list of models to check.
 */
const salvage = (input: unknown): Checked | undefined => {
  if (!isRecord(input) || !Array.isArray(input.models)) return undefined
  const models = (input.models as ReadonlyArray<unknown>).map((m) => fieldwise(ModelEntry.fields, m) as Partial<typeof ModelEntry.Type>)
  return { ...fieldwise(Fields.fields, input, ["models"]), models } as Checked
}

/**
 * Decodes and checks a config, reporting every problem, unknown keys included.
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MuxConfig } from "effect-bedrock-mux"
 * MuxConfig.decode([{ modelId: "a", weight: 1, isFallback: false }]).pipe(Effect.runSync)
 * ```
 * @since 0.1.0
 */
export const decode = (input: unknown): Effect.Effect<MuxConfig, MuxConfigError> => {
  const fields = Array.isArray(input) ? { models: input } : input
  const result = decodeFields(fields, strict)
  if (Result.isFailure(result)) {
    // the cross-field problems too, on what did decode: one error lists every problem
    const salvaged = salvage(fields)
    const problems = [...problemsOf(result.failure), ...(salvaged === undefined ? [] : check(salvaged))]
    return Effect.fail(new MuxConfigError({ problems }))
  }
  const problems = check(result.success)
  return problems.length > 0 ? Effect.fail(new MuxConfigError({ problems })) : Effect.succeed(toConfig(result.success))
}

/**
 * Decodes a config or throws `MuxConfigError`.
 * @example
 * ```ts
 * import { MuxConfig } from "effect-bedrock-mux"
 * const config = MuxConfig.decodeSync({ models: [{ modelId: "a" }] })
 * ```
 * @since 0.1.0
 */
export const decodeSync = (input: unknown): MuxConfig => {
  const result = Effect.runSync(Effect.result(decode(input)))
  if (Result.isFailure(result)) throw result.failure
  return result.success
}

/**
 * Reads the JSON config from the `Config` value `name` (through the
 * `ConfigProvider` in context where one is provided, else the environment
 * variable of that name in `process.env` as it is now) and decodes it. A variable
 * that is not set, or does not hold JSON, fails with a `MuxConfigError` that
 * says so ("MODEL_CONFIG is not set"); an unreadable source with its
 * `ConfigError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MuxConfig } from "effect-bedrock-mux"
 * const config = MuxConfig.fromConfig("MODEL_CONFIG") // Effect<MuxConfig, MuxConfigError | ConfigError>
 * ```
 * @since 0.1.0
 */
export const fromConfig = (name = "MODEL_CONFIG"): Effect.Effect<MuxConfig, MuxConfigError | Config.ConfigError> =>
  Effect.gen(function*() {
    const config = Config.option(Config.String(name))
    // Effect's default provider is a copy of process.env taken at its first use in the process (so a variable set
    // later, say between two layers built in one test file, would not be seen): without a provider of the
    // caller's, the environment as it is when the layer is built
    const own = Context.getOrUndefined(yield* Effect.context<never>(), ConfigProvider.ConfigProvider)
    const text = yield* (own === undefined ? config.parse(ConfigProvider.fromEnv()) : config)
    if (Option.isNone(text)) {
      return yield* new MuxConfigError({ problems: [{ path: "", message: `${name} is not set; it must hold the mux config as JSON` }] })
    }
    let json: unknown
    try {
      json = JSON.parse(text.value)
    } catch (e) {
      return yield* new MuxConfigError({
        problems: [{ path: "", message: `${name} is not valid JSON: ${e instanceof Error ? e.message : String(e)}` }]
      })
    }
    return yield* decode(json)
  })

/**
 * Decodes one `models[]` entry, unknown keys included (for `addModel`).
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { MuxConfig } from "effect-bedrock-mux"
 * MuxConfig.decodeModel({ modelId: "a", weight: 2 }).pipe(Effect.runSync)
 * ```
 * @since 0.1.0
 */
export const decodeModel = (input: unknown): Effect.Effect<Model, MuxConfigError> => {
  const result = Schema.decodeUnknownResult(ModelEntry)(input, strict)
  if (Result.isFailure(result)) return Effect.fail(new MuxConfigError({ problems: problemsOf(result.failure) }))
  const m = result.success
  if (m.isFallback === true && m.tier === 0) {
    return Effect.fail(new MuxConfigError({ problems: [{ path: "tier", message: "isFallback: true needs a tier >= 1 (or leave tier out)" }] }))
  }
  return Effect.succeed(ModelModule.make(m))
}

/**
 * The JSON config as a `Schema` of its own (for `Config.schema` and tools).
 * Decode it with `{ onExcessProperty: "error" }` to reject unknown keys as
 * `decode` does.
 * @since 0.1.0
 */
export const schema = Fields
