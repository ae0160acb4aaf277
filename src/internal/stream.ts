/**
 * ConverseStream through the engine. An attempt opens the upstream stream and
 * reads it up to its commit point, the first content event (or `messageStop`
 * for an empty answer), under the first-token limit; that is all the engine
 * sees of it, so everything before the commit point fails over like a
 * Converse error, hedging included. After the commit point this module hands
 * the rest of that one upstream to the caller under the stall limit and the
 * request deadline, and ends it only at `messageStop`:
 * - a failure after the commit point is `StreamInterrupted`, or with
 *   `restart` a `reset` event and then a new route for the whole answer
 *   (models already tried are out);
 * - after `messageStop`, the `metadata` event is awaited for at most
 *   `metadataGrace`, then the stream ends complete with estimated usage;
 * - the last event is `{ routing }`.
 *
 * Every upstream lives in a scope of its own, closed (aborting the HTTP
 * request) when its attempt fails or loses a hedge, when the stream fails or
 * ends, and when the caller stops reading.
 */
import type { ConverseStreamOutput } from "@aws-sdk/client-bedrock-runtime"
import { Cause, Clock, Duration, Effect, Exit, Option, Pull, Scope, Stream } from "effect"
import * as BedrockError from "../BedrockError.ts"
import { type AttemptRecord, MuxError, StreamInterrupted, type Usage } from "../MuxError.ts"
import type * as Policy from "../Policy.ts"
import type { AttemptOptions, Engine, Resume, Routed, RouteOptions, Target } from "./engine.ts"
import { estimateOutputTokens } from "./tokens.ts"

/** What the caller receives: the SDK's events, a reset (restart only), and the routing record last. */
export type Event<Reset, End> = ConverseStreamOutput | Reset | End

/** The stream settings of one request: the policy's, overridden per request. */
export interface Settings {
  readonly firstTokenMs: number
  readonly stallMs: number
  readonly metadataGraceMs: number
  readonly onInterrupt: "fail" | "restart"
  readonly hedge: Policy.Hedge | undefined
  readonly deadlineMs: number
}

/** An attempt past its commit point: what it delivered so far and the rest of its upstream. */
interface Opened {
  readonly head: ReadonlyArray<ConverseStreamOutput>
  readonly pull: Pull.Pull<ReadonlyArray<ConverseStreamOutput>, BedrockError.BedrockError>
  readonly scope: Scope.Closeable
  readonly startedAt: number
  readonly firstTokenAt: number
}

/** Is this event model output (the commit point)? `messageStop` counts: an empty answer is an answer. */
export const isContent = (ev: ConverseStreamOutput): boolean =>
  ev.contentBlockDelta !== undefined || ev.contentBlockStart !== undefined || ev.messageStop !== undefined

/** Characters of generated output in an event (text, reasoning, tool input). */
const outputChars = (ev: ConverseStreamOutput): number => {
  const d = ev.contentBlockDelta?.delta
  if (d === undefined) return 0
  return (d.text?.length ?? 0) + (d.toolUse?.input?.length ?? 0) + (d.reasoningContent?.text?.length ?? 0)
}

/** How the engine's hedge asks for a delay: fixed, or the target's p95 time to first token once it has 20 samples. */
export const hedgeAfter = (hedge: Policy.Hedge) => (target: Target): number | undefined =>
  hedge.after === "p95"
    ? (target.stats.ttft.count >= P95_SAMPLES ? target.stats.ttft.quantile(0.95) : undefined)
    : Duration.toMillis(hedge.after)

const P95_SAMPLES = 20

/**
 * One attempt up to its commit point. The upstream's scope is closed on any
 * failure or interruption of the attempt (a timeout, a lost hedge).
 */
const open = (
  target: Target,
  attempt: AttemptOptions,
  settings: Settings,
  request: (target: Target, attempt: AttemptOptions) => Stream.Stream<ConverseStreamOutput, BedrockError.BedrockError>
): Effect.Effect<Opened, BedrockError.BedrockError> =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const timeoutMs = Duration.toMillis(attempt.timeout)
    // the first-token limit, unless the attempt timeout (or what is left of the deadline) is shorter
    const [limit, scopeName] = settings.firstTokenMs < timeoutMs
      ? [settings.firstTokenMs, "first-token" as const]
      : [timeoutMs, attempt.deadlineScope]
    const modelId = target.model.modelId
    const startedAt = yield* Clock.currentTimeMillis
    const body = Effect.gen(function*() {
      const pull = yield* Scope.provide(Stream.toPull(request(target, attempt)), scope)
      const head: Array<ConverseStreamOutput> = []
      while (true) {
        const chunk = yield* pull.pipe(Pull.catchDone(() => Effect.fail(endedEarly(modelId))))
        head.push(...chunk)
        if (chunk.some(isContent)) break
      }
      return { head, pull, scope, startedAt, firstTokenAt: yield* Clock.currentTimeMillis } satisfies Opened
    })
    return yield* body.pipe(
      Effect.timeoutOrElse({
        duration: Duration.millis(limit),
        orElse: () => Effect.fail(deadline(scopeName, limit, modelId))
      }),
      Effect.onExit((exit) => Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit))
    )
  })

