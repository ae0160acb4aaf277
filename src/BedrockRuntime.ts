/**
 * `BedrockRuntime`: the service every call in this library goes through, over
 * the real `@aws-sdk/client-bedrock-runtime` client.
 *
 * How it behaves:
 * - `converse` and `converseStream` fail only with `BedrockError`, classified
 *   by `BedrockError.fromSdkError`.
 * - Interruption aborts the HTTP request: a timed-out call, a lost race, or a
 *   stream consumer that stops reading closes the upstream connection, so
 *   Bedrock stops generating (and billing) abandoned work.
 * - Successes the SDK lets through are failures here: a Converse response
 *   without `output.message` fails with `Incomplete("missing-output")`, a
 *   stream that ends before `messageStop` with `Incomplete("no-message-stop")`.
 *   In-stream exception events (`throttlingException`, ...) fail the stream
 *   with the same classification as HTTP errors, never as data.
 *
 * Gotchas:
 * - `layer` turns the SDK's own retries off (`maxAttempts: 1`) unless you set
 *   `maxAttempts` yourself: the mux owns retries, and SDK retries would hide
 *   throttles from it and multiply the time an attempt takes.
 * - The SDK's default transport for Bedrock is HTTP/2 with a new connection
 *   per call, and on HTTP/2 a connection reset mid-stream ends the stream
 *   silently. `layer` uses a keep-alive HTTP/1.1 handler instead (faster, see
 *   bench/results, and a reset raises `ECONNRESET`). Either way the service
 *   fails a stream that ends before `messageStop`. Pass `requestHandler` to
 *   choose.
 * - `layerClient` wraps a client you own: it is not destroyed with the layer.
 *
 * @since 0.1.0
 */
import {
  BedrockRuntimeClient,
  type BedrockRuntimeClientConfig,
  ConverseCommand,
  type ConverseCommandInput,
  type ConverseCommandOutput,
  ConverseStreamCommand,
  type ConverseStreamCommandInput,
  type ConverseStreamCommandOutput,
  type ConverseStreamOutput
} from "@aws-sdk/client-bedrock-runtime"
import { NodeHttpHandler } from "@smithy/node-http-handler"
import { Cause, Channel, Context, Effect, Layer, type Pull, Scope, Stream } from "effect"
import * as http from "node:http"
import * as https from "node:https"
import * as BedrockError from "./BedrockError.ts"
import { nextEvent } from "./internal/eventIterator.ts"
import * as Incomplete from "./internal/incomplete.ts"

/**
 * The shape of the `BedrockRuntime` service.
 * @since 0.1.0
 */
export interface Service {
  /** One Converse call. Interruption aborts the HTTP request. */
  readonly converse: (input: ConverseCommandInput) => Effect.Effect<ConverseCommandOutput, BedrockError.BedrockError>
  /**
   * One ConverseStream call as a stream of the SDK's output events. The
   * stream fails unless it reached `messageStop`; ending it early (take,
   * interrupt) aborts the HTTP response.
   */
  readonly converseStream: (
    input: ConverseStreamCommandInput
  ) => Stream.Stream<ConverseStreamOutput, BedrockError.BedrockError>
  /**
   * Optional: one Converse call as a Promise that aborting `signal` aborts;
   * it rejects with a `BedrockError`, and a response without output is one.
   * The mux's fast path uses it to run an attempt under its deadline without
   * an Effect of its own per call (measured: a fiber per attempt costs about
   * 25 µs on the real SDK path, bench/results/README.md). A service without
   * it is called through `converse`.
   */
  readonly sendConverse?: ((input: ConverseCommandInput, signal: AbortSignal) => Promise<ConverseCommandOutput>) | undefined
  /**
   * Optional: one ConverseStream call as a Promise of the SDK's event
   * iterable, for the mux's fast path (read a pull at a time, each pull one
   * Effect step under the mux's deadline heap instead of a race per event).
   * Aborting `signal` aborts the HTTP request, during the call and while the
   * body is read; the call rejects with a `BedrockError`, the iterable throws
   * the SDK's own errors. It does not check for `messageStop` (the mux does).
   * A service without it is called through `converseStream`.
   */
  readonly sendConverseStream?:
    | ((input: ConverseStreamCommandInput, signal: AbortSignal) => Promise<AsyncIterable<ConverseStreamOutput>>)
    | undefined
}

/**
 * The Bedrock Runtime service.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { BedrockRuntime } from "effect-bedrock-mux"
 *
 * const program = Effect.gen(function*() {
 *   const bedrock = yield* BedrockRuntime
 *   const out = yield* bedrock.converse({
 *     modelId: "amazon.nova-lite-v1:0",
 *     messages: [{ role: "user", content: [{ text: "Hello" }] }]
 *   })
 *   return out.output?.message?.content?.[0]?.text
 * })
 * program.pipe(Effect.provide(BedrockRuntime.layer({ region: "us-east-1" })))
 * ```
 * @since 0.1.0
 */
