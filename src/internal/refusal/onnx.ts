/**
 * An ONNX refusal classifier through `onnxruntime-node`, an optional peer
 * loaded by dynamic import only when a model path is given. Nothing is
 * downloaded: the model is the file you name.
 *
 * The model contract is the aws-samples multiplexer's: a string tensor input
 * (`input`, shape [1, 1]) holding the answer's text, and either a
 * `probabilities` output ([1, 2]: complied, refused; the refusal score is
 * index 1) or a `label` output (`"rejected"` is a refusal). Text
 * preprocessing (lower-casing, tokenizing, TF-IDF) lives in the model graph,
 * as it does in theirs; we pass the raw text.
 */
import { Effect } from "effect"

/** What we use of `onnxruntime-node` (structural, so its types stay optional). */
interface Tensor {
  readonly data: ArrayLike<number> | ReadonlyArray<string>
}
interface Session {
  readonly inputNames: ReadonlyArray<string>
  readonly outputNames: ReadonlyArray<string>
  run(feeds: Record<string, unknown>): Promise<Record<string, Tensor | undefined>>
  release(): Promise<void>
}
interface Ort {
  readonly InferenceSession: { create(path: string, options?: unknown): Promise<Session> }
  readonly Tensor: new(type: "string", data: ReadonlyArray<string>, dims: ReadonlyArray<number>) => unknown
}

/** Where an ONNX model's refusal score is read. */
export interface OnnxOptions {
  readonly modelPath: string
  /** default "input" */
  readonly inputName?: string
  /** default "probabilities" */
  readonly probabilitiesName?: string
  /** index of the refusal class in the probabilities; default 1 */
  readonly refusalIndex?: number
  /** default "label" */
  readonly labelName?: string
  /** default "rejected" */
  readonly refusalLabel?: string
}

/** A loaded session: scores a text, and releases the native session. */
export interface Loaded {
  readonly score: (text: string) => Promise<number>
  readonly release: () => Promise<void>
}

// a variable specifier: neither TypeScript nor a bundler needs the optional peer
const ORT = "onnxruntime-node"

/** Loads the runtime and the model; rejects with a message naming what is missing. */
export const load = async (options: OnnxOptions): Promise<Loaded> => {
  let ort: Ort
  try {
    const mod = (await import(ORT)) as Ort & { readonly default?: Ort }
    ort = mod.InferenceSession !== undefined ? mod : mod.default!
  } catch (cause) {
    throw new Error(`refusal detection with a modelPath needs the optional peer onnxruntime-node (npm install onnxruntime-node): ${String(cause)}`, { cause })
  }
  const session = await ort.InferenceSession.create(options.modelPath, { executionProviders: ["cpu"] })
  const inputName = options.inputName ?? "input"
  const probabilities = options.probabilitiesName ?? "probabilities"
  const label = options.labelName ?? "label"
  if (!session.inputNames.includes(inputName)) {
    await session.release()
    throw new Error(`the ONNX model has no input "${inputName}" (it has ${session.inputNames.join(", ")})`)
  }
  if (!session.outputNames.includes(probabilities) && !session.outputNames.includes(label)) {
    await session.release()
    throw new Error(`the ONNX model has neither a "${probabilities}" nor a "${label}" output (it has ${session.outputNames.join(", ")})`)
  }
  const index = options.refusalIndex ?? 1
  const refused = options.refusalLabel ?? "rejected"
  return {
    score: async (text) => {
      const out = await session.run({ [inputName]: new ort.Tensor("string", [text], [1, 1]) })
      const p = out[probabilities]
      if (p !== undefined) return Number(p.data[index])
      return out[label]?.data[0] === refused ? 1 : 0
    },
    release: () => session.release()
  }
}

/** `load` as a scoped Effect: the session is released with the scope. */
export const acquire = (options: OnnxOptions) =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => load(options), catch: (cause) => cause instanceof Error ? cause : new Error(String(cause)) }),
    (loaded) => Effect.promise(() => loaded.release())
  )
