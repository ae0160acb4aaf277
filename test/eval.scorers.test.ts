// The golden set's decoding, the built-in scorers (properties), the JSON
// Schema subset, the judge's score parser and the simulator's per-prompt
// answers in a script.
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Result, Schema } from "effect"
import fc from "fast-check"
import * as Eval from "../src/Eval.ts"
import * as SimulatorScript from "../src/SimulatorScript.ts"

const line = (o: Record<string, unknown>) => JSON.stringify(o)
const golden = (...lines: ReadonlyArray<string>) => lines.join("\n")

const problemsOf = (text: string, scorers?: ReadonlyArray<Eval.Scorer<any, any>>) =>
  Effect.gen(function*() {
    const error = yield* Effect.flip(Eval.decodeGolden(text, scorers))
    assert.strictEqual(error._tag, "GoldenError")
    return error.problems.map((p) => `${p.line} ${p.path}: ${p.message}`)
  })

/** A case for scoring one answer with one expectation, decoded the way the golden set decodes it. */
const score = (expect: Record<string, unknown>, answer: string) =>
  Effect.gen(function*() {
    const g = yield* Eval.decodeGolden(line({ id: "x", prompt: "p", expect }))
    const c = g.cases[0]!
    const e = c.expect[0]!
    const s = Eval.builtins.find((b) => b.name === e.scorer)!
    return yield* s.score(e.expected, { answer, case: c, judge: undefined })
  })

const run = <A, E>(effect: Effect.Effect<A, E>) => Effect.runSync(effect)

