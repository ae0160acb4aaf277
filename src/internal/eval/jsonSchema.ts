/**
 * A small JSON Schema validator for the common subset, written here so the
 * `json` expectation of a golden case needs no dependency.
 *
 * Supported keywords: `type` (one name or an array of names: object, array,
 * string, number, integer, boolean, null), `properties`, `required`,
 * `additionalProperties` (boolean or a schema), `items` (one schema for
 * every element), `enum`, `const`, `minimum`, `maximum`, `minLength`,
 * `maxLength` (in code points), `minItems`, `maxItems`. The annotations
 * `$schema`, `$id`, `title`, `description`, `default`, `examples` are
 * accepted and ignored.
 *
 * Any other keyword (`pattern`, `$ref`, `oneOf`, `format`, ...) is a problem
 * of the schema itself, reported when the golden set is decoded: a keyword
 * that would be silently ignored would make a case pass that should not.
 */

/** A JSON value. */
export type Json = null | boolean | number | string | ReadonlyArray<Json> | { readonly [key: string]: Json }

const TYPES = ["object", "array", "string", "number", "integer", "boolean", "null"] as const
type TypeName = typeof TYPES[number]

const ANNOTATIONS = new Set(["$schema", "$id", "title", "description", "default", "examples"])
const KEYWORDS = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "enum",
  "const",
  "minimum",
  "maximum",
  "minLength",
  "maxLength",
  "minItems",
  "maxItems"
])

/** Every keyword the validator understands (annotations included). */
export const supportedKeywords: ReadonlyArray<string> = [...KEYWORDS, ...ANNOTATIONS]

const isObject = (u: unknown): u is { readonly [key: string]: unknown } =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const isCount = (u: unknown): boolean => typeof u === "number" && Number.isInteger(u) && u >= 0

/** A problem of a schema, at its path inside the schema (`["properties", "name", "type"]`). */
export interface SchemaProblem {
  readonly path: ReadonlyArray<string>
  readonly message: string
}

/**
 * The problems of a schema: unsupported keywords and malformed values, each
 * with its path inside the schema. Empty when the schema is usable. Pure.
 */
export const checkSchema = (schema: unknown, path: ReadonlyArray<string> = []): ReadonlyArray<SchemaProblem> => {
  const at = (...keys: ReadonlyArray<string>) => [...path, ...keys]
  if (schema === true || schema === false) return []
  if (!isObject(schema)) return [{ path, message: "Expected a JSON Schema object (or true / false)" }]
  const problems: Array<SchemaProblem> = []
  for (const [key, value] of Object.entries(schema)) {
    if (ANNOTATIONS.has(key)) continue
    if (!KEYWORDS.has(key)) {
      problems.push({ path: at(key), message: `unsupported JSON Schema keyword "${key}"; supported: ${[...KEYWORDS].join(", ")}` })
      continue
    }
    switch (key) {
      case "type": {
        const names = Array.isArray(value) ? value : [value]
        if (names.length === 0 || !names.every((n) => (TYPES as ReadonlyArray<unknown>).includes(n))) {
          problems.push({ path: at(key), message: `Expected one of ${TYPES.join(", ")} (or an array of them)` })
        }
        break
      }
      case "properties":
        if (!isObject(value)) problems.push({ path: at(key), message: "Expected an object of schemas" })
        else for (const [name, sub] of Object.entries(value)) problems.push(...checkSchema(sub, at(key, name)))
        break
      case "required":
        if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
          problems.push({ path: at(key), message: "Expected an array of property names" })
        }
        break
      case "additionalProperties":
      case "items":
        problems.push(...checkSchema(value, at(key)))
        break
      case "enum":
        if (!Array.isArray(value) || value.length === 0) problems.push({ path: at(key), message: "Expected a non-empty array of values" })
        break
      case "const":
        break
      case "minimum":
      case "maximum":
        if (typeof value !== "number" || !Number.isFinite(value)) problems.push({ path: at(key), message: "Expected a finite number" })
        break
      default:
        if (!isCount(value)) problems.push({ path: at(key), message: "Expected an integer >= 0" })
    }
  }
  return problems
}

