/**
 * `Refusal`: scoring a model's answer as a refusal ("I'm sorry, but I can't
 * help with that"), so that a refusal counts as a failed attempt and the
 * request moves to another model (`Policy.withRefusal`).
 *
 * A `Classifier` scores a text in [0, 1] (it is `Policy.RefusalClassifier`);
 * the policy says at which score an answer is a refusal. Three classifiers
 * come with the library:
 * - `heuristic`: dependency-free refusal phrasings, the default;
 * - `onnx({ modelPath })`: an ONNX model through `onnxruntime-node`, an
 *   optional peer loaded by dynamic import only here (the aws-samples
 *   multiplexer's model contract: string `input` [1, 1], `probabilities`
 *   [1, 2]); nothing is downloaded;
 * - `fromPromise(name, f)`: your own scorer as a function (what the facade's
 *   `refusalDetection.classifier` takes).
 *
 * How it behaves (with `Policy.withRefusal`):
 * - A Converse answer scored at or above the threshold fails its attempt
 *   with `BedrockError` reason `Refused { score, classifier }`: the request
 *   fails over, the breaker does not count it, `ModelHealth.refusals` and the
 *   `Refused` event record it.
 * - A classifier never fails a request: a scorer that throws, rejects or
 *   returns something outside [0, 1] logs a warning (classifier name and
 *   error, never the text) and scores 0 (not a refusal) or the clamped value.
 * - `textOf` is an answer's text as the aws-samples multiplexer scores it:
 *   its text blocks joined by a space.
 *
 * Gotchas:
 * - The heuristic reads English phrasings. For other languages, or for
 *   refusals that do not use stock phrases, give a model.
 * - A streamed answer can only be scored after it has content: streams are
 *   checked only with `holdBack` > 0, which holds that many characters back
 *   before the commit point (the caller sees the first token later).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Policy, Refusal } from "effect-bedrock-mux"
 *
 * const score = Refusal.heuristic.score("I'm sorry, but I can't help with that.") // Effect<number>, ~0.95
 * // fail over on a refusal; hold back the first 200 characters of a stream to check it too
 * const withRefusals = Policy.withRefusal({ classifier: Refusal.heuristic, threshold: 0.6, holdBack: 200 })
 * ```
 *
 * @since 0.1.0
 */
import type { ConverseCommandOutput } from "@aws-sdk/client-bedrock-runtime"
import { Data, Effect, type Scope } from "effect"
import type { RefusalClassifier } from "./Policy.ts"
import * as Heuristic from "./internal/refusal/heuristic.ts"
import * as Onnx from "./internal/refusal/onnx.ts"

/**
 * Scores a text: 0 is an answer, 1 a refusal. The same interface as
 * `Policy.RefusalClassifier`, which `Policy.withRefusal` takes.
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { Refusal } from "effect-bedrock-mux"
 * const never: Refusal.Classifier = { name: "never", score: () => Effect.succeed(0) }
 * ```
 * @since 0.1.0
 */
export type Classifier = RefusalClassifier

/**
 * A classifier that could not be built (the ONNX runtime or the model file
 * is missing or unreadable).
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Refusal } from "effect-bedrock-mux"
 * Refusal.onnx({ modelPath: "missing.onnx" }).pipe(Effect.catchTag("RefusalClassifierError", (e) => Effect.logWarning(e.message)))
 * ```
 * @since 0.1.0
 */
export class RefusalClassifierError extends Data.TaggedError("RefusalClassifierError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

/** Keeps a score in [0, 1]; a non-number is 0. Logs what it fixes. */
const checked = (name: string, score: unknown): Effect.Effect<number> => {
  if (typeof score === "number" && score >= 0 && score <= 1) return Effect.succeed(score)
  const fixed = typeof score === "number" && !Number.isNaN(score) ? Math.min(1, Math.max(0, score)) : 0
  return Effect.as(Effect.logWarning(`refusal classifier "${name}" returned ${String(score)}; using ${fixed}`), fixed)
}

/**
 * The dependency-free classifier: refusal phrasings ("I'm sorry, but I
 * can't", "I must decline", "as an AI, I cannot", "against my guidelines"),
 * weighted, discounted when late in a long answer, with idioms such as "I
 * can't wait" or "I can't help but" left out.
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Refusal } from "effect-bedrock-mux"
 * Effect.runSync(Refusal.heuristic.score("I can't wait to help you plan the trip!")) // 0
 * ```
 * @since 0.1.0
 */
export const heuristic: Classifier = {
  name: "heuristic",
  score: (text) => Effect.sync(() => Heuristic.score(text))
}

/**
 * A classifier from a function (sync or async) returning a score in [0, 1],
 * e.g. a call to your own moderation service. A throw or rejection scores 0
 * (logged, without the text).
 * @example
 * ```ts
 * import { Refusal } from "effect-bedrock-mux"
 * const c = Refusal.fromPromise("keywords", async (text) => (/\bdecline\b/i.test(text) ? 0.9 : 0.1))
 * ```
 * @since 0.1.0
 */
export const fromPromise = (name: string, score: (text: string) => number | PromiseLike<number>): Classifier => ({
  name,
  score: (text) =>
    Effect.tryPromise(async () => await score(text)).pipe(
      Effect.matchEffect({
        onFailure: (e) => Effect.as(Effect.logWarning(`refusal classifier "${name}" failed: ${String(e.cause ?? e)}`), 0),
        onSuccess: (s) => checked(name, s)
      })
    )
})

/**
 * The ONNX classifier: loads `onnxruntime-node` (an optional peer) and the
 * model at `modelPath`, and releases the session when the scope closes. The
 * model takes the raw text (`input`, a string tensor [1, 1]) and gives
 * `probabilities` [1, 2] (index 1: refused) or a `label` ("rejected").
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Refusal } from "effect-bedrock-mux"
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const classifier = yield* Refusal.onnx({ modelPath: "models/refusal_classifier.onnx" })
 *   return yield* classifier.score("I must decline.")
 * }))
 * ```
 * @since 0.1.0
 */
export const onnx = (options: Onnx.OnnxOptions & { readonly name?: string }): Effect.Effect<Classifier, RefusalClassifierError, Scope.Scope> =>
  Onnx.acquire(options).pipe(
    Effect.mapError((e) => new RefusalClassifierError({ message: e.message, cause: e })),
    Effect.map((loaded) => fromPromise(options.name ?? "onnx", loaded.score))
  )

/** Where an ONNX model's refusal score is read. @since 0.1.0 */
export type OnnxOptions = Onnx.OnnxOptions

/**
 * A Converse answer's text: its text blocks, joined by a space.
 * @example
 * ```ts
 * import { Refusal } from "effect-bedrock-mux"
 * Refusal.textOf({ output: { message: { role: "assistant", content: [{ text: "a" }, { text: "b" }] } } }) // "a b"
 * ```
 * @since 0.1.0
 */
export const textOf = (output: Pick<ConverseCommandOutput, "output">): string =>
  (output.output?.message?.content ?? []).flatMap((b) => (b.text !== undefined ? [b.text] : [])).join(" ")
