/**
 * Prices and cost: a price table per model (USD per 1 000 input and output
 * tokens), the cost of a call, and the upper-bound estimate of a run.
 *
 * The table of a run is the current config's `models[].price` with the
 * run's own `prices` over it (a model in both: the run's); the next config
 * carries it in its `models[].price`.
 *
 * The estimate bounds each call that is not cached:
 * - input: the UTF-8 byte count of the system prompt and messages (a token
 *   covers at least one byte), plus 16 tokens per message and for the system
 *   prompt (an allowance for the chat template);
 * - output: the call's `maxTokens`, which Bedrock never exceeds;
 * - a judged case adds one judge call: its question (rubric, prompt, the
 *   judge's instructions) bounded the same way, and the judge's own
 *   `maxTokens` out. When the candidate's answer is cached, the question is
 *   known whole and bounded by its bytes. When it is not, the answer is at
 *   most the candidate's `maxTokens` tokens of the CANDIDATE's tokenizer,
 *   and nothing bounds how many tokens of the judge's tokenizer that text
 *   is; the estimate assumes at most `JUDGE_TOKENS_PER_ANSWER_TOKEN` (2) per
 *   token. That part is an assumption, not a guarantee: a rerun with the
 *   answers cached bounds it by bytes.
 * Calls that fail are not charged by Bedrock, so the bound counts one call
 * per (model, case); an attempt aborted after the model started generating
 * (a timeout, a cut stream) can bill and is not in the bound.
 */
import { Schema } from "effect"
import { NonNegative } from "../schema.ts"
import type * as Model from "../../Model.ts"

/** USD per 1 000 tokens: the mux's own `Model.Price`. */
export type Price = Model.Price

/** A price table: model id → `{ input, output }` in USD per 1 000 tokens. */
export const Prices = Schema.Record(Schema.String, Schema.Struct({ input: NonNegative, output: NonNegative }))
export type Prices = typeof Prices.Type

/** The prices a config's models carry, by model id (the first priced entry of a model id on several clients). */
export const pricesOfModels = (models: ReadonlyArray<Model.Model>): Prices => {
  const out: Record<string, Price> = {}
  for (const m of models) if (m.price !== undefined && !Object.hasOwn(out, m.modelId)) out[m.modelId] = { input: m.price.input, output: m.price.output }
  return out
}

/** The cost of a call, or undefined without a price. */
export const costOf = (price: Price | undefined, inputTokens: number, outputTokens: number): number | undefined =>
  price === undefined ? undefined : (inputTokens * price.input + outputTokens * price.output) / 1000

/** Tokens of the chat template per message (and for a system prompt), in the bound. */
export const TEMPLATE_TOKENS = 16

const encoder = new TextEncoder()

/** The bound on input tokens of a request: UTF-8 bytes plus the template allowance. */
export const inputTokenBound = (system: string | undefined, texts: ReadonlyArray<string>): number => {
  let bytes = system === undefined ? 0 : encoder.encode(system).length + TEMPLATE_TOKENS
  for (const t of texts) bytes += encoder.encode(t).length + TEMPLATE_TOKENS
  return bytes
}

/**
 * The judge tokens assumed per token of a candidate's answer, when the
 * answer is not known yet: the margin between two models' tokenizers on the
 * same text (an assumption, see above).
 */
export const JUDGE_TOKENS_PER_ANSWER_TOKEN = 2

/** The judge input tokens assumed for an answer not known yet, of at most `maxTokens` candidate tokens. */
export const answerTokenBound = (maxTokens: number): number => JUDGE_TOKENS_PER_ANSWER_TOKEN * maxTokens
