/**
 * The facade's `refusalDetection` option as a `Policy.withRefusal` value.
 *
 * - `enabled` with `retryOnRefusal` not false: every Converse answer is
 *   scored; a refusal fails its attempt over (reason `Refused`). With
 *   `retryOnRefusal: false` nothing is scored, as in the original (which
 *   classifies only when it would retry).
 * - The classifier: `classifier` (a function, or a `Refusal.Classifier`),
 *   else an ONNX model at `modelPath` (loaded once, when the multiplexer is
 *   built), else the heuristic.
 * - `observe` wraps the classifier so that the facade's
 *   `refusal-classification` / `refusal-detected` events learn what was
 *   scored; it measures nothing unless someone listens.
 */
import { Clock, Effect } from "effect"
import * as Refusal from "../../Refusal.ts"
import type { Loaded } from "../refusal/onnx.ts"
import type { RefusalDetectionConfig } from "./model.ts"

/** Is refusal detection on (and does it fail over)? */
export const isOn = (config: RefusalDetectionConfig | undefined): config is RefusalDetectionConfig =>
  config?.enabled === true && config.retryOnRefusal !== false

/** The attempt an answer belongs to, when the core says (`score(text, attempt)`). */
export interface ScoredAttempt {
  readonly requestId: string
  readonly modelId: string
  readonly target: string
}

/** The classifier the option names; `onnx` is the model being loaded when it names a `modelPath`. */
export const classifierOf = (config: RefusalDetectionConfig, onnx: Promise<Loaded> | undefined): Refusal.Classifier => {
  const c = config.classifier
  if (typeof c === "function") return Refusal.fromPromise("custom", c)
  if (c !== undefined) return c as Refusal.Classifier
  if (onnx !== undefined) return Refusal.fromPromise("onnx", async (text) => (await onnx).score(text))
  return Refusal.heuristic
}

/**
 * `inner`, telling `scored` what it found for an attempt (score, time taken
 * on the mux's Clock) while `listening()` says someone wants to know.
 */
export const observe = (
  inner: Refusal.Classifier,
  listening: () => boolean,
  scored: (attempt: ScoredAttempt, text: string, score: number, durationMs: number) => void
): Refusal.Classifier => ({
  name: inner.name,
  score: (text: string, attempt?: ScoredAttempt) =>
    attempt === undefined || !listening()
      ? inner.score(text)
      : Effect.withFiber((fiber) => {
        const clock = fiber.getRef(Clock.Clock)
        const t0 = clock.currentTimeMillisUnsafe()
        return Effect.map(inner.score(text), (score) => {
          scored(attempt, text, score, clock.currentTimeMillisUnsafe() - t0)
          return score
        })
      })
})