/**
 * Reads a complete answer's upstream to its end (it ends right after the
 * metadata event) for at most `ms`: closing it earlier aborts a finished
 * response, which the provider logs as cut and which costs the connection.
 */
const drain = (o: Opened, ms: number) =>
  o.pull.pipe(Effect.forever, Effect.timeoutOption(Duration.millis(ms)), Effect.catchCause(() => Effect.void))

const endedEarly = (modelId: string) =>
  BedrockError.make(new BedrockError.Incomplete({ detail: "no-message-stop" }), "ConverseStream ended before messageStop", modelId)

const deadline = (scope: BedrockError.DeadlineExceeded["scope"], ms: number, modelId: string) =>
  BedrockError.make(
    new BedrockError.DeadlineExceeded({ scope, after: Duration.millis(ms) }),
    scope === "first-token"
      ? `no content within the first-token limit of ${ms} ms; the stream was aborted`
      : scope === "stall"
      ? `no event for ${ms} ms (stall limit); the stream was aborted`
      : `${scope === "attempt" ? "attempt timeout" : "request deadline"} of ${ms} ms expired; the stream was aborted`,
    modelId
  )

/**
 * The caller's stream. `reset` and `end` build the two mux events (their
 * types live with the public API).
 */
export const make = <Reset, End>(options: {
  readonly engine: Engine
  readonly route: RouteOptions
  readonly settings: Settings
  readonly inputTokens: () => number
  readonly request: (target: Target, attempt: AttemptOptions) => Stream.Stream<ConverseStreamOutput, BedrockError.BedrockError>
  readonly reset: (info: { readonly modelId: string; readonly target: string; readonly error: BedrockError.BedrockError; readonly discarded: number }) => Reset
  readonly end: (info: {
    readonly routed: Routed<unknown>
    readonly usage: Usage
    readonly timeToFirstTokenMs: number
    readonly durationMs: number
    readonly restarts: number
  }) => End
}): Stream.Stream<Event<Reset, End>, MuxError> =>
  Stream.unwrap(Effect.gen(function*() {
    const { engine, settings } = options
    const requestStarted = yield* Clock.currentTimeMillis
    const deadlineAt = requestStarted + settings.deadlineMs
    let routed: Routed<Opened> | undefined
    let resume: Resume | undefined
    const tried: Array<number> = []
    let stopped = false
    let finished = false
    let usage: Usage | undefined
    let chars = 0
    let delivered = 0
    let restarts = 0
    let stopAt = 0

    const note = (events: ReadonlyArray<ConverseStreamOutput>) => {
      for (const ev of events) {
        chars += outputChars(ev)
        if (ev.contentBlockDelta !== undefined || ev.contentBlockStart !== undefined) delivered += 1
        if (ev.messageStop !== undefined && !stopped) stopped = true
        const u = ev.metadata?.usage
        if (u !== undefined) {
          const inputTokens = u.inputTokens ?? 0
          const outputTokens = u.outputTokens ?? 0
          usage = { inputTokens, outputTokens, totalTokens: u.totalTokens ?? inputTokens + outputTokens, estimated: false }
        }
      }
    }
    const estimated = (): Usage => {
      const inputTokens = options.inputTokens()
      const outputTokens = estimateOutputTokens(chars)
      return { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens, estimated: true }
    }

    // the caller stopped reading, or the stream failed: abort the upstream; an open answer ends as interrupted
    yield* Effect.addFinalizer(() =>
      routed === undefined
        ? Effect.void
        : Effect.andThen(
          Scope.close(routed.value.scope, Exit.void),
          finished ? Effect.void : routed.complete({ _tag: "Interrupted" })
        )
    )

    /** The answer is complete: record it and emit the routing record. */
    const finish = Effect.gen(function*() {
      const r = routed!
      finished = true
      const now = yield* Clock.currentTimeMillis
      const used = usage ?? estimated()
      const stats = r.target.stats
      const o = r.value
      stats.ttft.record(o.firstTokenAt - o.startedAt)
      stats.ttlt.record(stopAt - o.startedAt)
      const generating = (stopAt - o.firstTokenAt) / 1000
      // the tokens after the first content event, over the time they took
      if (generating > 0 && used.outputTokens > 1) stats.tokensPerSecond.record((used.outputTokens - 1) / generating)
      yield* r.complete({
        _tag: "Success",
        usage: { inputTokens: used.inputTokens, outputTokens: used.outputTokens, quota: used.totalTokens },
        timeToFirstTokenMs: o.firstTokenAt - o.startedAt
      })
      yield* Scope.close(o.scope, Exit.void)
      return options.end({
        routed: r,
        usage: used,
        timeToFirstTokenMs: o.firstTokenAt - o.startedAt,
        durationMs: now - requestStarted,
        restarts
      })
    })

    /** A failure past the commit point: restart on another model, or fail with StreamInterrupted. */
    const interrupted = (error: BedrockError.BedrockError) =>
      Effect.gen(function*() {
        const r = routed!
        yield* Scope.close(r.value.scope, Exit.void)
        // the request deadline is terminal (no restart can answer in time), and an error the policy fails fast on
        // (the request is at fault) would fail the same way on any model: neither restarts
        const restart = settings.onInterrupt === "restart" &&
          !(error.reason._tag === "DeadlineExceeded" && error.reason.scope === "request") &&
          engine.policy.classification(error).failover
        yield* r.complete({ _tag: "Failure", error, restart })
        const partial = estimated()
        const shown = delivered
        const failed = (attempts: ReadonlyArray<AttemptRecord>, why: string) =>
          new MuxError({
            reason: new StreamInterrupted({ modelId: r.target.model.modelId, target: r.target.model.target, error, partial, delivered: shown }),
            message: `stream from ${r.target.model.modelId} interrupted after ${shown} content events: ${error.message}${why}`,
            attempts,
            last: error
          })
        finished = true
        if (!restart) return yield* Effect.fail(failed([...r.attempts], ""))
        // the reset goes out only with a new answer to follow it: route first, then emit both
        tried.push(r.target.index)
        resume = r.resume(tried)
        routed = undefined
        const reset = options.reset({ modelId: r.target.model.modelId, target: r.target.model.target, error, discarded: delivered })
        const head = yield* openRoute.pipe(
          Effect.mapError((e) => failed(e.attempts, `; no restart possible: ${e.message}`))
        )
        finished = false
        restarts += 1
        return [reset, ...head]
      })

    /** Routes the request (again, after a restart) and returns the answer's first events. */
    const openRoute: Effect.Effect<ReadonlyArray<ConverseStreamOutput>, MuxError> = Effect.gen(function*() {
        stopped = false
        usage = undefined
        chars = 0
        delivered = 0
        routed = yield* engine.route(
          {
            ...options.route,
            deadline: Duration.millis(settings.deadlineMs),
            deferred: true,
            operation: "converse_stream",
            resume,
            hedge: settings.hedge === undefined || resume !== undefined
              ? undefined
              : { afterMs: hedgeAfter(settings.hedge), budget: settings.hedge.budget }
          },
          (target, attempt) => open(target, attempt, settings, options.request)
        )
        note(routed.value.head)
        if (stopped) stopAt = routed.value.firstTokenAt
        return routed.value.head
    })

    const next: Effect.Effect<ReadonlyArray<Event<Reset, End>>, MuxError | Cause.Done> = Effect.gen(function*() {
      if (finished) return yield* Cause.done()
      if (routed === undefined) return yield* openRoute
      const o = routed.value
      const now = yield* Clock.currentTimeMillis
      if (stopped && usage !== undefined) return [yield* Effect.andThen(drain(o, settings.metadataGraceMs), finish)]
      if (stopped) {
        // the answer is complete; the metadata event usually follows at once, but never wait long for it
        const rest = yield* o.pull.pipe(
          Effect.timeoutOption(Duration.millis(settings.metadataGraceMs)),
          Effect.catchCause(() => Effect.succeedNone)
        )
        if (Option.isSome(rest)) {
          // the metadata goes out at once; the next pull reads the upstream to its end and finishes
          note(rest.value)
          return rest.value
        }
        return [yield* finish]
      }
      const left = deadlineAt - now
      const [limit, scope] = settings.stallMs < left ? [settings.stallMs, "stall" as const] : [left, "request" as const]
      const chunk = yield* o.pull.pipe(
        Pull.catchDone(() => Effect.fail(endedEarly(routed!.target.model.modelId))),
        Effect.timeoutOrElse({
          duration: Duration.millis(Math.max(0, limit)),
          orElse: () => Effect.fail(deadline(scope, Math.max(0, limit), routed!.target.model.modelId))
        }),
        Effect.result
      )
      if (chunk._tag === "Failure") return yield* interrupted(chunk.failure)
      note(chunk.success)
      if (stopped) stopAt = yield* Clock.currentTimeMillis
      return chunk.success
    })

    // a pull emits non-empty chunks: every branch of `next` returns at least one event
    const pull = next as Pull.Pull<readonly [Event<Reset, End>, ...Array<Event<Reset, End>>], MuxError>
    return Stream.fromPull(Effect.succeed(pull))
  }))