describe("golden set", () => {
  it.effect("a good set decodes: prompt or messages, system, weight, tags, inferenceConfig, several expectations", () =>
    Effect.gen(function*() {
      const g = yield* Eval.decodeGolden(golden(
        line({ id: "a", prompt: "What is 2+2?", expect: { number: 4, contains: "4" }, tags: ["math"], weight: 2 }),
        "",
        line({
          id: "b",
          system: "Be brief.",
          messages: [{ role: "user", content: "Hi" }, { role: "assistant", content: [{ text: "Hello" }] }, { role: "user", content: "Capital of France?" }],
          expect: { regex: { pattern: "paris", flags: "i" } },
          inferenceConfig: { maxTokens: 64, temperature: 0 }
        })
      ))
      assert.deepStrictEqual(g.cases.map((c) => [c.id, c.line, c.weight, c.tags, c.prompt]), [
        ["a", 1, 2, ["math"], "What is 2+2?"],
        ["b", 3, 1, [], "Capital of France?"]
      ])
      assert.deepStrictEqual(g.cases[0]!.expect.map((e) => e.scorer), ["number", "contains"])
      assert.deepStrictEqual(g.cases[1]!.messages.map((m) => m.role), ["user", "assistant", "user"])
      assert.deepStrictEqual(g.cases[1]!.inferenceConfig, { maxTokens: 64, temperature: 0 })
    }))

  it.effect("every problem of every line, with its line number and path", () =>
    Effect.gen(function*() {
      const problems = yield* problemsOf(golden(
        line({ id: "a", prompt: "hi", expect: { contains: "x" } }),
        line({ id: "a", prompt: "hi", expect: { contains: ["x", ""] }, colour: "red" }),
        line({ prompt: "hi", messages: [{ role: "assistant", content: "x" }], expect: {} }),
        "{not json",
        line({
          id: "d",
          prompt: "hi",
          expect: {
            regex: "a(b",
            json: { type: "object", pattern: "x", properties: { n: { type: "strin" } } },
            number: { value: 1, tol: 2 },
            judge: { rubric: "ok", pass: 2 },
            bogus: 1
          }
        }),
        line({ id: "e", prompt: "", weight: 0, tags: ["ok", ""], expect: { exact: 3 } }),
        line({ id: "f", prompt: "hi", promt: "hi", expect: { regex: { pattern: "x", flags: "g" } } })
      ))
      const has = (prefix: string) => assert.isTrue(problems.some((p) => p.startsWith(prefix)), `${prefix} in\n${problems.join("\n")}`)
      has("2 colour: unknown key; allowed: `id`, `prompt`, `messages`")
      has("2 expect.contains[1]: ")
      has("2 id: duplicate id \"a\" (also on line 1)")
      has("3 id: Missing key")
      has("3 messages: Expected exactly one of `prompt` and `messages`")
      has("3 messages[0].role: Expected \"user\"")
      has("3 expect: Expected at least one expectation; allowed: exact, contains, regex, json, number, judge")
      has("4 (line): not valid JSON")
      has("5 expect.regex: Invalid regular expression")
      has("5 expect.json.pattern: unsupported JSON Schema keyword \"pattern\"")
      has("5 expect.json.properties.n.type: Expected one of object, array")
      has("5 expect.number.tol: unknown key; allowed: `value`, `tolerance`, `relative`")
      has("5 expect.judge.pass: Expected a value between 0 and 1")
      has("5 expect.bogus: unknown expectation \"bogus\"")
      has("6 prompt: ")
      has("6 weight: Expected a value greater than 0")
      has("6 tags[1]: ")
      has("6 expect.exact: ")
      has("7 promt: unknown key; did you mean `prompt`?")
      has("7 expect.regex: flags \"g\" are not allowed; allowed: i, m, s, u")
      assert.strictEqual(problems.filter((p) => p.startsWith("1 ")).length, 0, "line 1 is fine")
      assert.isAtLeast(problems.length, 19)
    }))

  it.effect("contains in object form: one clear problem on its line (an empty list, neither or both of all and any)", () =>
    Effect.gen(function*() {
      const ok = line({ id: "ok", prompt: "hi", expect: { contains: { any: ["x"] } } })
      const bad = (id: string, contains: unknown) => line({ id, prompt: "hi", expect: { contains } })
      assert.deepStrictEqual(
        yield* problemsOf(golden(
          ok,
          bad("a", { any: [] }),
          bad("b", { all: [], ignoreCase: true }),
          bad("c", {}),
          bad("d", { all: ["x"], any: ["y"] }),
          bad("e", { anny: ["x"] }),
          bad("f", { any: ["x"], ignoreCase: "yes" }),
          bad("g", [])
        )),
        [
          "2 expect.contains.any: must be non-empty: give at least one string",
          "3 expect.contains.all: must be non-empty: give at least one string",
          "4 expect.contains: Expected `all` or `any`: the strings the answer must all, or any one of, contain",
          "5 expect.contains: Expected one of `all` and `any`, not both",
          "6 expect.contains.anny: unknown key; did you mean `any`?",
          "7 expect.contains.ignoreCase: Expected boolean",
          "8 expect.contains: must be non-empty: give at least one string"
        ]
      )
    }))

  it.effect("an empty set is a problem; blank lines are not", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* problemsOf("\n\n  \n"), ["0 (file): no cases: the golden set is empty"])
    }))

  it.effect("the message lists every problem, one a line", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Eval.decodeGolden(golden(line({ id: "a", expect: { nope: 1 } }), "[]")))
      assert.match(error.message, /Invalid golden set \(3 problems\):\n {2}line 1, prompt: Expected exactly one/)
      assert.include(error.message, "line 1, expect.nope: unknown expectation")
      assert.include(error.message, "line 2, ")
    }))

  it.effect("your own scorer's key and argument schema take part in decoding", () =>
    Effect.gen(function*() {
      const maxWords = Eval.scorer({
        name: "maxWords",
        description: "at most n words",
        expectation: Schema.Int,
        score: (max: number, { answer }) => Effect.succeed({ score: answer.split(" ").length <= max ? 1 : 0, pass: answer.split(" ").length <= max })
      })
      const scorers = [...Eval.builtins, maxWords]
      const g = yield* Eval.decodeGolden(line({ id: "a", prompt: "p", expect: { maxWords: 5 } }), scorers)
      assert.deepStrictEqual(g.cases[0]!.expect, [{ scorer: "maxWords", expected: 5 }])
      const problems = yield* problemsOf(line({ id: "a", prompt: "p", expect: { maxWords: 1.5 } }), scorers)
      assert.match(problems[0]!, /^1 expect\.maxWords: Expected an integer/)
      // without it, the key is unknown
      assert.match((yield* problemsOf(line({ id: "a", prompt: "p", expect: { maxWords: 5 } })))[0]!, /unknown expectation "maxWords"/)
    }))
})

