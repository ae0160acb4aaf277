/**
 * A call that is not Converse, routed through the same policy:
 * `mux.route(attempt, options)`.
 *
 * The router is generic over the attempt, `(target, context) =>
 * Effect<A, BedrockError>`: it selects a target, asks every guard for a
 * permit, runs the attempt under its timeout (interrupting it at the
 * timeout, which aborts its HTTP request through the `signal`), decides on
 * its error (retry the same model, fail over, fail fast) and records the
 * outcome for the guards. `converse` is one instance of it, `converseStream`
 * another, and here InvokeModel for embeddings, sent through the real AWS
 * SDK client, is a third: the same failover, breaker and deadlines.
 *
 * The pool is composed in code: a chat route for Converse, and a route of
 * its own for the embedding models (label "embed"), so embedding models
 * never serve a chat request. The calls go over loopback HTTP to
 * `FakeBedrock` (it answers InvokeModel with a Titan-shaped embedding), on
 * real time:
 * - embed 1 and 2: Titan v2 answers 503; each request fails over to Titan v1.
 *   Two failures open Titan v2's breaker;
 * - embed 3: Titan v2 is skipped without a call;
 * - embed 4 (a 5 s deadline): Titan v1 hangs: its own 1 s timeout aborts
 *   the call (the fake sees the client go away), and with no model left the
 *   request fails at once with `NoModelsAvailable`, which says when Titan
 *   v2's breaker lets a probe through and that the last attempt timed out.
 *
 * A stream attempt is an attempt too. `converseStream` runs the same engine:
 * its attempt opens the upstream and reads it up to the commit point (the
 * first content event, under the first-token limit), and resolves there, so
 * anything before it (an HTTP error, a cut, a slow first token) fails over
 * like a Converse error. The rest of that upstream is handed to the caller,
 * and the attempt's permits stay held until the stream ends: a guard's
 * permit is released when the stream ends, not at its first token. The
 * counting guard below logs its admits and releases next to the events the
 * caller reads, to show it: the chat primary cuts its stream before any
 * content (an attempt failure: failover, unseen), the fallback streams the
 * answer, and its permit is released after the last content event.
 *
 * Run: node examples/route-any-call.ts
 */
