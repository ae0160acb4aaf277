/**
 * `effect-bedrock-mux/testing`: test infrastructure that runs the real AWS SDK
 * against a scripted Bedrock.
 *
 * - `FakeBedrock`: a loopback HTTP/1.1 + HTTP/2 server that speaks the Bedrock
 *   Runtime wire protocol, driven by a `SimulatorScript`.
 *
 * @example
 * ```ts
 * import { FakeBedrock } from "effect-bedrock-mux/testing"
 * const fake = await FakeBedrock.start({ models: { "amazon.nova-lite-v1:0": { answer: "Hello" } } })
 * // new BedrockRuntimeClient({ region: "us-east-1", endpoint: fake.url, credentials: { accessKeyId: "x", secretAccessKey: "x" } })
 * await fake.close()
 * ```
 * @since 0.1.0
 */

/**
 * The loopback fake Bedrock Runtime server.
 * @since 0.1.0
 */
export * as FakeBedrock from "./FakeBedrock.ts"