describe("scorers", () => {
  it("contains: any substring of the answer passes (and with ignoreCase, in any case)", () =>
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.nat(), fc.nat(), (answer, a, b) => {
        const from = a % answer.length
        const needle = answer.slice(from, from + 1 + (b % (answer.length - from)))
        const plain = run(score({ contains: needle }, answer))
        const folded = run(score({ contains: { all: [needle.toUpperCase()], ignoreCase: true } }, answer.toLowerCase()))
        const any = run(score({ contains: { any: ["\u0000never\u0000", needle] } }, answer))
        return plain.pass && plain.score === 1 && folded.pass && any.pass
      }),
      { seed: 13, numRuns: 200 }
    ))

  it("contains all: the score is the share of strings found", () => {
    const s = run(score({ contains: ["alpha", "beta", "gamma", "delta"] }, "alpha and gamma"))
    assert.deepStrictEqual([s.score, s.pass], [0.5, false])
    assert.include(s.detail!, "\"beta\"")
  })

  it("exact: the answer equals itself up to the ends' whitespace; anything appended fails", () =>
    fc.assert(
      fc.property(fc.string({ minLength: 1 }).filter((s) => s.trim() !== ""), fc.string({ minLength: 1 }).filter((s) => s.trim() !== ""), (answer, more) =>
        run(score({ exact: answer }, `  ${answer}\n`)).pass && !run(score({ exact: answer }, `${answer} ${more}`)).pass),
      { seed: 17, numRuns: 200 }
    ))

  it("regex: an escaped substring of the answer always matches", () =>
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.nat(), (answer, a) => {
        const needle = answer.slice(a % answer.length)
        const pattern = needle.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")
        return run(score({ regex: pattern }, answer)).pass
      }),
      { seed: 19, numRuns: 200 }
    ))

  it("number: any value within the tolerance passes, one outside fails", () =>
    fc.assert(
      fc.property(
        fc.integer({ min: -1_000_000, max: 1_000_000 }),
        fc.integer({ min: 0, max: 100 }),
        fc.integer({ min: 0, max: 100 }),
        (value, tolerance, off) => {
          const inside = value + Math.min(off, tolerance)
          const outside = value + tolerance + 1
          return run(score({ number: { value, tolerance } }, `The answer is ${inside}.`)).pass &&
            !run(score({ number: { value, tolerance } }, `The answer is ${outside}.`)).pass
        }
      ),
      { seed: 23, numRuns: 200 }
    ))

  it("number: the last number counts; thousands separators and relative tolerance", () => {
    assert.isTrue(run(score({ number: 1234.5 }, "Step 1: add. Step 2: the total is 1,234.5")).pass)
    assert.isFalse(run(score({ number: 2 }, "2 apples plus 3 apples make 5")).pass)
    assert.isTrue(run(score({ number: { value: 200, relative: 0.05 } }, "about 209")).pass)
    assert.isFalse(run(score({ number: { value: 200, relative: 0.05 } }, "about 211")).pass)
    assert.strictEqual(run(score({ number: 1 }, "none")).detail, "no number in the answer")
  })

  it("json: any JSON value passes `true`, plain or in a fence; text does not", () =>
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value)
        return run(score({ json: true }, text)).pass && run(score({ json: true }, "Here:\n```json\n" + text + "\n```")).pass
      }),
      { seed: 29, numRuns: 200 }
    ))

  it("json: a schema's violations are the detail", () => {
    const schema = { type: "object", required: ["item", "qty"], properties: { item: { type: "string" }, qty: { type: "integer", minimum: 1 } }, additionalProperties: false }
    assert.isTrue(run(score({ json: schema }, `{"item":"bike","qty":3}`)).pass)
    const bad = run(score({ json: schema }, `{"qty":0,"extra":true}`))
    assert.isFalse(bad.pass)
    assert.include(bad.detail!, "$: missing required property \"item\"")
    assert.include(bad.detail!, "$.qty: 0 is below the minimum 1")
    assert.include(bad.detail!, "$.extra: property not allowed")
    assert.match(run(score({ json: true }, "not json")).detail!, /^not JSON: /)
  })

  it.effect("judge without a judge model is a recorded failure", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(score({ judge: "polite" }, "hi"))
      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(score({ judge: "polite" }, "hi"))
      assert.deepStrictEqual([error._tag, error.message], ["ScoreFailure", "no judge model in this run"])
    }))
})