import { BedrockRuntimeClient, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime"
import { Console, type Duration, Effect, Layer, pipe, Stream } from "effect"
import { BedrockError, BedrockMux, clientConfig, Guard, MuxStream, Policy, Route } from "../src/index.ts"
import { FakeBedrock } from "../src/testing/index.ts"

const TITAN_V2 = "amazon.titan-embed-text-v2:0"
const TITAN_V1 = "amazon.titan-embed-text-v1"

/** A guard that admits everything and logs each admit and release (with how the attempt ended) to `log`. */
const counting = (log: Array<string>) =>
  Guard.make({
    name: "counting",
    view: (targets) => Effect.succeed(targets.map(() => Guard.open)),
    admit: (target) =>
      Effect.sync((): Guard.Permit => {
        log.push(`admit ${target.model.modelId}`)
        // not `free`: the mux calls release after every attempt, successes included
        return { release: (outcome) => Effect.sync(() => void log.push(`release ${target.model.modelId} ${outcome._tag}`)) }
      })
  })

const policy = (log: Array<string>) =>
  pipe(
    Policy.make(Route.orElse(Route.tier([{ modelId: "chat-primary" }]), Route.tier([{ modelId: "chat-fallback" }]))),
    Policy.withLabel("embed", Route.orElse(Route.tier([{ modelId: TITAN_V2 }]), Route.tier([{ modelId: TITAN_V1, timeout: "1 second" }]))),
    Policy.withBreaker({ failures: 2, probeInterval: "1 minute" }),
    Policy.withGuard(counting(log))
  )

const script = {
  models: {
    [TITAN_V2]: { faults: [{ do: { kind: "error", error: "ServiceUnavailableException" } }] },
    [TITAN_V1]: { faults: [{ when: { calls: 4 }, do: { kind: "hang" } }] },
    "chat-primary": { faults: [{ do: { kind: "cut", afterTokens: 0 } }] },
    "chat-fallback": { answer: "An answer in five tokens.", tokensPerSecond: 200 }
  }
} as const

/** An embedding through the mux: InvokeModel on the SDK client, on whichever model the router picks. */
const embed = (client: BedrockRuntimeClient, text: string, deadline?: Duration.Input) =>
  Effect.flatMap(BedrockMux, (mux) =>
    mux.route(
      (target) =>
        Effect.tryPromise({
          try: (signal) =>
            client.send(
              new InvokeModelCommand({
                modelId: target.model.modelId,
                contentType: "application/json",
                accept: "application/json",
                body: JSON.stringify({ inputText: text })
              }),
              { abortSignal: signal }
            ),
          catch: (e) => BedrockError.fromSdkError(e, target.model.modelId)
        }).pipe(Effect.map((out) => (JSON.parse(new TextDecoder().decode(out.body)) as { embedding: Array<number> }).embedding)),
      { label: "embed", operation: "embed", inputTokens: Math.ceil(text.length / 4), ...(deadline !== undefined ? { deadline } : {}) }
    ))

const run = (log: Array<string>) => Effect.gen(function*() {
  const fake = yield* FakeBedrock.FakeBedrock
  // your own SDK client, for the commands the mux does not wrap (SDK retries off: the mux owns them)
  const client = yield* Effect.acquireRelease(
    Effect.sync(() => new BedrockRuntimeClient(clientConfig({ region: "us-east-1", endpoint: fake.url, credentials: { accessKeyId: "fake", secretAccessKey: "fake" } }))),
    (c) => Effect.sync(() => c.destroy())
  )
  const mux = yield* BedrockMux

  const embeddings: Array<{ readonly dims: number; readonly modelId: string; readonly tried: ReadonlyArray<string> }> = []
  for (const text of ["one", "two", "three"]) {
    const { value, routing } = yield* embed(client, text)
    embeddings.push({ dims: value.length, modelId: routing.modelId, tried: routing.attempts.map((a) => `${a.modelId}:${a.reason ?? a.outcome}`) })
    yield* Console.log(`embed "${text}": ${value.length} dims from ${routing.modelId} (tried ${embeddings.at(-1)!.tried.join(", ")})`)
  }
  const timedOut = yield* Effect.flip(embed(client, "four", "5 seconds"))
  yield* Console.log(`embed "four": ${timedOut.reason._tag} (${timedOut.message})`)
  const breakerOfV2 = (yield* mux.health).models.find((m) => m.modelId === TITAN_V2)!.breaker

  // the stream: log what the caller reads next to the counting guard's admits and releases
  log.length = 0
  const streamed = yield* mux.converseStream({ messages: [{ role: "user", content: [{ text: "hi" }] }] }).pipe(
    Stream.tap((ev) =>
      Effect.sync(() => {
        if (ev.contentBlockDelta !== undefined) log.push("content")
        if (MuxStream.isRouting(ev)) log.push("routing")
      })
    ),
    MuxStream.collect
  )
  yield* Console.log(`stream: ${streamed.routing?.modelId} "${streamed.text}"; guard and caller, in order: ${log.join(", ")}`)
  // the server has seen every call end (the hung one: when the client aborted it)
  yield* Effect.promise(() => fake.waitForIdle(5_000))
  const wire = fake.attempts().map((a) => `${a.operation} ${a.modelId} ${a.outcome}`)
  yield* Console.log("what the fake saw:", wire)
  return { embeddings, timedOut: { reason: timedOut.reason, attempts: timedOut.attempts }, breakerOfV2, stream: { modelId: streamed.routing?.modelId, text: streamed.text, log: [...log] }, wire }
}).pipe(Effect.scoped, Effect.provide(BedrockMux.layer(policy(log)).pipe(Layer.provideMerge(FakeBedrock.layerRuntime(script)))))

/** A fresh log (and fake, and mux) per run. */
export const program = Effect.suspend(() => run([]))

if (import.meta.main) Effect.runPromise(program)
