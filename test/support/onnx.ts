/**
 * A tiny ONNX refusal classifier, written as protobuf bytes by hand (no
 * onnx package needed): the aws-samples model contract (string `input`
 * [1, 1] → `probabilities` [1, 2]), with the text preprocessing in the graph
 * as theirs has it: StringNormalizer (lower case) → StringSplit (spaces) →
 * TfIdfVectorizer (term counts over a vocabulary) → MatMul + Add → Softmax.
 * Each vocabulary word moves the refusal logit by its weight; `bias` is the
 * logit margin of "complied" when no word matches.
 */
/** A protobuf field: its number, and a varint or length-delimited value. */
type Field = [number, "varint", number | bigint] | [number, "bytes", Uint8Array]

const varint = (n: bigint): Array<number> => {
  const out: Array<number> = []
  let v = BigInt.asUintN(64, n) // negative int64s are ten bytes of two's complement
  while (v >= 0x80n) {
    out.push(Number(v & 0x7fn) | 0x80)
    v >>= 7n
  }
  out.push(Number(v))
  return out
}
const enc = new TextEncoder()
const msg = (fields: ReadonlyArray<Field>): Uint8Array => {
  const out: Array<number> = []
  for (const [no, kind, v] of fields) {
    if (kind === "varint") out.push(...varint(BigInt(no << 3)), ...varint(BigInt(v)))
    else out.push(...varint(BigInt((no << 3) | 2)), ...varint(BigInt(v.length)), ...v)
  }
  return Uint8Array.from(out)
}
const s = (t: string) => enc.encode(t)
const attrS = (name: string, v: string): Field[] => [[1, "bytes", s(name)], [4, "bytes", s(v)], [20, "varint", 3]]
const attrI = (name: string, v: number): Field[] => [[1, "bytes", s(name)], [3, "varint", v], [20, "varint", 2]]
const attrInts = (name: string, vs: number[]): Field[] => [[1, "bytes", s(name)], ...vs.map((v) => [8, "varint", v] as Field), [20, "varint", 7]]
const attrStrings = (name: string, vs: string[]): Field[] => [[1, "bytes", s(name)], ...vs.map((v) => [9, "bytes", s(v)] as Field), [20, "varint", 8]]
const node = (op: string, inputs: string[], outputs: string[], attrs: Field[][] = [], domain = ""): Field[] => [
  ...inputs.map((i) => [1, "bytes", s(i)] as Field), ...outputs.map((o) => [2, "bytes", s(o)] as Field),
  [3, "bytes", s(op + "_" + outputs[0])], [4, "bytes", s(op)], ...attrs.map((a) => [5, "bytes", msg(a)] as Field),
  ...(domain ? [[7, "bytes", s(domain)] as Field] : [])
]
const floatTensor = (name: string, dims: number[], data: number[]): Field[] => [
  ...dims.map((d) => [1, "varint", d] as Field), [2, "varint", 1], [8, "bytes", s(name)],
  [9, "bytes", new Uint8Array(new Float32Array(data).buffer)]
]
const int64Tensor = (name: string, dims: number[], data: number[]): Field[] => [
  ...dims.map((d) => [1, "varint", d] as Field), [2, "varint", 7], [8, "bytes", s(name)],
  [9, "bytes", new Uint8Array(new BigInt64Array(data.map(BigInt)).buffer)]
]
const dim = (d: number | string): Field[] => typeof d === "number" ? [[1, "varint", d]] : [[2, "bytes", s(d)]]
const valueInfo = (name: string, elemType: number, dims: Array<number | string>): Field[] => [
  [1, "bytes", s(name)],
  [2, "bytes", msg([[1, "bytes", msg([[1, "varint", elemType], [2, "bytes", msg(dims.map((d) => [1, "bytes", msg(dim(d))] as Field))]])]])]
]
/** The model bytes; write them to a file for `Refusal.onnx({ modelPath })`. */
export const refusalModel = (vocab: Record<string, number>, bias: number): Uint8Array => {
  const words = Object.keys(vocab)
  const W = words.flatMap((w) => [-vocab[w]!, vocab[w]!])
  const graph: Field[] = [
    [1, "bytes", msg(node("StringNormalizer", ["input"], ["lower"], [attrS("case_change_action", "LOWER"), attrS("locale", "C.UTF-8")]))],
    [1, "bytes", msg(node("StringSplit", ["lower"], ["tokens", "lengths"], [attrS("delimiter", " ")]))],
    [1, "bytes", msg(node("Reshape", ["tokens", "shape2d"], ["tokens2d"]))],
    [1, "bytes", msg(node("TfIdfVectorizer", ["tokens2d"], ["tf"], [
      attrI("max_gram_length", 1), attrI("min_gram_length", 1), attrI("max_skip_count", 0), attrS("mode", "TF"),
      attrInts("ngram_counts", [0]), attrInts("ngram_indexes", words.map((_, i) => i)), attrStrings("pool_strings", words)
    ]))],
    [1, "bytes", msg(node("MatMul", ["tf", "W"], ["logits0"]))],
    [1, "bytes", msg(node("Add", ["logits0", "b"], ["logits"]))],
    [1, "bytes", msg(node("Softmax", ["logits"], ["probabilities"], [attrI("axis", -1)]))],
    [2, "bytes", s("refusal")],
    [5, "bytes", msg(int64Tensor("shape2d", [2], [0, -1]))],
    [5, "bytes", msg(floatTensor("W", [words.length, 2], W))],
    [5, "bytes", msg(floatTensor("b", [2], [bias, -bias]))],
    [11, "bytes", msg(valueInfo("input", 8, [1, 1]))],
    [12, "bytes", msg(valueInfo("probabilities", 1, [1, 2]))]
  ]
  return msg([[1, "varint", 9], [2, "bytes", s("test")], [7, "bytes", msg(graph)], [8, "bytes", msg([[1, "bytes", s("")], [2, "varint", 20]])]])
}
