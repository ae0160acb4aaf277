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
 * Every upstream is closed (aborting the HTTP request) when its attempt
 * fails or loses a hedge, when the stream fails or ends, and when the caller
 * stops reading.
 *
 * Two kinds of upstream: a runtime's `converseStream` (an Effect stream, read
 * through `Stream.toPull` in a scope of its own), and, where the runtime
 * offers `sendConverseStream` (the SDK's), the SDK's event iterator read
 * directly: the attempt up to its commit point is one Promise under the
 * engine's deadline (no fiber, no scope), and each later event is one Effect
 * step with the stall limit in the mux's deadline heap instead of a race of
 * two fibers per event (measured: bench/results/README.md, time to first
 * token).
 */
import type { ConverseStreamOutput } from "@aws-sdk/client-bedrock-runtime"
import { Cause, Channel, Clock, type Context, Duration, Effect, Exit, type Fiber, Option, Pull, Scope, Stream } from "effect"
import * as BedrockError from "../BedrockError.ts"
import { MuxError, StreamInterrupted, type Usage } from "../MuxError.ts"
import type * as MuxEvent from "../MuxEvent.ts"
import type * as MuxStream from "../MuxStream.ts"
import type * as Policy from "../Policy.ts"
import type { Routing } from "../Routing.ts"
import type * as Deadlines from "./deadlines.ts"
import type * as Engine from "./engine.ts"
import { nextEvent } from "./eventIterator.ts"
import { endedEarly } from "./incomplete.ts"
import * as Telemetry from "./telemetry.ts"
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

/** One upstream ConverseStream: its events a pull at a time, and its abort. */
interface Upstream {
  /**
   * The next events before `at` (epoch ms of the mux's Clock): past it the
   * upstream is aborted and the pull fails with `onTimeout()`. Continues with
   * `onEvents`, `onError` or, at the upstream's end, `onEnd` in the same step.
   */
  readonly pullBefore: <A, E>(
    at: number,
    onTimeout: () => BedrockError.BedrockError,
    onEvents: (events: ReadonlyArray<ConverseStreamOutput>) => Effect.Effect<A, E>,
    onError: (error: BedrockError.BedrockError) => Effect.Effect<A, E>,
    /**
     * The end, a thunk rather than an error: every complete answer's upstream ends (the drain reads it to its
     * end), and an error built there cost 55 to 65 µs of CPU a stream (two error classes, each with its stack
     * and its Schema check; CPU profile, scratch/sprof.ts)
     */
    onEnd: () => Effect.Effect<A, E>
  ) => Effect.Effect<A, E>
  /** aborts the HTTP request (a finished one stays finished) */
  readonly close: Effect.Effect<void>
}

/** An attempt past its commit point: what it delivered so far and the rest of its upstream. */
interface Opened {
  readonly head: ReadonlyArray<ConverseStreamOutput>
  readonly upstream: Upstream
  readonly startedAt: number
  readonly firstTokenAt: number
}

/** The SDK's event iterable sent for one target, aborted through `signal`. */
export type RawStream = (signal: AbortSignal) => Promise<AsyncIterable<ConverseStreamOutput>>

/** An Effect stream as an upstream, read in a scope of its own. */
const streamUpstream = (
  pull: Pull.Pull<ReadonlyArray<ConverseStreamOutput>, BedrockError.BedrockError>,
  scope: Scope.Closeable,
  clock: Clock.Clock
): Upstream => ({
  pullBefore: (at, onTimeout, onEvents, onError, onEnd) =>
    pull.pipe(
      Effect.map(Option.some),
      Pull.catchDone(() => Effect.succeedNone),
      Effect.timeoutOrElse({
        duration: Duration.millis(Math.max(0, at - clock.currentTimeMillisUnsafe())),
        orElse: () => Effect.fail(onTimeout())
      }),
      Effect.matchEffect({ onFailure: onError, onSuccess: (events) => (Option.isSome(events) ? onEvents(events.value) : onEnd()) })
    ),
  close: Scope.close(scope, Exit.void)
})

/** The SDK's event iterator as an upstream: each pull one Effect step; the stall limit in the deadline heap. */
const rawUpstream = (
  events: AsyncIterator<ConverseStreamOutput>,
  controller: AbortController,
  modelId: string,
  deadlines: Deadlines.Deadlines
): Upstream => {
  const afterResponse = (e: unknown) => BedrockError.fromSdkError(e, modelId, "after-response")
  // read to its end: nothing left to abort (aborting a finished request still destroys its socket, measured
  // 140 µs a stream, and the next request pays for a new connection)
  let ended = false
  return {
    pullBefore: (at, onTimeout, onEvents, onError, onEnd) =>
      Effect.callback((resume) => {
        let settled = false
        const entry = deadlines.add(at, () => {
          if (settled) return
          settled = true
          controller.abort()
          resume(onError(onTimeout()))
        })
        nextEvent(events).then(
          (r) => {
            if (settled) return
            settled = true
            deadlines.remove(entry)
            if (r.done === true) ended = true
            resume(r.done === true ? onEnd() : onEvents([r.value]))
          },
          (e) => {
            if (settled) return
            settled = true
            deadlines.remove(entry)
            resume(onError(afterResponse(e)))
          }
        )
        return Effect.sync(() => {
          if (settled) return
          settled = true
          deadlines.remove(entry)
          controller.abort()
        })
      }),
    close: Effect.sync(() => {
      if (!ended) controller.abort()
    })
  }
}

/**
 * One attempt up to its commit point over the SDK's iterator, as a Promise
 * (the engine runs it under the first-token limit and aborts `controller`
 * when the attempt is given up). Without refusal hold-back only.
 */
const openRaw = (send: RawStream, clock: Clock.Clock, modelId: string, deadlines: Deadlines.Deadlines) =>
async (controller: AbortController): Promise<Opened> => {
  const startedAt = clock.currentTimeMillisUnsafe()
  const events = (await send(controller.signal))[Symbol.asyncIterator]()
  const head: Array<ConverseStreamOutput> = []
  try {
    while (true) {
      const r = await events.next()
      if (r.done === true) throw endedEarly(modelId)
      head.push(r.value)
      if (isContent(r.value)) break
    }
  } catch (e) {
    // the attempt failed before its commit point: its upstream goes with it
    controller.abort()
    throw BedrockError.fromSdkError(e, modelId, "after-response")
  }
  return { head, upstream: rawUpstream(events, controller, modelId, deadlines), startedAt, firstTokenAt: clock.currentTimeMillisUnsafe() }
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
    const clock = yield* Effect.clockWith(Effect.succeed)
    const startedAt = clock.currentTimeMillisUnsafe()
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
        const score = yield* refusal.classifier.score(text, { requestId: ctx.request.id, modelId, target: target.model.target })
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
      return { head, upstream: streamUpstream(pull, scope, clock), startedAt, firstTokenAt: clock.currentTimeMillisUnsafe() } satisfies Opened
    })
    return yield* body.pipe(Effect.onExit((exit) => (Exit.isSuccess(exit) ? Effect.void : Scope.close(scope, exit))))
  })

