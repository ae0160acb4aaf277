import type { Context, Effect, Exit } from "effect"
import type { MuxError } from "../MuxError.ts"
import type { Running } from "./engine.ts"

/**
 * The Converse the Promise facade runs (`createMultiplexer`): the mux's own `converse`, whose answer carries
 * `routing` as a non-enumerable property, defined on the SDK's own output. The public `converse` answers a copy
 * of the output with an enumerable `routing`, which the facade would copy once more to hide it (measured on the
 * real SDK path, 5cad0c1 with the rest of that change: facade -10 µs a call, bench/results/README.md). The
 * same call can start from plain code (`start`): the facade's calls need no fiber of their own until the
 * engine's fast path hands over (measured: facade -9 to -12 µs a call, 37c3b0a). A symbol on the service the
 * facade builds itself (`BedrockMux.layer`), kept off the public service type.
 *
 * @internal
 */
export const facadeConverse: unique symbol = Symbol("effect-bedrock-mux/facadeConverse")

/** What `facadeConverse` names on the service (generic in BedrockMux's types: this module is below it). */
export interface FacadeConverse<MuxRequest, ConverseOptions, MuxResponse> {
  readonly converse: (request: MuxRequest, options?: ConverseOptions) => Effect.Effect<MuxResponse, MuxError>
  /**
   * The same call from plain code, its first attempt without a fiber where the fast path applies
   * (`Engine.runUnsafe`); undefined: run `converse`.
   */
  readonly start: (
    context: Context.Context<never>,
    request: MuxRequest,
    options: ConverseOptions | undefined,
    onExit: (exit: Exit.Exit<MuxResponse, MuxError>) => void
  ) => Running<MuxResponse> | undefined
  /** the targets of a label's route as the engine routes it now (models added or removed since included) */
  readonly labelTargets: (label: string) => ReadonlyArray<string>
}
