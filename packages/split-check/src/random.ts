/**
 * A seeded pseudo-random generator for simulations and tests: the same seed gives the same sequence, so a check
 * of a random split can be replayed exactly. Not for anything that needs unpredictability.
 */

/** mulberry32: a small 32-bit generator (one 32-bit state word), uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