export class BedrockRuntime extends Context.Service<BedrockRuntime, Service>()("effect-bedrock-mux/BedrockRuntime") {
  /**
   * Builds one `BedrockRuntimeClient` from `config` (passed through to the
   * SDK), with SDK retries off and a keep-alive HTTP/1.1 handler unless the
   * config sets `maxAttempts` / `requestHandler`. The client is destroyed when
   * the layer's scope closes.
   */
  static readonly layer = (config: BedrockRuntimeClientConfig = {}): Layer.Layer<BedrockRuntime> =>
    Layer.effect(
      BedrockRuntime,
      Effect.map(
        Effect.acquireRelease(
          Effect.sync(() => new BedrockRuntimeClient(clientConfig(config))),
          (client) => Effect.sync(() => client.destroy())
        ),
        make
      )
    )

  /** Wraps a client you already have; you keep ownership (it is not destroyed). */
  static readonly layerClient = (client: BedrockRuntimeClient): Layer.Layer<BedrockRuntime> =>
    Layer.succeed(BedrockRuntime, make(client))
}

/**
 * The default transport: HTTP/1.1 with keep-alive and enough sockets for a
 * busy process. Exported so users who pass their own config can reuse it.
 *
 * @example
 * ```ts
 * import { BedrockRuntime, defaultRequestHandler } from "effect-bedrock-mux"
 * BedrockRuntime.layer({ region: "us-east-1", requestHandler: defaultRequestHandler({ maxSockets: 512 }) })
 * ```
 * @since 0.1.0
 */
export const defaultRequestHandler = (options: { readonly maxSockets?: number } = {}): NodeHttpHandler => {
  const maxSockets = options.maxSockets ?? 256
  return new NodeHttpHandler({
    httpAgent: new http.Agent({ keepAlive: true, maxSockets }),
    httpsAgent: new https.Agent({ keepAlive: true, maxSockets })
  })
}

/**
 * The SDK client config `layer` uses: yours, with `maxAttempts: 1` and
 * `defaultRequestHandler()` filled in where you left them out.
 * @since 0.1.0
 */
export const clientConfig = (config: BedrockRuntimeClientConfig): BedrockRuntimeClientConfig => ({
  ...config,
  maxAttempts: config.maxAttempts ?? 1,
  requestHandler: config.requestHandler ?? defaultRequestHandler()
})

/**
 * The service over a client. Exposed for users who build their own layer.
 * The facade (`createMultiplexer`) hands over this service's answers
 * themselves, with a hidden `routing` defined on them; a service made from
 * this one (`{ ...service, converse }`) is any other runtime to it, and its
 * answers are copied first.
 *
 * @example
 * ```ts
 * import { BedrockRuntimeClient } from "@aws-sdk/client-bedrock-runtime"
 * import { BedrockRuntime, makeBedrockRuntime } from "effect-bedrock-mux"
 * const service = makeBedrockRuntime(new BedrockRuntimeClient({ region: "us-east-1" }))
 * ```
 * @since 0.1.0
 */
export const make = (client: BedrockRuntimeClient): Service => {
  const service = makeService(client)
  owned.add(service)
  return service
}

/**
 * The services `make` built: their answers are the SDK's own output objects, a fresh one per call, which the
 * facade hands over with `routing` defined on them instead of copying them (internal/facadeConverse.ts). A
 * service of anyone else's (a copy of one of these included) may answer one object every time: copied.
 */
const owned = new WeakSet<Service>()

/**
 * Is `service` one `make` built (its answers fresh SDK output objects)?
 * @internal
 */
export const ownsOutput = (service: Service): boolean => owned.has(service)

const makeService = (client: BedrockRuntimeClient): Service => ({
  converse: (input) =>
    Effect.tryPromise({
      try: (signal) => client.send(new ConverseCommand(input), { abortSignal: signal }),
      catch: (e) => BedrockError.fromSdkError(e, input.modelId)
    }).pipe(
      Effect.flatMap((out) => {
        const missing = missingOutput(input, out)
        return missing === undefined ? Effect.succeed(out) : Effect.fail(missing)
      })
    ),
  sendConverse: (input, signal) =>
    client.send(new ConverseCommand(input), { abortSignal: signal }).then(
      (out) => {
        const missing = missingOutput(input, out)
        if (missing !== undefined) throw missing
        return out
      },
      (e) => {
        throw BedrockError.fromSdkError(e, input.modelId)
      }
    ),
  sendConverseStream: (input, signal) =>
    client.send(new ConverseStreamCommand(input), { abortSignal: signal }).then(
      (response) => {
        if (response.stream === undefined) throw Incomplete.noStream(input.modelId)
        return response.stream
      },
      (e) => {
        throw BedrockError.fromSdkError(e, input.modelId)
      }
    ),
  converseStream: (input) => eventStream(client, input)
})

