/**
 * Bedrock names an in-stream exception by its lowerCamel union member
 * (`throttlingException`) and an HTTP error by its shape (`ThrottlingException`).
 * One mapping, used wherever the two meet.
 */

/** `throttlingException` → `ThrottlingException` (a shape name is returned unchanged). */
export const shapeNameOf = <S extends string>(name: S): Capitalize<S> =>
  (name.charAt(0).toUpperCase() + name.slice(1)) as Capitalize<S>
