/** Store keys per target, built once per target (the hot path reads them on every request). */
import type { Target } from "../Target.ts"

/** `namespace/target`, cached per target object. */
export const keyCache = (namespace: string, suffix = ""): (target: Target) => string => {
  const cache = new WeakMap<Target, string>()
  return (target) => {
    let key = cache.get(target)
    if (key === undefined) {
      key = `${namespace}/${target.model.target}${suffix}`
      cache.set(target, key)
    }
    return key
  }
}
