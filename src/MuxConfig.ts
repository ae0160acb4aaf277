/**
 * The mux's JSON configuration: one Schema, decoded into the same policy
 * values code composes (`Policy`), with every problem reported at once.
 *
 * The aws-samples multiplexer's shape decodes unchanged: a bare array of
 * `{ modelId, weight, isFallback }`, or `{ models, defaultTimeoutMs,
 * maxRetries }` (`maxRetries` n means n + 1 attempts).
 *
 * Checks beyond the field types, each reported with its path and the allowed
 * range: a duplicate model (same `modelId` and `client`), no primary (no
 * tier-0 model with weight > 0), `isFallback: true` with `tier: 0`, an
 * attempt timeout (global or per model) longer than the deadline,
 * `cooldownMax` shorter than `cooldown`, a route naming an unknown model.
 * An unknown `client` key is reported when the layer is built (the clients
 * are not part of the JSON).
 *
 * Durations are milliseconds or Effect duration strings ("30 seconds").
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
 *   breaker: { failures: 3, cooldown: "10 seconds" }
 * })
 * ```
 * @since 0.1.0
 */
import { Duration, Effect, Result, Schema } from "effect"
import * as BedrockError from "./BedrockError.ts"
import {
  DurationInput,
  NonNegative,
  NonNegativeInt,
  PositiveInt,
  Probability,
  type Problem,
  problemsOf
} from "./internal/schema.ts"
import * as Policy from "./Policy.ts"

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
  escalate: Schema.optionalKey(Schema.Literals(["priority", "reserved"]))
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
  selection: Schema.optionalKey(Schema.Literals(["weighted", "ordered"])),
  waitForRecovery: Schema.optionalKey(Schema.Boolean),
  // optionalKey: a finite-literal-key record otherwise requires every reason tag
  decisions: Schema.optionalKey(Schema.Record(Schema.Literals(BedrockError.reasonTags), Schema.optionalKey(Decision))),
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
 * One model of the pool, decoded.
 * @since 0.1.0
 */
export interface Model {
  /** `client:modelId`, or `modelId` without a client: the key of its breaker and stats */
  readonly target: string
  readonly modelId: string
  readonly tier: number
  readonly weight: number
  readonly timeout: Duration.Duration | undefined
  readonly contextWindow: number | undefined
  readonly labels: ReadonlyArray<string>
  readonly client: string | undefined
  /** client-side quota of this target (requests / tokens per minute) */
  readonly rpm: number | undefined
  readonly tpm: number | undefined
  /** tokens reserved for the output when a request sets no maxTokens */
  readonly maxTokens: number
  /** on a throttle, try once more at this service tier before failing over */
  readonly escalate: "priority" | "reserved" | undefined
}

/**
 * Per-tenant limits.
 * @since 0.1.0
 */
export interface TenantLimits {
  readonly rpm?: number | undefined
  readonly tpm?: number | undefined
}

/**
 * How long a throttled target stays out, by throttle kind (a `retry-after`
 * from Bedrock wins when it is longer).
 * @since 0.1.0
 */
export interface Cooldowns {
  readonly requests: Duration.Duration
  readonly tokens: Duration.Duration
  readonly daily: Duration.Duration
  readonly unknown: Duration.Duration
}

/** @since 0.1.0 */
export const defaultCooldowns: Cooldowns = {
  requests: Duration.seconds(10),
  tokens: Duration.seconds(30),
  daily: Duration.hours(1),
  unknown: Duration.seconds(10)
}

/** The output reservation when neither the request nor the model says (Bedrock reserves the model's maximum). @since 0.1.0 */
export const DEFAULT_MAX_TOKENS = 4_096

/**
 * The decoded config: the pool, the policy, the routes.
 * @since 0.1.0
 */
export interface MuxConfig {
  /** namespace of this mux's keys in a shared store */
  readonly name: string
  readonly models: ReadonlyArray<Model>
  readonly policy: Policy.Policy
  /** label → indexes into `models` */
  readonly routes: ReadonlyMap<string, ReadonlyArray<number>>
  readonly onStoreError: "allow" | "fail"
  /** limits by tenant key */
  readonly tenants: ReadonlyMap<string, TenantLimits>
  /** limits of a tenant not listed in `tenants` (none: unlimited) */
  readonly defaultTenant: TenantLimits | undefined
  readonly cooldowns: Cooldowns
  /** record prompts and responses on the request spans (`gen_ai.input.messages` / `gen_ai.output.messages`); off by default */
  readonly captureBodies: boolean
}

