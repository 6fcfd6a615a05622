// Seeded random numbers, one home for them: the xoshiro128** core, `DataRng` for the data pipeline
// and `Rng` for samplers and methods, and every stream id (STREAMS, INIT_STREAMS). A generator is
// keyed by a tuple of integers, e.g.
// (seed, epoch, position in the epoch), so a sample's augmentation does not depend on which
// worker draws it or in what order: xoshiro128** (Blackman & Vigna 2018) seeded from a hash of
// the key words (the lowbias32 finaliser of C. Wellons, chained like a sponge).

import { check } from '../kernels/errors.js';

/** lowbias32: x ^= x>>16; x *= 0x7feb352d; x ^= x>>15; x *= 0x846ca68b; x ^= x>>16. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * The xoshiro128** generator (Blackman & Vigna, "Scrambled linear pseudorandom number generators",
 * 2018): 128-bit state, period 2^128 − 1, 32-bit integer ops only (fast in JS). Subclasses seed it.
 */
export class Xoshiro128 {
  protected constructor(
    private s0: number,
    private s1: number,
    private s2: number,
    private s3: number,
  ) {
    if ((s0 | s1 | s2 | s3) === 0) this.s0 = 1; // the one state xoshiro cannot leave
  }

  /** xoshiro128**: result = rotl(s1 * 5, 7) * 9, then the linear state update. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  random(): number {
    return ((this.nextU32() >>> 5) * 67108864 + (this.nextU32() >>> 6)) / 9007199254740992;
  }
}

export class DataRng extends Xoshiro128 {
  /** Key words are non-negative integers below 2^53 (a seed, an epoch, a sample position...). */
  constructor(...key: number[]) {
    let h = 0x6a09e667;
    for (const k of key) {
      if (!Number.isSafeInteger(k) || k < 0) throw new RangeError(`DataRng: key ${k} is not a non-negative safe integer`);
      h = mix32(h ^ mix32((k >>> 0) + 0x9e3779b9));
      h = mix32(h ^ mix32(Math.floor(k / 2 ** 32) + 0x85ebca6b));
    }
    // Four distinct state words from the key hash (s3 odd: never the all-zero state)
    super(mix32(h + 0x243f6a88), mix32(h + 0x85a308d3), mix32(h + 0x13198a2e), mix32(h + 0x03707344) | 1);
  }

  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.random();
  }

  /** Uniform integer in [0, n), unbiased (rejection of the last partial block of 2^32), n <= 2^32. */
  below(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 2 ** 32) throw new RangeError(`DataRng.below: bound ${n} is not an integer in [1, 2^32]`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    return x % n;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Fisher-Yates shuffle in place (Durstenfeld): for i = n-1..1 swap a[i] with a[below(i+1)]. */
export function shuffleInPlace<T extends { length: number; [i: number]: number }>(a: T, rng: DataRng): T {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  return a;
}

const GOLDEN = 0x9e3779b9;

/** murmur3's 32-bit finaliser: full avalanche, so neighbouring (seed, epoch, stream) words give unrelated states. */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * xoshiro128** seeded from (seed, epoch, stream) through an fmix32 hash chain
 * followed by a SplitMix-style counter, so each epoch and each stream is an independent,
 * reproducible sequence: resuming a run at epoch e replays exactly the draws of epoch e.
 */
export class Rng extends Xoshiro128 {
  constructor(seed: number, epoch = 0, stream = 0) {
    check(Number.isSafeInteger(seed), 'Rng', `seed must be a safe integer, got ${seed}`);
    check(Number.isSafeInteger(epoch) && epoch >= 0, 'Rng', `epoch must be a non-negative integer, got ${epoch}`);
    check(Number.isSafeInteger(stream) && stream >= 0, 'Rng', `stream must be a non-negative integer, got ${stream}`);
    const words = [seed >>> 0, Math.floor(seed / 2 ** 32) >>> 0, epoch >>> 0, Math.floor(epoch / 2 ** 32) >>> 0, stream >>> 0];
    let h = 0;
    for (const w of words) h = fmix32((h ^ w) + GOLDEN);
    super(fmix32(h + GOLDEN), fmix32(h + 2 * GOLDEN), fmix32(h + 3 * GOLDEN), fmix32(h + 4 * GOLDEN));
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    return this.random();
  }

  /** Uniform integer in [0, n); the bias of flooring a 53-bit uniform is below n / 2^53. */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Fisher–Yates shuffle in place. */
  shuffle(a: Int32Array): Int32Array {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }
}



/**
 * Every stream id of the seeded generators, in one table: a (seed, epoch, stream) triple names one
 * independent sequence of `Rng`, so two uses of one seed must never share a stream.
 */
export const STREAMS = {
  /** a sampler's draw of an epoch's indices */
  samplerDraw: 1,
  /** the class-level rounding of a repeat-factor sampler */
  samplerClassRounding: 2,
  /** BGNN's instance-level drop of head relations */
  relationDrop: 3,
  /** stage-1 losses that draw (EQL/SEQL's random negatives) */
  stage1Loss: 7,
  /** τ-norm's held-out split of the training set */
  heldOut: 11,
  /** the embedded LVIS-like instance set (data/synthetic-lvis.ts), a DataRng key word */
  syntheticLvis: 12,
  /** balanced group softmax's "others" of batch b: base + b */
  groupSoftmaxOthers: 1000,
} as const;

/**
 * Streams of the seeded GPU initialisations of stage-2 heads (`seededInit`: the device generator
 * is seeded with seed · 4096 + stream). Per method: one method never draws another's.
 */
export const INIT_STREAMS = {
  crtWeight: 1,
  crtBias: 2,
  disalignConfidenceBias: 2,
  groupSoftmaxWeight: 3,
  groupSoftmaxBias: 4,
  detectionDisalignConfidence: 5,
} as const;
