/**
 * The `Incomplete` errors an answer can end with, built in one place for the
 * runtimes (the SDK's and the simulator's) and the mux's stream.
 */
import * as BedrockError from "../BedrockError.ts"

/** Where the response came from, when known. */
export interface Origin {
  readonly requestId?: string | undefined
  readonly httpStatusCode?: number | undefined
}

export const incomplete = (
  modelId: string | undefined,
  detail: BedrockError.Incomplete["detail"],
  message: string,
  origin: Origin = {}
): BedrockError.BedrockError =>
  new BedrockError.BedrockError({
    reason: new BedrockError.Incomplete({ detail }),
    message,
    ...(modelId !== undefined ? { modelId } : {}),
    ...(origin.requestId !== undefined ? { requestId: origin.requestId } : {}),
    ...(origin.httpStatusCode !== undefined ? { httpStatusCode: origin.httpStatusCode } : {})
  })

/** A ConverseStream that ended before `messageStop` (the SDK ends a cut HTTP/2 stream silently). */
export const endedEarly = (modelId: string | undefined): BedrockError.BedrockError =>
  incomplete(modelId, "no-message-stop", "ConverseStream ended before messageStop")

/** A Converse "success" without `output.message` (the SDK lets it through). */
export const missingOutput = (modelId: string | undefined, origin: Origin): BedrockError.BedrockError =>
  incomplete(modelId, "missing-output", "Converse response has no output.message", origin)

/** A ConverseStream response without its event stream. */
export const noStream = (modelId: string | undefined): BedrockError.BedrockError =>
  incomplete(modelId, "no-message-stop", "ConverseStream response has no stream")
