/** Token usage as Bedrock reports it, read once for every call kind (Converse output, a stream's metadata event). */
import type { TokenUsage } from "@aws-sdk/client-bedrock-runtime"
import type { Usage } from "./guard.ts"

/** What a call used; `quota` as Bedrock counts it against TPM (input + output + cache writes). Undefined: not reported. */
export const fromSdk = (u: TokenUsage | undefined): Usage | undefined => {
  if (u === undefined) return undefined
  const inputTokens = u.inputTokens ?? 0
  const outputTokens = u.outputTokens ?? 0
  return { inputTokens, outputTokens, quota: inputTokens + outputTokens + (u.cacheWriteInputTokens ?? 0) }
}