/**
 * Reads a complete answer's upstream to its end (it ends right after the
 * metadata event) until `at` at most: closing it earlier aborts a finished
 * response, which the provider logs as cut and which costs the connection.
 */
const drain = (o: Opened, at: number): Effect.Effect<void> =>
  // whatever ends it (the grace, the end, an error, a defect of a runtime's stream), the answer stands
  Effect.catchCause(drainUntil(o, at), () => Effect.void)
const drainUntil = (o: Opened, at: number): Effect.Effect<void> =>
  o.upstream.pullBefore(at, graceOver, () => drainUntil(o, at), toVoid, toVoid)
const toVoid = () => Effect.void
const toNone = () => Effect.succeedNone

/**
 * The grace period's end, as the pull it ends sees it: nothing is reported (the answer is complete). The grace
 * and the drain wait in the deadline heap, not in a race of two fibers with a timer each (measured: 21 µs of
 * CPU per stream, a fifth of the mux's, scratch/smab.ts).
 */
const GRACE_OVER = BedrockError.deadline("stall", Duration.zero)
const graceOver = () => GRACE_OVER

/** The caller's stream. */
export const make = (options: {
  readonly engine: Engine.Engine
  readonly start: Engine.StartOptions
  readonly settings: Settings
  readonly inputTokens: () => number
  readonly request: (target: Engine.Target, ctx: Engine.AttemptContext) => Stream.Stream<ConverseStreamOutput, BedrockError.BedrockError>
  /** the request as the SDK's own call, where the target's runtime offers one */
  readonly raw?: ((target: Engine.Target, ctx: Engine.AttemptContext) => RawStream | undefined) | undefined
  readonly routing: (routed: Engine.Routed<unknown>) => Routing
  /** the stream with the request's span around it, run instead where a tracer is installed */
  readonly traced?: ((plain: Stream.Stream<MuxStream.Event, MuxError>) => Stream.Stream<MuxStream.Event, MuxError>) | undefined
}): Stream.Stream<MuxStream.Event, MuxError> => {
  // a channel of its own rather than Stream.unwrap: its setup is one step, and its finalizer goes straight
  // into the channel's scope
  // the request starts in the channel's first step (a tenant's quota, an Effect of its own, aside)
  const begin = (channelScope: Scope.Scope, fiber: Fiber.Fiber<unknown, unknown>) => {
    const started = options.engine.startUnsafe(options.start, fiber)
    if (started === undefined) return Effect.flatMap(options.engine.start(options.start), (request) => setup(channelScope, request, fiber))
    return started instanceof MuxError ? Effect.fail(started) : setup(channelScope, started, fiber)
  }
  const setup = (channelScope: Scope.Scope, request: Engine.Request, fiber: Fiber.Fiber<unknown, unknown>) => {
    const { engine, settings } = options
    const deadlineAt = request.deadlineAt
    const clock = fiber.getRef(Clock.Clock)
    const rawOpen: Engine.RawAttempt<Opened> | undefined = options.raw === undefined || settings.refusal !== undefined
      ? undefined
      : (target, ctx) => {
        const send = options.raw!(target, ctx)
        return send === undefined ? undefined : openRaw(send, clock, target.model.modelId, engine.deadlines)
      }
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
    const finalizer = Effect.gen(function*() {
      if (routed !== undefined) {
        yield* routed.value.upstream.close
        if (!finished) yield* routed.settle({ _tag: "Interrupted" })
      }
      yield* request.end({ _tag: "Interrupted" })
    })

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
      yield* o.upstream.close
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
        yield* r.value.upstream.close
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
    const openAttempt = (target: Engine.Target, ctx: Engine.AttemptContext) => open(target, ctx, settings, options.request)
    const onRouted = (r: Engine.Routed<Opened>) => {
      routed = r
      note(r.value.head)
      if (stopped) stopAt = r.value.firstTokenAt
      return r.value.head
    }
    /** The route from here (its first one, or a restart's): its answer's first events. `context`: the running fiber's. */
    const routeNow = (context: Context.Context<never>): Effect.Effect<ReadonlyArray<ConverseStreamOutput>, MuxError> => {
      stopped = false
      usage = undefined
      chars = 0
      delivered = 0
      return request.routeWith(openAttempt, {
        open: true,
        commitWithin: { ms: settings.firstTokenMs, scope: "first-token" },
        raw: rawOpen,
        // one hedge per request, and none for a restart
        hedge: settings.hedge === undefined || restarts > 0
          ? undefined
          : { afterMs: hedgeAfter(settings.hedge), budget: settings.hedge.budget }
      }, context, onRouted)
    }
    const openRoute = Effect.withFiber((fiber) => routeNow(fiber.context))

    /** The answer is complete: what the upstream sends until the metadata grace period ends, then the routing. */
    const complete = (o: Opened, now: number) =>
      Effect.gen(function*() {
        // the metadata event usually follows at once, but never wait past the grace period counted from
        // messageStop, whatever else the upstream sends
        // (and never past the request's deadline: the answer is complete, only its usage is then estimated)
        const until = Math.min(stopAt + settings.metadataGraceMs, deadlineAt)
        const left = until - now
        if (usage !== undefined) return [yield* Effect.andThen(left <= 0 ? Effect.void : drain(o, until), finish)]
        const rest = left <= 0 ? Option.none() : yield* o.upstream.pullBefore(until, graceOver, (evs) => Effect.succeed(Option.some(evs)), toNone, toNone).pipe(
          Effect.catchCause(() => Effect.succeedNone)
        )
        if (Option.isSome(rest) && rest.value.length > 0) {
          // the metadata goes out at once; the next pull reads the upstream to its end and finishes
          note(rest.value)
          return rest.value
        }
        return [yield* finish]
      })

    const onEvents = (events: ReadonlyArray<ConverseStreamOutput>): Effect.Effect<ReadonlyArray<MuxStream.Event>, MuxError> => {
      note(events)
      if (stopped) stopAt = clock.currentTimeMillisUnsafe()
      return Effect.succeed(events)
    }

    const next: Effect.Effect<ReadonlyArray<MuxStream.Event>, MuxError | Cause.Done> = Effect.withFiber((fiber): Effect.Effect<ReadonlyArray<MuxStream.Event>, MuxError | Cause.Done> => {
      if (finished) return Cause.done()
      const r = routed
      if (r === undefined) return Effect.tapError(routeNow(fiber.context), (error) => request.end({ _tag: "Failure", error }))
      const now = clock.currentTimeMillisUnsafe()
      if (stopped) return complete(r.value, now)
      const left = deadlineAt - now
      const [limit, scope] = settings.stallMs < left ? [settings.stallMs, "stall" as const] : [left, "request" as const]
      const ms = Math.max(0, limit)
      const modelId = r.target.model.modelId
      return r.value.upstream.pullBefore(now + ms, () => BedrockError.deadline(scope, Duration.millis(ms), modelId), onEvents, interrupted, () => interrupted(endedEarly(modelId)))
    })

    // a pull emits non-empty chunks: every branch of `next` returns at least one event
    const pull = next as Pull.Pull<readonly [MuxStream.Event, ...Array<MuxStream.Event>], MuxError>
    return Effect.as(Scope.addFinalizer(channelScope, finalizer), pull)
  }
  const traced = options.traced
  /** The stream without its span, inside the traced one: it begins without asking about tracing again. */
  const untraced = () => Stream.fromChannel(Channel.fromTransform((_, scope) => Effect.withFiber((fiber) => begin(scope, fiber))))
  // the span only where a tracer is installed, decided when the stream runs: the untraced stream is one
  // channel and one step before the request begins (measured: time to first token, bench/results/README.md)
  return Stream.fromChannel(Channel.fromTransform((upstream, scope) =>
    Effect.withFiber((fiber) =>
      traced !== undefined && Telemetry.tracing(fiber.context)
        ? Channel.toTransform(Stream.toChannel(traced(untraced())))(upstream, scope)
        : begin(scope, fiber)
    )
  ))
}