const typeOf = (value: unknown): TypeName | "undefined" => {
  if (value === null) return "null"
  if (Array.isArray(value)) return "array"
  switch (typeof value) {
    case "number":
      return Number.isInteger(value) ? "integer" : "number"
    case "string":
    case "boolean":
    case "object":
      return typeof value as TypeName
    default:
      return "undefined"
  }
}

const matchesType = (name: TypeName, value: unknown): boolean => {
  const actual = typeOf(value)
  return name === actual || (name === "number" && actual === "integer")
}

/** JSON equality: same type, same keys and elements, numbers by value. */
export const jsonEqual = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]))
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a)
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]))
  }
  return false
}

const show = (value: unknown): string => {
  const s = JSON.stringify(value)
  return s === undefined ? String(value) : s.length > 40 ? `${s.slice(0, 37)}...` : s
}

/**
 * Validates `value` against a schema that passed `checkSchema`. Returns
 * every violation as `$.path: message` (`$` is the value itself); empty
 * when the value is valid. Pure.
 */
export const validate = (schema: unknown, value: unknown, path = "$"): ReadonlyArray<string> => {
  if (schema === true) return []
  if (schema === false) return [`${path}: no value is allowed here`]
  if (!isObject(schema)) return []
  const errors: Array<string> = []
  const s = schema as Record<string, unknown>
  if (s["type"] !== undefined) {
    const names = (Array.isArray(s["type"]) ? s["type"] : [s["type"]]) as ReadonlyArray<TypeName>
    if (!names.some((n) => matchesType(n, value))) {
      // a value of the wrong type: its other keywords would only repeat that
      return [`${path}: expected ${names.join(" or ")}, got ${typeOf(value)}`]
    }
  }
  if (Array.isArray(s["enum"]) && !s["enum"].some((e) => jsonEqual(e, value))) {
    errors.push(`${path}: expected one of ${s["enum"].map(show).join(", ")}, got ${show(value)}`)
  }
  if ("const" in s && !jsonEqual(s["const"], value)) errors.push(`${path}: expected ${show(s["const"])}, got ${show(value)}`)
  if (typeof value === "number") {
    if (typeof s["minimum"] === "number" && value < s["minimum"]) errors.push(`${path}: ${value} is below the minimum ${s["minimum"]}`)
    if (typeof s["maximum"] === "number" && value > s["maximum"]) errors.push(`${path}: ${value} is above the maximum ${s["maximum"]}`)
  }
  if (typeof value === "string") {
    const length = [...value].length
    if (typeof s["minLength"] === "number" && length < s["minLength"]) {
      errors.push(`${path}: length ${length} is below minLength ${s["minLength"]}`)
    }
    if (typeof s["maxLength"] === "number" && length > s["maxLength"]) {
      errors.push(`${path}: length ${length} is above maxLength ${s["maxLength"]}`)
    }
  }
  if (Array.isArray(value)) {
    if (typeof s["minItems"] === "number" && value.length < s["minItems"]) {
      errors.push(`${path}: ${value.length} items, below minItems ${s["minItems"]}`)
    }
    if (typeof s["maxItems"] === "number" && value.length > s["maxItems"]) {
      errors.push(`${path}: ${value.length} items, above maxItems ${s["maxItems"]}`)
    }
    if (s["items"] !== undefined) value.forEach((v, i) => errors.push(...validate(s["items"], v, `${path}[${i}]`)))
  }
  if (isObject(value)) {
    const properties = isObject(s["properties"]) ? s["properties"] : {}
    if (Array.isArray(s["required"])) {
      for (const name of s["required"] as ReadonlyArray<string>) {
        if (!Object.hasOwn(value, name)) errors.push(`${path}: missing required property "${name}"`)
      }
    }
    for (const [name, v] of Object.entries(value)) {
      const sub = `${path}.${name}`
      if (Object.hasOwn(properties, name)) errors.push(...validate(properties[name], v, sub))
      else if (s["additionalProperties"] === false) errors.push(`${sub}: property not allowed (additionalProperties: false)`)
      else if (s["additionalProperties"] !== undefined) errors.push(...validate(s["additionalProperties"], v, sub))
    }
  }
  return errors
}
