/**
 * mulberry32 over an FNV-1a hash of a seed: reproducible draws in [0, 1)
 * from one string, for tests that need randomness outside an Effect (a
 * plan built before the run, a guard's synchronous side).
 */
export const prng = (seed: string): () => number => {
  let h = 0x811c9dc5
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 0x01000193)
  let a = h >>> 0
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
