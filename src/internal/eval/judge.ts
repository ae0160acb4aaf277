/**
 * LLM-as-judge: the question put to the judge model, and the parser that
 * reads a score out of whatever it answers. Pure.
 *
 * The judge is asked for a last line `SCORE: n`, n an integer from 0 to 10.
 * The parser is lenient about form and strict about meaning:
 * - it strips Markdown emphasis and reads the LAST `score` mention
 *   (`SCORE: 8`, `**Score:** 8/10`, `Final score = 4 out of 5`), since judges
 *   often restate a provisional score before the final one;
 * - failing that, the last JSON object with a numeric `score` field;
 * - failing that, an answer that is only a number (`7`, `7/10`);
 * - a number is on the 0–10 scale unless the answer gives its own
 *   denominator (`4/5`, `4 out of 5`); a score outside its scale, a missing
 *   score, or `N/A` is a failure with the reason, never a guess.
 */
import { Result } from "effect"

/** The judge's instructions (the system prompt). */
export const JUDGE_SYSTEM = [
  "You grade an answer against a rubric. Be strict and consistent: judge only what the rubric asks.",
  "Reply with one or two sentences of justification, then a last line `SCORE: n`,",
  "where n is an integer from 0 (does not meet the rubric at all) to 10 (fully meets it)."
].join(" ")

/** The question for one answer. */
export const judgePrompt = (input: {
  readonly rubric: string
  readonly prompt: string
  readonly system: string | undefined
  readonly answer: string
}): string =>
  [
    "RUBRIC:",
    input.rubric,
    "",
    ...(input.system === undefined ? [] : ["SYSTEM PROMPT GIVEN TO THE MODEL:", input.system, ""]),
    "PROMPT:",
    input.prompt,
    "",
    "ANSWER:",
    input.answer
  ].join("\n")

const NUMBER = String.raw`([-+]?\d+(?:\.\d+)?)`
const SCALE = String.raw`(?:\s*(?:\/|out\s+of)\s*(\d+(?:\.\d+)?))?`
const SCORE_MENTION = new RegExp(String.raw`\bscore\b\s*(?:is|of|=|:)?\s*(?:(?:is|of|=|:)\s*)?${NUMBER}${SCALE}`, "gi")
const ONLY_NUMBER = new RegExp(String.raw`^${NUMBER}${SCALE}\.?$`, "i")

const scaled = (value: number, scale: number | undefined, what: string): Result.Result<number, string> => {
  const max = scale ?? 10
  if (!(max > 0)) return Result.fail(`${what}: the scale ${max} is not positive`)
  if (value < 0 || value > max) return Result.fail(`${what}: ${value} is outside 0–${max}`)
  return Result.succeed(value / max)
}

const jsonScores = (text: string): Array<number> => {
  const found: Array<number> = []
  for (const m of text.matchAll(/\{[^{}]*\}/g)) {
    try {
      const parsed: unknown = JSON.parse(m[0])
      const score = typeof parsed === "object" && parsed !== null ? (parsed as { score?: unknown }).score : undefined
      if (typeof score === "number" && Number.isFinite(score)) found.push(score)
    } catch {
      // not JSON: not a score
    }
  }
  return found
}

const excerpt = (text: string): string => {
  const one = text.replace(/\s+/g, " ").trim()
  return one.length > 80 ? `${one.slice(0, 77)}...` : one
}

/**
 * The score in [0, 1] a judge's answer gives, or why none can be read.
 *
 * @example
 * ```ts
 * parseJudgeScore("Clear and correct.\nSCORE: 8")   // Result.succeed(0.8)
 * parseJudgeScore("**Score:** 4/5")                // Result.succeed(0.8)
 * parseJudgeScore("I cannot grade this.")          // Result.fail("no score in the judge's answer: ...")
 * ```
 */
export const parseJudgeScore = (answer: string): Result.Result<number, string> => {
  const text = answer.replace(/[*_`]/g, "")
  const mentions = [...text.matchAll(SCORE_MENTION)]
  const last = mentions.at(-1)
  if (last !== undefined) {
    return scaled(Number(last[1]), last[2] === undefined ? undefined : Number(last[2]), `judge score "${excerpt(last[0])}"`)
  }
  const json = jsonScores(text).at(-1)
  if (json !== undefined) return scaled(json, undefined, "judge score (JSON)")
  const only = ONLY_NUMBER.exec(text.trim())
  if (only !== null) return scaled(Number(only[1]), only[2] === undefined ? undefined : Number(only[2]), "judge score")
  return Result.fail(`no score in the judge's answer: "${excerpt(answer)}"`)
}
