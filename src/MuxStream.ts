/**
 * `MuxStream`: the events of `BedrockMux.converseStream` and helpers to
 * read them.
 *
 * The contract:
 * - Until the first content event, any failure fails over to another model
 *   out of sight: the caller sees one clean stream from the model that
 *   answered.
 * - After it, the mux never continues on another model silently: the stream
 *   fails with `MuxError(StreamInterrupted)` (reason and partial usage), or,
 *   with `onInterrupt: "restart"`, emits a `{ reset }` event and then
 *   another model's whole answer (the reset goes out with that answer's
 *   first events; when no model can answer, there is no reset and the
 *   stream fails with `StreamInterrupted`). Output of two models is never
 *   spliced.
 * - A stream succeeds only after `messageStop`; a stream cut before it fails.
 * - The last event of a successful stream is `{ routing }`: the model that
 *   answered, every attempt, the usage (`estimated` when the model sent no
 *   metadata), time to first token.
 *
 * Gotchas:
 * - The SDK's events pass through untouched. The two mux events carry no SDK
 *   key, so code that reads `ev.contentBlockDelta?.delta?.text` keeps working;
 *   tell them apart with `isReset` / `isRouting`.
 * - When you forward events to a client, forward the reset too: text
 *   received before it belongs to an abandoned answer.
 *
 * @since 0.1.0
 */
import type { ConverseStreamOutput } from "@aws-sdk/client-bedrock-runtime"
import { Effect, Stream } from "effect"
import type * as BedrockError from "./BedrockError.ts"
import type { Routing } from "./Routing.ts"
import type { Usage } from "./MuxError.ts"

/** The SDK event keys, absent from the mux's own events. */
interface NoSdkKeys {
  readonly messageStart?: never
  readonly contentBlockStart?: never
  readonly contentBlockDelta?: never
  readonly contentBlockStop?: never
  readonly messageStop?: never
  readonly metadata?: never
  readonly internalServerException?: never
  readonly modelStreamErrorException?: never
  readonly validationException?: never
  readonly throttlingException?: never
  readonly serviceUnavailableException?: never
  readonly $unknown?: never
}

/**
 * Emitted before a restarted answer: discard everything received so far.
 * @since 0.1.0
 */
export interface Reset {
  /** the model whose answer is abandoned */
  readonly modelId: string
  readonly target: string
  readonly reason: BedrockError.ReasonTag
  readonly error: BedrockError.BedrockError
  /** content events of the abandoned answer */
  readonly discarded: number
}

/**
 * How a stream was answered, emitted last.
 * @since 0.1.0
 */
export interface StreamRouting extends Routing {
  readonly usage: Usage
  /** from the answering attempt's start to its first content event */
  readonly timeToFirstTokenMs: number
  /** from the request's start to its end */
  readonly durationMs: number
  /** answers abandoned with a reset before this one */
  readonly restarts: number
}

/** @since 0.1.0 */
export interface ResetEvent extends NoSdkKeys {
  readonly reset: Reset
}

/** @since 0.1.0 */
export interface RoutingEvent extends NoSdkKeys {
  readonly routing: StreamRouting
}

/**
 * An event of `converseStream`.
 * @example
 * ```ts
 * import { MuxStream } from "effect-bedrock-mux"
 * const text = (ev: MuxStream.Event) => ev.contentBlockDelta?.delta?.text ?? ""
 * ```
 * @since 0.1.0
 */
export type Event = ConverseStreamOutput | ResetEvent | RoutingEvent

/**
 * @example
 * ```ts
 * import { MuxStream } from "effect-bedrock-mux"
 * const restarted = (ev: MuxStream.Event) => MuxStream.isReset(ev)
 * ```
 * @since 0.1.0
 */
export const isReset = (ev: Event): ev is ResetEvent => "reset" in ev && ev.reset !== undefined

/**
 * @example
 * ```ts
 * import { MuxStream } from "effect-bedrock-mux"
 * const model = (ev: MuxStream.Event) => (MuxStream.isRouting(ev) ? ev.routing.modelId : undefined)
 * ```
 * @since 0.1.0
 */
export const isRouting = (ev: Event): ev is RoutingEvent => "routing" in ev && ev.routing !== undefined

/**
 * A stream's answer: its text (a reset discards what came before it), its
 * routing record, and the number of resets.
 * @since 0.1.0
 */
export interface Answer {
  readonly text: string
  readonly routing: StreamRouting | undefined
  readonly resets: number
}

/**
 * Runs a stream of events and collects the answer's text.
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { BedrockMux, MuxStream } from "effect-bedrock-mux"
 * const answer = Effect.gen(function*() {
 *   const mux = yield* BedrockMux
 *   const { text, routing } = yield* MuxStream.collect(
 *     mux.converseStream({ messages: [{ role: "user", content: [{ text: "hi" }] }] })
 *   )
 *   return `${routing?.modelId}: ${text}`
 * })
 * ```
 * @since 0.1.0
 */
export const collect = <E, R>(stream: Stream.Stream<Event, E, R>): Effect.Effect<Answer, E, R> =>
  Stream.runFold(
    stream,
    (): Answer => ({ text: "", routing: undefined, resets: 0 }),
    (acc, ev): Answer =>
      isReset(ev)
        ? { text: "", routing: undefined, resets: acc.resets + 1 }
        : isRouting(ev)
        ? { ...acc, routing: ev.routing }
        : { ...acc, text: acc.text + (ev.contentBlockDelta?.delta?.text ?? "") }
  )
