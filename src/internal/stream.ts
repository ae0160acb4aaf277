/**
 * ConverseStream through the engine. An attempt opens the upstream stream and
 * reads it up to its commit point, the first content event (or `messageStop`
 * for an empty answer; or, with refusal detection's hold-back, the first N
 * characters), under the first-token limit; that is all the engine sees of
 * it, so everything before the commit point fails over like a Converse
 * error, hedging included. After the commit point this module hands the rest
 * of that one upstream to the caller under the stall limit and the request
 * deadline, and ends it only at `messageStop`:
 * - a failure after the commit point is `StreamInterrupted`, or with
 *   `restart` a `reset` event and then a new route for the whole answer
 *   (models already tried are out);
 * - after `messageStop`, the `metadata` event is awaited until
 *   `metadataGrace` after `messageStop` (whatever else the upstream sends),
 *   then the stream ends complete with estimated usage;
 * - the last event is `{ routing }`.
 *
 * Every upstream lives in a scope of its own, closed (aborting the HTTP
 * request) when its attempt fails or loses a hedge, when the stream fails or
 * ends, and when the caller stops reading.
 */
import type { ConverseStreamOutput } from "@aws-sdk/client-bedrock-runtime"
import { Cause, Clock, Duration, Effect, Exit, Option, Pull, Scope, Stream } from "effect"
import * as BedrockError from "../BedrockError.ts"
import { MuxError, StreamInterrupted, type Usage } from "../MuxError.ts"
import type * as MuxEvent from "../MuxEvent.ts"
import type * as MuxStream from "../MuxStream.ts"
import type * as Policy from "../Policy.ts"
import type { Routing } from "../Routing.ts"
import type * as Engine from "./engine.ts"
import { estimateOutputTokens } from "./tokens.ts"
import { fromSdk } from "./usage.ts"

/** The stream settings of one request: the policy's, overridden per request. */
export interface Settings {
  readonly firstTokenMs: number
  readonly stallMs: number
  readonly metadataGraceMs: number
  readonly onInterrupt: "fail" | "restart"
  readonly hedge: Policy.Hedge | undefined
  /** refusal detection with a hold-back: the commit point waits for this many characters */
  readonly refusal: Policy.Refusal | undefined
  readonly emit: (e: MuxEvent.MuxEvent) => Effect.Effect<void>
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
export const hedgeAfter = (hedge: Policy.Hedge) => (target: Engine.Target): number | undefined =>
  hedge.after === "p95"
    ? (target.stats.ttft.count >= P95_SAMPLES ? target.stats.ttft.quantile(0.95) : undefined)
    : Duration.toMillis(hedge.after)

const P95_SAMPLES = 20

/**
 * One attempt up to its commit point. The upstream's scope is closed on any
 * failure or interruption of the attempt (a timeout, a lost hedge). The
 * engine bounds it by the first-token limit (`commitWithin`).
 */
const open = (
  target: Engine.Target,
  ctx: Engine.AttemptContext,
  settings: Settings,
  request: (target: Engine.Target, ctx: Engine.AttemptContext) => Stream.Stream<ConverseStreamOutput, BedrockError.BedrockError>
): Effect.Effect<Opened, BedrockError.BedrockError> =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const modelId = target.model.modelId
    const startedAt = yield* Clock.currentTimeMillis
    const holdBack = settings.refusal?.holdBack ?? 0
    const body = Effect.gen(function*() {
      const pull = yield* Scope.provide(Stream.toPull(request(target, ctx)), scope)
      const head: Array<ConverseStreamOutput> = []
      let text = ""
      while (true) {
        const chunk = yield* pull.pipe(Pull.catchDone(() => Effect.fail(endedEarly(modelId))))
        head.push(...chunk)
        if (holdBack === 0) {
          if (chunk.some(isContent)) break
          continue
        }
        // refusal detection: hold the answer back until it has enough text to judge, or it ended
        for (const ev of chunk) text += ev.contentBlockDelta?.delta?.text ?? ""
        if (text.length >= holdBack || chunk.some((ev) => ev.messageStop !== undefined)) break
      }
      if (holdBack > 0) {
        const refusal = settings.refusal!
        const score = yield* refusal.classifier.score(text)
        if (score >= refusal.threshold) {
          const at = yield* Clock.currentTimeMillis
          yield* settings.emit({ _tag: "Refused", at, requestId: ctx.request.id, modelId, target: target.model.target, score, classifier: refusal.classifier.name })
          return yield* BedrockError.make(
            new BedrockError.Refused({ score, classifier: refusal.classifier.name }),
            `the answer was judged a refusal (${refusal.classifier.name} score ${score.toFixed(2)} >= ${refusal.threshold})`,
            modelId
          )
        }
      }
      return { head, pull, scope, startedAt, firstTokenAt: yield* Clock.currentTimeMillis } satisfies Opened
    })
    return yield* body.pipe(Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit))))
  })

