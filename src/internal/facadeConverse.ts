/**
 * The Converse the Promise facade runs (`createMultiplexer`): the mux's own `converse`, whose answer is the SDK's
 * output with `routing` defined on it as a non-enumerable property. The public `converse` answers a copy of the
 * output with an enumerable `routing`, which the facade would copy once more to hide it (measured on the real SDK
 * path: bench/results/README.md). Kept off the public service type: a service without it (a user's own
 * `BedrockMux` layer) is run through its `converse`, and the facade hides `routing` itself.
 *
 * @internal
 */
export const facadeConverse: unique symbol = Symbol("effect-bedrock-mux/facadeConverse")
