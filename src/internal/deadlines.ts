/**
 * Attempt timeouts without a race per attempt. `Effect.timeout` forks two
 * fibers and races them for every call (measured: 38 µs of the mux's cost
 * per call on the real SDK path, bench/results/README.md); here every
 * attempt's deadline goes into one min-heap per mux, and one timer fiber,
 * sleeping on the mux's `Clock` (so `TestClock` drives it), fires the ones
 * that are due. Adding and removing a deadline is a heap operation; the timer
 * is re-armed (one fiber) only when a deadline comes earlier than the one it
 * sleeps towards, which with one timeout for every attempt happens once per
 * timeout period, not per call.
 */
import { Clock, Context, Effect, type Fiber, type Scope } from "effect"

/** Deadlines this close to now are due (floating-point times from simulated latencies). */
const EPSILON_MS = 1e-6

/** A registered deadline. */
export interface Entry {
  readonly at: number
  readonly fire: () => void
  /** position in the heap; -1 once removed or fired */
  index: number
}

export interface Deadlines {
  /** Calls `fire` at `at` (epoch ms of the mux's Clock) unless `remove`d first. */
  readonly add: (at: number, fire: () => void) => Entry
  /**
   * The same for an entry the caller built (its `index` is set here): an object with a `fire` method, so a
   * call's deadline needs no closure of its own (measured: 4.7 KB per request in flight, bench/results).
   */
  readonly insert: (entry: Entry) => void
  readonly remove: (entry: Entry) => void
  /** deadlines waiting (for tests and the heap-is-bounded check) */
  readonly size: () => number
}

export const make: Effect.Effect<Deadlines, never, Scope.Scope> = Effect.gen(function*() {
  const context = yield* Effect.context<never>()
  const heap: Array<Entry> = []
  let armedAt = Infinity
  let timer: Fiber.Fiber<void> | undefined

  const swap = (i: number, j: number) => {
    const a = heap[i]!
    const b = heap[j]!
    heap[i] = b
    heap[j] = a
    b.index = i
    a.index = j
  }
  const up = (i: number) => {
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]!.at <= heap[i]!.at) return
      swap(i, parent)
      i = parent
    }
  }
  const down = (i: number) => {
    const n = heap.length
    while (true) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < n && heap[l]!.at < heap[m]!.at) m = l
      if (r < n && heap[r]!.at < heap[m]!.at) m = r
      if (m === i) return
      swap(i, m)
      i = m
    }
  }
  const removeAt = (i: number) => {
    const last = heap.length - 1
    const entry = heap[i]!
    if (i !== last) swap(i, last)
    heap.pop()
    entry.index = -1
    if (i < heap.length) {
      down(i)
      up(i)
    }
  }

  const arm = (at: number, now: number) => {
    if (timer !== undefined) timer.interruptUnsafe()
    armedAt = at
    // whole milliseconds: a fractional sleep can land a hair before `at` (floating point), and the timer would
    // wake, find nothing due and sleep 0 ms again, forever
    timer = Effect.runForkWith(context)(Effect.andThen(Effect.sleep(Math.max(0, Math.ceil(at - now))), expire))
  }

  /** The timer woke: fire what is due, sleep towards the next one. */
  const expire: Effect.Effect<void> = Effect.clockWith((clock) =>
    Effect.sync(() => {
      timer = undefined
      armedAt = Infinity
      const now = clock.currentTimeMillisUnsafe()
      while (heap.length > 0 && heap[0]!.at <= now + EPSILON_MS) {
        const entry = heap[0]!
        removeAt(0)
        entry.fire()
      }
      if (heap.length > 0) arm(heap[0]!.at, now)
    })
  )

  const clock = Context.get(context, Clock.Clock)
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      heap.length = 0
      if (timer !== undefined) timer.interruptUnsafe()
      timer = undefined
    })
  )

  const insert = (entry: Entry) => {
    entry.index = heap.length
    heap.push(entry)
    up(entry.index)
    if (entry.at < armedAt) arm(entry.at, clock.currentTimeMillisUnsafe())
  }

  return {
    add: (at, fire) => {
      const entry: Entry = { at, fire, index: -1 }
      insert(entry)
      return entry
    },
    insert,
    remove: (entry) => {
      if (entry.index >= 0) removeAt(entry.index)
    },
    size: () => heap.length
  }
})