describe("JSON Schema subset", () => {
  const { check, validate } = Eval.jsonSchema

  it("validates type, properties, required, items, enum, const, bounds, lengths and additionalProperties", () => {
    const schema = {
      type: "object",
      required: ["name", "tags"],
      properties: {
        name: { type: "string", minLength: 2, maxLength: 5 },
        age: { type: ["integer", "null"], minimum: 0, maximum: 150 },
        tags: { type: "array", items: { enum: ["a", "b"] }, minItems: 1, maxItems: 2 },
        kind: { const: "person" }
      },
      additionalProperties: { type: "number" }
    }
    assert.deepStrictEqual(check(schema), [])
    assert.deepStrictEqual(validate(schema, { name: "Ada", age: null, tags: ["a"], kind: "person", score: 3 }), [])
    assert.deepStrictEqual(validate(schema, { name: "A", age: 1.5, tags: ["c", "a", "b"], kind: "cat", score: "x" }), [
      "$.name: length 1 is below minLength 2",
      "$.age: expected integer or null, got number",
      "$.tags: 3 items, above maxItems 2",
      "$.tags[0]: expected one of \"a\", \"b\", got \"c\"",
      "$.kind: expected \"person\", got \"cat\"",
      "$.score: expected number, got string"
    ])
    assert.deepStrictEqual(validate(schema, []), ["$: expected object, got array"])
    assert.deepStrictEqual(validate({ type: "string", maxLength: 2 }, "😀😀"), [], "lengths count code points")
    assert.deepStrictEqual(validate({ type: "number" }, 3), [], "an integer is a number")
  })

  it("reports unsupported keywords and malformed values with their paths", () => {
    assert.deepStrictEqual(check({ type: "object", properties: { a: { $ref: "#/x" } }, oneOf: [], minLength: -1, title: "ok" }).map((p) => p.path.join(".")), [
      "properties.a.$ref",
      "oneOf",
      "minLength"
    ])
    assert.deepStrictEqual(check("object").map((p) => p.message), ["Expected a JSON Schema object (or true / false)"])
  })

  it("a value generated from a schema's own shape is valid (property)", () =>
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1, maxLength: 5 }), fc.oneof(fc.integer(), fc.string(), fc.boolean())), (obj) => {
        const schema = {
          type: "object",
          required: Object.keys(obj),
          additionalProperties: false,
          properties: Object.fromEntries(
            Object.entries(obj).map(([k, v]) => [k, { type: typeof v === "number" ? "integer" : typeof v }])
          )
        }
        return check(schema).length === 0 && validate(schema, obj).length === 0
      }),
      { seed: 31, numRuns: 200 }
    ))
})

describe("judge score parser", () => {
  const ok = (text: string) => {
    const r = Eval.parseJudgeScore(text)
    assert.isTrue(Result.isSuccess(r), `${text}: ${Result.isFailure(r) ? r.failure : ""}`)
    return (r as Result.Success<number, string>).success
  }
  const fail = (text: string) => {
    const r = Eval.parseJudgeScore(text)
    assert.isTrue(Result.isFailure(r), `${text} should not parse`)
    return (r as Result.Failure<number, string>).failure
  }

  it("reads the forms judges use", () => {
    assert.strictEqual(ok("Clear and correct.\nSCORE: 8"), 0.8)
    assert.strictEqual(ok("**Score:** 4/5"), 0.8)
    assert.strictEqual(ok("score = 7 out of 10"), 0.7)
    assert.strictEqual(ok("Provisional score: 3. On reflection the answer is fine. Final score: 9"), 0.9)
    assert.strictEqual(ok(`{"reason": "fine", "score": 6}`), 0.6)
    assert.strictEqual(ok("10"), 1)
    assert.strictEqual(ok("  7/10. "), 0.7)
    assert.strictEqual(ok("Score is: 0"), 0)
  })

  it("malformed output is a failure with the reason, never a guess", () => {
    assert.match(fail("I cannot grade this."), /^no score in the judge's answer: "I cannot grade this\."/)
    assert.match(fail("SCORE: N/A"), /no score/)
    assert.match(fail("SCORE: 12"), /12 is outside 0–10/)
    assert.match(fail("Score: 6/5"), /6 is outside 0–5/)
    assert.match(fail("score: -1"), /outside/)
    assert.match(fail(`{"score": "high"}`), /no score/)
    assert.match(fail(""), /no score/)
  })

  it("never throws, and a success is always in [0, 1] (property)", () =>
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string().map((s) => `${s} SCORE: ${s}`), fc.string().map((s) => `{"score": ${s.length}} ${s}`)), (text) => {
        const r = Eval.parseJudgeScore(text)
        return Result.isFailure(r) || (r.success >= 0 && r.success <= 1)
      }),
      { seed: 37, numRuns: 500 }
    ))
})

describe("simulator per-prompt answers in a script", () => {
  it.effect("an answer needs `prompt` or `includes`; both are strings", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(SimulatorScript.decode({ models: { m: { answers: [{ answer: "x" }, { prompt: 1, answer: "y" }] } } }))
      const byPath = error.problems.map((p) => `${p.path}: ${p.message}`)
      assert.include(byPath.join("\n"), "models.m.answers[0]: Expected `prompt` or `includes`")
      assert.include(byPath.join("\n"), "models.m.answers[1].prompt: Expected string")
      const ok = yield* SimulatorScript.decode({ models: { m: { answers: [{ includes: "France", answer: "Paris" }] } } })
      assert.deepStrictEqual(ok.models["m"]!.answers, [{ includes: "France", answer: "Paris" }])
    }))
})
