/**
 * Reading the SDK's ConverseStream event iterator from callback code (the
 * runtime's stream and the mux's raw upstream both pull it one event at a
 * time, without a fiber per event).
 */
import type { ConverseStreamOutput } from "@aws-sdk/client-bedrock-runtime"

/**
 * The iterator's next event. A throw from the SDK's code before its Promise
 * is that Promise's rejection, so a reader that handles rejections never
 * leaves a pull hanging or its deadline behind.
 *
 * @example
 * ```ts
 * nextEvent(events).then(onEvent, onError)
 * ```
 */
export const nextEvent = (events: AsyncIterator<ConverseStreamOutput>): Promise<IteratorResult<ConverseStreamOutput>> => {
  try {
    return events.next()
  } catch (e) {
    return Promise.reject(e)
  }
}
