/**
 * `Model`: one entry of a pool, as configured. The same value comes out of
 * the JSON config (`models[]`) and out of `Model.make` in code.
 *
 * A model is identified by its `target`: `client:modelId`, or `modelId` when
 * it uses the default client. Breakers, cooldowns, quotas and stats are kept
 * per target, so the same model id behind two clients (two Regions or
 * accounts) is two pool entries.
 *
 * Gotchas:
 * - `tier` only says where `Route.fromModels` (and the JSON config) puts the
 *   model; in a composed route (`Route.orElse`) its position is what counts.
 * - `maxTokens` is what a quota reserves for the answer when the request does
 *   not set `inferenceConfig.maxTokens` (Bedrock reserves the model's
 *   maximum); it is never sent to Bedrock.
 *
 * @since 0.1.0
 */
import { Duration } from "effect"

/**
 * A pool entry.
 * @since 0.1.0
 */
export interface Model {
  /** `client:modelId`, or `modelId` without a client: the key of its breaker, cooldown, quota and stats */
  readonly target: string
  readonly modelId: string
  /** 0 is primary; 1 and up are fallback tiers, used only when every lower tier is out */
  readonly tier: number
  /** share of traffic within its tier (0: in the pool, but sent no traffic) */
  readonly weight: number
  /** attempt timeout for this model (default: the policy's) */
  readonly timeout: Duration.Duration | undefined
  /** lets a context-window error fail over to a model with a larger window */
  readonly contextWindow: number | undefined
  /** route labels this model serves */
  readonly labels: ReadonlyArray<string>
  /** key into `BedrockRuntimes` (another Region or account); undefined: the default client */
  readonly client: string | undefined
  /** client-side quota of this target: requests / tokens per sliding minute */
  readonly rpm: number | undefined
  readonly tpm: number | undefined
  /** output tokens a quota reserves when a request sets no `inferenceConfig.maxTokens` */
  readonly maxTokens: number
  /** on a throttle, try once more at this service tier before failing over */
  readonly escalate: "priority" | "reserved" | undefined
  /** USD per 1,000 tokens, for cost-aware selection and evaluation reports */
  readonly price: Price | undefined
}

/**
 * A price per 1,000 tokens, input and output.
 * @since 0.1.0
 */
export interface Price {
  readonly input: number
  readonly output: number
}

/**
 * A model as written: every field but `modelId` optional.
 * @since 0.1.0
 */
export interface Input {
  readonly modelId: string
  readonly tier?: number
  readonly isFallback?: boolean
  readonly weight?: number
  readonly timeout?: Duration.Input
  readonly contextWindow?: number
  readonly labels?: ReadonlyArray<string>
  readonly client?: string
  readonly rpm?: number
  readonly tpm?: number
  readonly maxTokens?: number
  readonly escalate?: "priority" | "reserved"
  readonly price?: Price
}

/** The output reservation when neither the request nor the model says (Bedrock reserves the model's maximum). @since 0.1.0 */
export const DEFAULT_MAX_TOKENS = 4_096

/**
 * A model from partial input: weight 1, tier 0 (1 with `isFallback`), the
 * policy's timeout, a 4,096-token output reservation.
 *
 * @example
 * ```ts
 * import { Model } from "effect-bedrock-mux"
 * const nova = Model.make({ modelId: "us.amazon.nova-2-lite-v1:0", weight: 100, timeout: "20 seconds" })
 * ```
 * @since 0.1.0
 */
export const make = (input: Input): Model => ({
  target: input.client === undefined ? input.modelId : `${input.client}:${input.modelId}`,
  modelId: input.modelId,
  tier: input.tier ?? (input.isFallback === true ? 1 : 0),
  weight: input.weight ?? 1,
  timeout: input.timeout === undefined ? undefined : Duration.fromInputUnsafe(input.timeout),
  contextWindow: input.contextWindow,
  labels: input.labels ?? [],
  client: input.client,
  rpm: input.rpm,
  tpm: input.tpm,
  maxTokens: input.maxTokens ?? DEFAULT_MAX_TOKENS,
  escalate: input.escalate,
  price: input.price
})

/**
 * Is `u` an already built `Model` (not an `Input`)?
 * @example
 * ```ts
 * import { Model } from "effect-bedrock-mux"
 * Model.isModel(Model.make({ modelId: "m" })) // true
 * ```
 * @since 0.1.0
 */
export const isModel = (u: Input | Model): u is Model =>
  "target" in u && typeof u.target === "string" && "maxTokens" in u && "labels" in u && "price" in u