/**
 * Reads a complete answer's upstream to its end (it ends right after the
 * metadata event) for at most `ms`: closing it earlier aborts a finished
 * response, which the provider logs as cut and which costs the connection.
 */
const drain = (o: Opened, ms: number) =>
  ms <= 0 ? Effect.void : o.pull.pipe(Effect.forever, Effect.timeoutOption(Duration.millis(ms)), Effect.catchCause(() => Effect.void))

const endedEarly = (modelId: string) =>
  BedrockError.make(new BedrockError.Incomplete({ detail: "no-message-stop" }), "ConverseStream ended before messageStop", modelId)

/** The caller's stream. */
export const make = (options: {
  readonly engine: Engine.Engine
  readonly start: Engine.StartOptions
  readonly settings: Settings
  readonly inputTokens: () => number
  readonly request: (target: Engine.Target, ctx: Engine.AttemptContext) => Stream.Stream<ConverseStreamOutput, BedrockError.BedrockError>
  readonly routing: (routed: Engine.Routed<unknown>) => Routing
}): Stream.Stream<MuxStream.Event, MuxError> =>
  Stream.unwrap(Effect.gen(function*() {
    const { engine, settings } = options
    const request = yield* engine.start(options.start)
    const deadlineAt = request.deadlineAt
    let routed: Engine.Routed<Opened> | undefined
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
        if (ev.messageStop !== undefined) stopped = true
        const u = ev.metadata?.usage
        if (u !== undefined) {
          const read = fromSdk(u)!
          usage = { inputTokens: read.inputTokens, outputTokens: read.outputTokens, totalTokens: u.totalTokens ?? read.inputTokens + read.outputTokens, estimated: false }
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
      Effect.gen(function*() {
        if (routed !== undefined) {
          yield* Scope.close(routed.value.scope, Exit.void)
          if (!finished) yield* routed.settle({ _tag: "Interrupted" })
        }
        yield* request.end({ _tag: "Interrupted" })
      })
    )

    /** The answer is complete: record it and emit the routing record. */
    const finish = Effect.gen(function*() {
      const r = routed!
      finished = true
      const now = yield* Clock.currentTimeMillis
      const used = usage ?? estimated()
      const stats = r.target.stats
      const o = r.value
      stats.firstToken(o.firstTokenAt - o.startedAt)
      stats.ttlt.record(stopAt - o.startedAt)
      const generating = (stopAt - o.firstTokenAt) / 1000
      // the tokens after the first content event, over the time they took
      if (generating > 0 && used.outputTokens > 1) stats.tokensPerSecond.record((used.outputTokens - 1) / generating)
      const tokens = { inputTokens: used.inputTokens, outputTokens: used.outputTokens, quota: used.totalTokens }
      yield* r.settle({ _tag: "Success", usage: tokens })
      yield* Scope.close(o.scope, Exit.void)
      yield* request.end({ _tag: "Success", target: r.target, usage: tokens, timeToFirstTokenMs: o.firstTokenAt - o.startedAt })
      const routingEvent: MuxStream.RoutingEvent = {
        routing: {
          ...options.routing(r),
          attempts: [...r.attempts],
          usage: used,
          timeToFirstTokenMs: o.firstTokenAt - o.startedAt,
          durationMs: now - request.started,
          restarts
        }
      }
      return routingEvent
    })

    /** A failure past the commit point: restart on another model, or fail with StreamInterrupted. */
    const interrupted = (error: BedrockError.BedrockError) =>
      Effect.gen(function*() {
        const r = routed!
        yield* Scope.close(r.value.scope, Exit.void)
        const { restart } = yield* r.settle({ _tag: "Failure", error, restart: settings.onInterrupt === "restart" })
        const partial = estimated()
        const shown = delivered
        const failed = (attempts: MuxError["attempts"], why: string) =>
          new MuxError({
            reason: new StreamInterrupted({ modelId: r.target.model.modelId, target: r.target.model.target, error, partial, delivered: shown }),
            message: `stream from ${r.target.model.modelId} interrupted after ${shown} content events: ${error.message}${why}`,
            attempts: [...attempts],
            last: error
          })
        finished = true
        if (!restart) {
          const e = failed(r.attempts, "")
          yield* request.end({ _tag: "Failure", error: e, modelId: r.target.model.modelId })
          return yield* Effect.fail(e)
        }
        // the reset goes out only with a new answer to follow it: route first, then emit both
        routed = undefined
        const reset: MuxStream.ResetEvent = {
          reset: { modelId: r.target.model.modelId, target: r.target.model.target, error, reason: error.reason._tag, discarded: delivered }
        }
        const head = yield* openRoute.pipe(
          Effect.mapError((e) => failed(e.attempts, `; no restart possible: ${e.message}`)),
          Effect.tapError((e) => request.end({ _tag: "Failure", error: e, modelId: r.target.model.modelId }))
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
      routed = yield* request.route(
        (target, ctx) => open(target, ctx, settings, options.request),
        {
          open: true,
          commitWithin: { ms: settings.firstTokenMs, scope: "first-token" },
          // one hedge per request, and none for a restart
          hedge: settings.hedge === undefined || restarts > 0
            ? undefined
            : { afterMs: hedgeAfter(settings.hedge), budget: settings.hedge.budget }
        }
      )
      note(routed.value.head)
      if (stopped) stopAt = routed.value.firstTokenAt
      return routed.value.head
    })

    const next: Effect.Effect<ReadonlyArray<MuxStream.Event>, MuxError | Cause.Done> = Effect.gen(function*() {
      if (finished) return yield* Cause.done()
      if (routed === undefined) {
        return yield* openRoute.pipe(
          Effect.tapError((error) => request.end({ _tag: "Failure", error }))
        )
      }
      const o = routed.value
      const now = yield* Clock.currentTimeMillis
      if (stopped) {
        // the answer is complete; the metadata event usually follows at once, but never wait past the grace period
        // counted from messageStop, whatever else the upstream sends
        const left = stopAt + settings.metadataGraceMs - now
        if (usage !== undefined) return [yield* Effect.andThen(drain(o, left), finish)]
        const rest = left <= 0 ? Option.none() : yield* o.pull.pipe(
          Effect.timeoutOption(Duration.millis(left)),
          Effect.catchCause(() => Effect.succeedNone)
        )
        if (Option.isSome(rest) && rest.value.length > 0) {
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
          orElse: () => Effect.fail(BedrockError.deadline(scope, Duration.millis(Math.max(0, limit)), routed!.target.model.modelId))
        }),
        Effect.result
      )
      if (chunk._tag === "Failure") return yield* interrupted(chunk.failure)
      note(chunk.success)
      if (stopped) stopAt = yield* Clock.currentTimeMillis
      return chunk.success
    })

    // a pull emits non-empty chunks: every branch of `next` returns at least one event
    const pull = next as Pull.Pull<readonly [MuxStream.Event, ...Array<MuxStream.Event>], MuxError>
    return Stream.fromPull(Effect.succeed(pull))
  }))
