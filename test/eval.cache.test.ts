// The answer cache on disk (effect's FileSystem on Node): read when the
// layer is built, appended through or on close, a later line wins, a line
// that does not decode is skipped. And the cache key: what is sent, nothing else.
import { NodeServices } from "@effect/platform-node"
import { afterAll, assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Eval from "../src/Eval.ts"
import { keyOf } from "../src/internal/eval/cache.ts"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bedrock-mux-cache-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

const answer = (text: string): Eval.CachedAnswer => ({ modelId: "m", text, inputTokens: 3, outputTokens: 2, ttftMs: 10, latencyMs: 20 })
const withCache = (file: string, write?: "through" | "on-close") =>
  Eval.AnswerCache.layerFileSystem(file, write === undefined ? {} : { write }).pipe(Layer.provide(NodeServices.layer))
const lines = (file: string) => fs.readFileSync(file, "utf8").trim().split("\n")

describe("AnswerCache on disk", () => {
  it.effect("write-through: each answer is on disk at once (in a new directory), and read back by the next layer", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "a/b/cache.jsonl")
      yield* Effect.gen(function*() {
        const cache = yield* Eval.AnswerCache
        yield* cache.put("k1", answer("one"))
        assert.strictEqual(lines(file).length, 1, "written before the layer closes")
        yield* cache.put("k2", answer("two"))
      }).pipe(Effect.provide(withCache(file)))
      const read = yield* Effect.gen(function*() {
        const cache = yield* Eval.AnswerCache
        return [yield* cache.get("k1"), yield* cache.get("k2"), yield* cache.get("k3")]
      }).pipe(Effect.provide(withCache(file)))
      assert.deepStrictEqual(read, [answer("one"), answer("two"), undefined])
    }))

  it.effect("on-close: nothing is written until the layer closes", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "close.jsonl")
      yield* Effect.gen(function*() {
        const cache = yield* Eval.AnswerCache
        yield* cache.put("k", answer("x"))
        assert.isFalse(fs.existsSync(file))
        assert.deepStrictEqual(yield* cache.get("k"), answer("x"))
      }).pipe(Effect.provide(withCache(file, "on-close")))
      assert.strictEqual(lines(file).length, 1)
    }))

  it.effect("a later line for a key wins; a line cut short is skipped, the rest is read", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "mixed.jsonl")
      fs.writeFileSync(file, [
        JSON.stringify({ key: "k", ...answer("old") }),
        JSON.stringify({ key: "k", ...answer("new") }),
        "{\"key\":\"cut\",\"modelId\":\"m\",\"te",
        JSON.stringify({ key: "j", ...answer("kept"), outputTokens: -1 }),
        ""
      ].join("\n"))
      const read = yield* Effect.gen(function*() {
        const cache = yield* Eval.AnswerCache
        return [(yield* cache.get("k"))?.text, yield* cache.get("cut"), yield* cache.get("j")]
      }).pipe(Effect.provide(withCache(file)))
      assert.deepStrictEqual(read, ["new", undefined, undefined])
    }))

  it.effect("a file that ends in a line cut short: the next answer starts a line of its own, and is read back", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "tail.jsonl")
      fs.writeFileSync(file, JSON.stringify({ key: "k", ...answer("kept") }) + "\n{\"key\":\"cut\",\"mo")
      yield* Effect.flatMap(Eval.AnswerCache, (cache) => Effect.andThen(cache.put("n1", answer("one")), cache.put("n2", answer("two"))))
        .pipe(Effect.provide(withCache(file)))
      const read = yield* Effect.flatMap(Eval.AnswerCache, (cache) => Effect.all(["k", "n1", "n2"].map((k) => cache.get(k))))
        .pipe(Effect.provide(withCache(file)))
      assert.deepStrictEqual(read.map((a) => a?.text), ["kept", "one", "two"])
      assert.strictEqual(lines(file).length, 4)
    }))

  it.effect("an unreadable cache path fails the layer with AnswerCacheError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.provide(Effect.void, withCache(dir)))
      assert.strictEqual(error._tag, "AnswerCacheError")
      assert.strictEqual(error.path, dir)
    }))
})

describe("the cache key", () => {
  const base = { operation: "converseStream" as const, modelId: "m", system: "s", messages: [{ role: "user", content: [{ text: "hi" }] }], inferenceConfig: { maxTokens: 5, temperature: 0 } }
  it("is the same for the same call, whatever the key order; another model, prompt or setting is another key", () => {
    const k = keyOf(base)
    assert.match(k, /^[0-9a-f]{64}$/)
    assert.strictEqual(keyOf({ ...base, inferenceConfig: { temperature: 0, maxTokens: 5 } }), k)
    for (const other of [
      { ...base, modelId: "n" },
      { ...base, system: undefined },
      { ...base, messages: [{ role: "user", content: [{ text: "hi!" }] }] },
      { ...base, inferenceConfig: { maxTokens: 6, temperature: 0 } },
      { ...base, operation: "converse" as const }
    ]) assert.notStrictEqual(keyOf(other), k)
  })
})