/**
 * A config that failed to decode or check, with every problem.
 * @since 0.1.0
 */
export class MuxConfigError extends Schema.TaggedError<MuxConfigError>()("MuxConfigError", {
  problems: Schema.Array(Schema.Struct({ path: Schema.String, message: Schema.String }))
}) {
  override get message(): string {
    return `Invalid mux config (${this.problems.length} problem${this.problems.length === 1 ? "" : "s"}):\n${
      this.problems.map((p) => `  ${p.path}: ${p.message}`).join("\n")
    }`
  }
}

const ms = Duration.toMillis

/** What the cross-field checks read: decoded fields, or what could be salvaged of a config that failed to decode. */
type Checked = Omit<Fields, "models"> & { readonly models: ReadonlyArray<Partial<typeof ModelEntry.Type>> }

/** Cross-field checks on decoded fields; every problem, in order. Pure. */
const check = (f: Checked): Array<Problem> => {
  const problems: Array<Problem> = []
  const seen = new Map<string, number>()
  let primary = false
  const deadline = f.deadline ?? Policy.defaults.deadline
  const timeout = f.timeout ?? f.defaultTimeoutMs ?? Policy.defaults.timeout
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
    if (m.timeout !== undefined && ms(m.timeout) > ms(deadline)) {
      problems.push({
        path: `models[${i}].timeout`,
        message: `attempt timeout ${ms(m.timeout)} ms is longer than the deadline ${ms(deadline)} ms; allowed: 0 < timeout <= deadline`
      })
    }
  })
  if (!primary) {
    problems.push({
      path: "models",
      message: "no primary model: at least one model needs tier 0 (isFallback false) and weight > 0"
    })
  }
  if (ms(timeout) > ms(deadline)) {
    problems.push({
      path: f.timeout !== undefined ? "timeout" : "defaultTimeoutMs",
      message: `attempt timeout ${ms(timeout)} ms is longer than the deadline ${ms(deadline)} ms; allowed: 0 < timeout <= deadline`
    })
  }
  if (f.attempts !== undefined && f.maxRetries !== undefined && f.attempts !== f.maxRetries + 1) {
    problems.push({ path: "maxRetries", message: `maxRetries ${f.maxRetries} contradicts attempts ${f.attempts}; give one of them` })
  }
  const b = f.breaker
  if (b !== undefined) {
    const cooldown = b.cooldown ?? Policy.defaultBreaker.cooldown
    const cooldownMax = b.cooldownMax ?? Policy.defaultBreaker.cooldownMax
    if (ms(cooldownMax) < ms(cooldown)) {
      problems.push({
        path: "breaker.cooldownMax",
        message: `cooldownMax ${ms(cooldownMax)} ms is shorter than cooldown ${ms(cooldown)} ms; allowed: cooldownMax >= cooldown`
      })
    }
  }
  for (const key of ["firstTokenTimeout", "stallTimeout"] as const) {
    const d = f.stream?.[key]
    if (d !== undefined && ms(d) <= 0) {
      problems.push({ path: `stream.${key}`, message: `${key} must be positive; allowed: 0 < ${key}` })
    }
  }
  const after = f.stream?.hedge?.after
  if (after !== undefined && after !== "p95" && ms(after) <= 0) {
    problems.push({ path: "stream.hedge.after", message: "hedge.after must be positive or \"p95\"; allowed: 0 < after" })
  }
  for (const [label, ids] of Object.entries(f.routes ?? {})) {
    ids.forEach((id, j) => {
      if (!f.models.some((m) => m.modelId === id || `${m.client}:${m.modelId}` === id)) {
        problems.push({ path: `routes.${label}[${j}]`, message: `unknown model "${id}"; allowed: a modelId of models[]` })
      }
    })
  }
  return problems
}

const tierOf = (m: { readonly tier?: number; readonly isFallback?: boolean }): number =>
  m.tier ?? (m.isFallback === true ? 1 : 0)

