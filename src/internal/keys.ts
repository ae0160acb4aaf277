/** Store keys per target, built once per target (the hot path reads them on every request). */
import type { Target } from "../Target.ts"

/** A target's store key: `namespace/target` (and a suffix: a service tier's bucket). */
export const keyOf = (namespace: string, target: string, suffix = ""): string => `${namespace}/${target}${suffix}`

/** `keyOf`, cached per target object. */
export const keyCache = (namespace: string, suffix = ""): (target: Target) => string => {
  const cache = new WeakMap<Target, string>()
  return (target) => {
    let key = cache.get(target)
    if (key === undefined) {
      key = keyOf(namespace, target.model.target, suffix)
      cache.set(target, key)
    }
    return key
  }
}
