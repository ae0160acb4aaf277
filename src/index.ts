/**
 * effect-bedrock-mux: a resilience layer for Amazon Bedrock Converse and
 * ConverseStream, written as composable Effect values.
 *
 * @since 0.1.0
 */

/** The error taxonomy of every Bedrock call. @since 0.1.0 */
export * as BedrockError from "./BedrockError.ts"

/** The Bedrock Runtime service over the real AWS SDK client. @since 0.1.0 */
export { BedrockRuntime, clientConfig, defaultRequestHandler, make as makeBedrockRuntime } from "./BedrockRuntime.ts"
export type { Service as BedrockRuntimeService } from "./BedrockRuntime.ts"

/** The in-memory Bedrock for demos and tests. @since 0.1.0 */
export { BedrockSimulator } from "./BedrockSimulator.ts"
export type { Attempt as SimulatorAttempt, Options as SimulatorOptions } from "./BedrockSimulator.ts"

/** The simulator's (and the loopback fake's) script. @since 0.1.0 */
export * as SimulatorScript from "./SimulatorScript.ts"

/** The mux: routing, failover, deadlines, breakers, health and stats. @since 0.1.0 */
export { BedrockMux, BedrockRuntimes } from "./BedrockMux.ts"
export type {
  AttemptContext,
  ConverseOptions,
  Health,
  ModelHealth,
  MuxRequest,
  MuxResponse,
  MuxStreamRequest,
  Routed,
  RouteOptions,
  Service as BedrockMuxService,
  SimpleHealth,
  Stats,
  StreamOptions
} from "./BedrockMux.ts"

/** How a response was reached: the routing record. @since 0.1.0 */
export * as Routing from "./Routing.ts"

/** A pool entry, as configured. @since 0.1.0 */
export * as Model from "./Model.ts"

/** Tiers of models and their composition. @since 0.1.0 */
export * as Route from "./Route.ts"

/** Which eligible model a request goes to. @since 0.1.0 */
export * as Selector from "./Selector.ts"

/** What may keep a model out of a request: breakers, cooldowns, quotas, your own. @since 0.1.0 */
export * as Guard from "./Guard.ts"

/** A pool entry at run time: model, runtime, live stats. @since 0.1.0 */
export * as Target from "./Target.ts"

/** The events of `converseStream` and helpers to read them. @since 0.1.0 */
export * as MuxStream from "./MuxStream.ts"

/** What a mux does, as events (`BedrockMux.events`). @since 0.1.0 */
export * as MuxEvent from "./MuxEvent.ts"

/** The mux's JSON config. @since 0.1.0 */
export * as MuxConfig from "./MuxConfig.ts"

/** How a routed request fails. @since 0.1.0 */
export * as MuxError from "./MuxError.ts"

/** Where breaker (and quota) state lives. @since 0.1.0 */
export * as MuxStore from "./MuxStore.ts"

/** Routing policies as values. @since 0.1.0 */
export * as Policy from "./Policy.ts"

/** Scoring answers as refusals: the classifiers and the detection policy value. @since 0.1.0 */
export * as Refusal from "./Refusal.ts"

/** The Promise facade, drop-in for the aws-samples multiplexer. @since 0.1.0 */
export {
  BedrockMultiplexer,
  CancelledError,
  CircuitBreakerState,
  createMultiplexer,
  ErrorType,
  FailFastError,
  InvocationError,
  MultiplexerError,
  OutcomeType,
  TimeoutError,
  VERSION
} from "./createMultiplexer.ts"
export type {
  CircuitBreakerStatus,
  DurationInput,
  EnhancedErrorResponse,
  ErrorResponse,
  InvocationFailure,
  LatencyMetrics,
  ModelConfiguration,
  ModelHealthStatus,
  ModelOutcome,
  ModelStats,
  Multiplexer,
  MultiplexerConfig,
  MultiplexerErrorCode,
  MultiplexerEvents,
  MultiplexerInput,
  MultiplexerOptions,
  MultiplexerStats,
  MuxConfigFields,
  ProcessRequestOptions,
  RefusalDetectionConfig,
  ServiceTierType,
  SystemHealthStatus,
  TierEscalationConfig,
  TracingConfig
} from "./createMultiplexer.ts"

/** The evaluation gate: score candidates on a golden set, write the next config from the evidence. @since 0.1.0 */
export * as Eval from "./Eval.ts"