/**
 * ConverseStream as one channel whose every pull is one callback over the SDK's event iterator, the first one
 * sending the request (measured: time to first token, bench/results/README.md; through `Stream.unwrap`,
 * `Stream.fromAsyncIterable` and `requireMessageStop` it was +141 to +175 µs over the SDK's own iterator).
 * The request's own AbortController lives as long as the stream: the scope's end aborts it unless the body
 * was read to its end (aborting a finished request still destroys its socket, measured 140 µs a stream, and
 * the next request pays for a new connection), and so does an interrupted pull.
 */
const eventStream = (client: BedrockRuntimeClient, input: ConverseStreamCommandInput): Stream.Stream<ConverseStreamOutput, BedrockError.BedrockError> =>
  Stream.fromChannel(Channel.fromTransform((_, scope) => {
    const modelId = input.modelId
    const controller = new AbortController()
    let events: AsyncIterator<ConverseStreamOutput> | undefined
    let ended = false
    let stopped = false
    const abort = Effect.sync(() => controller.abort())
    const afterResponse = (e: unknown) => Effect.fail(BedrockError.fromSdkError(e, modelId, "after-response"))
    const read = (it: AsyncIterator<ConverseStreamOutput>, resume: (effect: Pull.Pull<readonly [ConverseStreamOutput], BedrockError.BedrockError>) => void) =>
      nextEvent(it).then(
        (r) => {
          if (r.done === true) {
            ended = true
            // the SDK ends a cut HTTP/2 stream silently: an end before messageStop is a failure
            return resume(stopped ? Cause.done() : Effect.fail(Incomplete.endedEarly(modelId)))
          }
          if (r.value.messageStop !== undefined) stopped = true
          resume(Effect.succeed([r.value] as const))
        },
        (e) => resume(afterResponse(e))
      )
    // a throw from the SDK's own code before its Promise is the pull's failure, never a pull left hanging
    const pull: Pull.Pull<readonly [ConverseStreamOutput], BedrockError.BedrockError> = Effect.callback((resume) => {
      if (events !== undefined) {
        read(events, resume)
        return abort
      }
      let sent: Promise<ConverseStreamCommandOutput>
      try {
        sent = client.send(new ConverseStreamCommand(input), { abortSignal: controller.signal })
      } catch (e) {
        resume(Effect.fail(BedrockError.fromSdkError(e, modelId)))
        return abort
      }
      sent.then(
        (response) => {
          if (response.stream === undefined) return resume(Effect.fail(Incomplete.noStream(modelId)))
          try {
            events = response.stream[Symbol.asyncIterator]()
          } catch (e) {
            return resume(afterResponse(e))
          }
          read(events, resume)
        },
        (e) => resume(Effect.fail(BedrockError.fromSdkError(e, modelId)))
      )
      return abort
    })
    const close = Effect.sync(() => {
      if (!ended) controller.abort()
    })
    return Effect.as(Scope.addFinalizer(scope, close), pull)
  }))

/** A Converse "success" without `output.message` is a failure (the SDK lets it through). */
const missingOutput = (input: ConverseCommandInput, out: ConverseCommandOutput): BedrockError.BedrockError | undefined =>
  out.output?.message !== undefined
    ? undefined
    : Incomplete.missingOutput(input.modelId, { requestId: out.$metadata?.requestId, httpStatusCode: out.$metadata?.httpStatusCode })

/**
 * Fails a stream of ConverseStream events that ends before `messageStop`
 * (the SDK ends a cut HTTP/2 stream silently), for a `BedrockRuntime` of
 * your own over an Effect stream of events. The simulator uses it; the SDK's
 * service (`make`) makes the same check in its own stream.
 * @since 0.1.0
 */
export const requireMessageStop = <E>(
  events: Stream.Stream<ConverseStreamOutput, E>,
  modelId?: string
): Stream.Stream<ConverseStreamOutput, E | BedrockError.BedrockError> =>
  Stream.suspend(() => {
    let stopped = false
    return events.pipe(
      Stream.tap((ev) => {
        if (ev.messageStop !== undefined) stopped = true
        return Effect.void
      }),
      Stream.concat(Stream.suspend(() =>
        stopped
          ? Stream.empty
          : Stream.fail(Incomplete.endedEarly(modelId))
      ))
    )
  })
