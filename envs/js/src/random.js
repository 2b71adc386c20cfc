/**
 * A small seedable PRNG (mulberry32): the same seed gives the same stream in every engine.
 * @module random
 */

/** A function returning uniform floats in [0, 1), seeded with a 32-bit integer (any number). */
export function mulberry32(seed) {
  let a = Number(seed) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random 32-bit seed (for unseeded environments). */
export const randomSeed = () => Math.floor(Math.random() * 2 ** 32);