const toConfig = (f: Fields): MuxConfig => {
  const models: Array<Model> = f.models.map((m) => ({
    target: m.client === undefined ? m.modelId : `${m.client}:${m.modelId}`,
    modelId: m.modelId,
    tier: tierOf(m),
    weight: m.weight ?? 1,
    timeout: m.timeout,
    contextWindow: m.contextWindow,
    labels: m.labels ?? [],
    client: m.client,
    rpm: m.rpm,
    tpm: m.tpm,
    maxTokens: m.maxTokens ?? DEFAULT_MAX_TOKENS,
    escalate: m.escalate
  }))
  const routes = new Map<string, Array<number>>()
  const add = (label: string, index: number) => {
    const list = routes.get(label) ?? []
    if (!list.includes(index)) list.push(index)
    routes.set(label, list)
  }
  for (const [label, ids] of Object.entries(f.routes ?? {})) {
    for (const id of ids) {
      models.forEach((m, i) => {
        if (m.modelId === id || m.target === id) add(label, i)
      })
    }
  }
  models.forEach((m, i) => m.labels.forEach((label) => add(label, i)))
  let classification = Policy.defaultClassification
  for (const [tag, decision] of Object.entries(f.decisions ?? {})) {
    classification = Policy.override(tag as BedrockError.ReasonTag, decision as Partial<BedrockError.Decision>)(classification)
  }
  const b = f.breaker ?? {}
  const policy = Policy.make({
    attempts: f.attempts ?? (f.maxRetries !== undefined ? f.maxRetries + 1 : Policy.defaults.attempts),
    timeout: f.timeout ?? f.defaultTimeoutMs ?? Policy.defaults.timeout,
    deadline: f.deadline ?? Policy.defaults.deadline,
    breaker: Policy.breaker(b),
    selection: f.selection === "ordered" ? Policy.ordered : Policy.weighted,
    classification,
    backoff: f.backoff === undefined ? undefined : Policy.exponentialBackoff(f.backoff),
    waitForRecovery: f.waitForRecovery ?? false
  })
  const st = f.stream ?? {}
  const streamed = Policy.withStreaming({
    ...(st.firstTokenTimeout !== undefined ? { firstToken: st.firstTokenTimeout } : {}),
    ...(st.stallTimeout !== undefined ? { stall: st.stallTimeout } : {}),
    ...(st.metadataGrace !== undefined ? { metadataGrace: st.metadataGrace } : {}),
    ...(st.onInterrupt !== undefined ? { onInterrupt: st.onInterrupt } : {}),
    ...(st.hedge !== undefined ? { hedge: Policy.hedge(st.hedge) } : {})
  })(policy)
  const c = f.cooldowns ?? {}
  return {
    name: f.name ?? "default",
    models,
    policy: streamed,
    routes,
    onStoreError: f.onStoreError ?? "allow",
    captureBodies: f.captureBodies ?? false,
    tenants: new Map(Object.entries(f.tenants ?? {})),
    defaultTenant: f.defaultTenant,
    cooldowns: {
      requests: c.requests ?? defaultCooldowns.requests,
      tokens: c.tokens ?? defaultCooldowns.tokens,
      daily: c.daily ?? defaultCooldowns.daily,
      unknown: c.unknown ?? defaultCooldowns.unknown
    }
  }
}

const decodeFields = Schema.decodeUnknownResult(Fields)

/** Decodes each field of `fields` found in `raw` on its own, leaving out those that do not decode. */
const fieldwise = (fields: Schema.Struct.Fields, raw: unknown, skip: ReadonlyArray<string> = []): Record<string, unknown> => {
  const out: Record<string, unknown> = {}
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return out
  for (const key of Object.keys(fields)) {
    if (skip.includes(key) || !(key in raw)) continue
    const one = Schema.Struct({ [key]: fields[key]! }) as unknown as Schema.Decoder<Record<string, unknown>>
    const r = Schema.decodeUnknownResult(one)({ [key]: (raw as Record<string, unknown>)[key] })
    if (Result.isSuccess(r)) Object.assign(out, r.success)
  }
  return out
}

/**
 * What can be read of a config that failed to decode (each field on its own,
 * models and breaker field by field, the fields that do not decode left
 * out), so that the cross-field checks still run and one error lists every
 * problem. Undefined when there is no list of models to check.
 */
const salvage = (input: unknown): Checked | undefined => {
  if (typeof input !== "object" || input === null || !Array.isArray((input as { models?: unknown }).models)) return undefined
  const raw = input as { readonly models: ReadonlyArray<unknown>; readonly breaker?: unknown }
  const top = fieldwise(Fields.fields, raw, ["models", "breaker"])
  const models = raw.models.map((m) => fieldwise(ModelEntry.fields, m) as Partial<typeof ModelEntry.Type>)
  return {
    ...top,
    models,
    ...("breaker" in raw ? { breaker: fieldwise(BreakerFields.fields, raw.breaker) } : {})
  } as Checked
}

/**
 * Decodes and checks a config, reporting every problem.
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
  const result = decodeFields(fields, { errors: "all" })
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
 * The JSON config as a `Schema` of its own (for `Config.schema` and tools).
 * @since 0.1.0
 */
export const schema = Fields
