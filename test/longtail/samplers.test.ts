import { describe, expect, it } from 'vitest';
import { Rng } from '../../data/rng.js';
import {
  BgnnSampler,
  BilevelSampler,
  ClassPowerSampler,
  ProgressiveSampler,
  RepeatFactorSampler,
  SAMPLERS,
  countClasses,
  createSampler,
  indexLabels,
  powerClassProbabilities,
  type Sampler,
} from '../../longtail/index.js';
import { OpError } from '../../kernels/errors.js';

// A long-tailed single-label set: class j has COUNTS[j] samples (class 5 has none).
const COUNTS = [60, 25, 10, 4, 1, 0];
const singleLabels = Int32Array.from(COUNTS.flatMap((n, c) => Array<number>(n).fill(c)));

// A small detection-style set: per image, the categories of its objects (image 9 has none).
const imageLabels = [[0], [0, 0], [0, 2], [0, 2], [0, 1, 2], [0], [0, 2, 2], [0], [0], [], [3]];

/** Frequency of each index among the draws. */
function frequencies(indices: Int32Array, size: number): Float64Array {
  const f = new Float64Array(size);
  indices.forEach((i) => f[i]++);
  return f.map((v) => v / indices.length);
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));

describe('Rng', () => {
  it('replays the same sequence for the same (seed, epoch, stream) and a different one otherwise', () => {
    const seq = (seed: number, epoch: number, stream = 0): number[] => {
      const r = new Rng(seed, epoch, stream);
      return Array.from({ length: 8 }, () => r.nextU32());
    };
    expect(seq(7, 3)).toEqual(seq(7, 3));
    expect(seq(7, 3)).not.toEqual(seq(7, 4));
    expect(seq(7, 3)).not.toEqual(seq(8, 3));
    expect(seq(7, 3)).not.toEqual(seq(7, 3, 1));
    expect(seq(2 ** 40 + 1, 0)).not.toEqual(seq(1, 0));
  });

  it('gives uniforms in [0, 1) with mean 1/2 and integers covering [0, n)', () => {
    const r = new Rng(1);
    let sum = 0;
    let outside = 0;
    const hits = new Int32Array(7);
    for (let i = 0; i < 100_000; i++) {
      const u = r.uniform();
      if (u < 0 || u >= 1) outside++;
      sum += u;
      hits[r.int(7)]++;
    }
    expect(outside).toBe(0);
    expect(Math.abs(sum / 100_000 - 0.5)).toBeLessThan(0.005);
    for (const h of hits) expect(Math.abs(h / 100_000 - 1 / 7)).toBeLessThan(0.005);
  });

  it('rejects a seed that is not an integer', () => {
    expect(() => new Rng(0.5)).toThrow(/Rng: seed must be a safe integer, got 0.5/);
  });
});

describe('labels', () => {
  it('indexes per-image class lists by class, each image once', () => {
    const index = indexLabels(imageLabels);
    expect(index.numClasses).toBe(4);
    expect(Array.from(index.members[2])).toEqual([2, 3, 4, 6]);
    expect(Array.from(countClasses(imageLabels))).toEqual([9, 1, 4, 1]);
    expect(Array.from(countClasses(singleLabels, 6))).toEqual(COUNTS);
  });

  it('names the sampler and the bad sample for invalid labels', () => {
    expect(() => SAMPLERS.class([0, -1, 2])).toThrow(/class sampler: sample 1 has label -1/);
    expect(() => SAMPLERS.rfs([[0], [1, NaN]])).toThrow(/rfs sampler: sample 1 has label NaN/);
    expect(() => SAMPLERS.sqrt([0, 3], { numClasses: 3 })).toThrow(/sqrt sampler: sample 1 has label 3, outside the 3 classes/);
    expect(() => SAMPLERS.instance([])).toThrow(OpError);
    expect(() => createSampler('balanced', singleLabels)).toThrow(/unknown sampler "balanced"/);
    expect(() => createSampler('pow(x)', singleLabels)).toThrow(/q must be a number/);
    expect(() => SAMPLERS.progressive(singleLabels)).toThrow(/needs options.totalEpochs/);
  });
});

describe('class-level samplers (Kang et al., ICLR 2020)', () => {
  it('p_j = n_j^q / Σ n_i^q on a hand case, empty classes at 0', () => {
    const p = powerClassProbabilities([100, 25, 4, 0], 0.5);
    expect(Array.from(p)).toEqual([10 / 17, 5 / 17, 2 / 17, 0]);
    expect(Array.from(powerClassProbabilities([100, 25, 4, 0], 0))).toEqual([1 / 3, 1 / 3, 1 / 3, 0]);
  });

  it('names map to q = 0 (class), 1/2 (sqrt) and the inline exponent of pow(q)', () => {
    const counts = COUNTS;
    const cases: [string, number][] = [['class', 0], ['sqrt', 0.5], ['pow(0.3)', 0.3], ['pow( 1 )', 1]];
    for (const [spec, q] of cases) {
      const s = createSampler(spec, singleLabels, { numClasses: 6 }) as ClassPowerSampler;
      expect(s.q).toBe(q);
      expect(Array.from(s.classProbabilities())).toEqual(Array.from(powerClassProbabilities(counts, q)));
    }
  });

  it('class frequencies of the draws converge to p_j', () => {
    for (const spec of ['class', 'sqrt', 'pow(0.3)', 'pow(1)']) {
      const s = createSampler(spec, singleLabels, { seed: 3, numClasses: 6 }) as ClassPowerSampler;
      const drawn = s.indices(0, 200_000);
      const classFreq = new Float64Array(6);
      drawn.forEach((i) => classFreq[singleLabels[i]]++);
      expect(maxAbsDiff(classFreq.map((v) => v / drawn.length), s.classProbabilities())).toBeLessThan(0.006);
      expect(classFreq[5]).toBe(0);
    }
  });

  it('progressively balanced: p(0) = IB, p(T) = CB, linear in between, and the same draws as IB / CB at the ends', () => {
    const T = 10;
    const pb = new ProgressiveSampler(T, singleLabels, { seed: 5, numClasses: 6 });
    const ib = createSampler('pow(1)', singleLabels, { seed: 5, numClasses: 6 }) as ClassPowerSampler;
    const cb = createSampler('class', singleLabels, { seed: 5, numClasses: 6 }) as ClassPowerSampler;
    expect(Array.from(pb.classProbabilities(0))).toEqual(Array.from(ib.classProbabilities()));
    expect(Array.from(pb.classProbabilities(T))).toEqual(Array.from(cb.classProbabilities()));
    expect(Array.from(pb.classProbabilities(T + 5))).toEqual(Array.from(cb.classProbabilities()));
    const p3 = pb.classProbabilities(3);
    COUNTS.forEach((n, j) => expect(p3[j]).toBeCloseTo(0.7 * (n / 100) + (n > 0 ? 0.3 / 5 : 0), 15));
    // The epoch seeds the draw stream, so PB at epoch 0 replays pow(1) at epoch 0, and PB at T replays CB at T.
    expect(Array.from(pb.indices(0))).toEqual(Array.from(ib.indices(0)));
    expect(Array.from(pb.indices(T))).toEqual(Array.from(cb.indices(T)));
    const drawn = pb.indices(3, 200_000);
    const classFreq = new Float64Array(6);
    drawn.forEach((i) => classFreq[singleLabels[i]]++);
    expect(maxAbsDiff(classFreq.map((v) => v / drawn.length), p3)).toBeLessThan(0.006);
  });

  it('instance-balanced visits every sample once per epoch, in an epoch-dependent order', () => {
    const s = SAMPLERS.instance(singleLabels, { seed: 1 });
    const e0 = s.indices(0);
    expect(Array.from(e0).sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(Array.from(e0)).not.toEqual(Array.from(s.indices(1)));
    // Longer epochs are whole passes back to back: each sample exactly 3 times in 300 draws.
    expect(Array.from(frequencies(s.indices(2, 300), 100)).every((f) => f === 3 / 300)).toBe(true);
  });
});

describe('every sampler', () => {
  const build = (name: string, seed: number): Sampler => {
    if (name === 'rfs') return SAMPLERS.rfs(imageLabels, { seed, repeatThreshold: 0.5 });
    if (name === 'bilevel') return SAMPLERS.bilevel(imageLabels, { seed, imagesPerClass: 2 });
    if (name === 'bgnn') return SAMPLERS.bgnn(imageLabels, { seed, repeatThreshold: 0.3 });
    return createSampler(name, singleLabels, { seed, numClasses: 6, totalEpochs: 8 });
  };
  const names = ['instance', 'class', 'sqrt', 'pow(0.3)', 'progressive', 'rfs', 'bilevel', 'bgnn'];

  for (const name of names) {
    it(`${name}: per-sample draw frequencies converge to sampleProbabilities`, () => {
      const s = build(name, 11);
      const epoch = 4;
      const expected = s.sampleProbabilities(epoch);
      expect(expected.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
      const f = frequencies(s.indices(epoch, 200_000), s.numSamples);
      expect(maxAbsDiff(f, expected)).toBeLessThan(0.004);
    });

    it(`${name}: deterministic in (seed, epoch), different across epochs and seeds`, () => {
      const a = build(name, 21).indices(2, 500);
      expect(Array.from(build(name, 21).indices(2, 500))).toEqual(Array.from(a));
      expect(Array.from(build(name, 21).indices(3, 500))).not.toEqual(Array.from(a));
      expect(Array.from(build(name, 22).indices(2, 500))).not.toEqual(Array.from(a));
    });
  }

  it('rejects a negative or fractional epoch and length', () => {
    const s = SAMPLERS.sqrt(singleLabels);
    expect(() => s.indices(-1)).toThrow(/sqrt sampler: epoch must be a non-negative integer, got -1/);
    expect(() => s.indices(0, 2.5)).toThrow(/sqrt sampler: length must be a non-negative integer, got 2.5/);
  });
});

describe('repeat-factor sampling (LVIS)', () => {
  it('r(c) = max(1, sqrt(t / f(c))) and r(i) = max over the image, 1 without categories', () => {
    // 11 images; f = [9, 1, 4, 1] / 11, so t = 0.8 leaves r(0) = 1 and repeats the other three.
    const t = 0.8;
    const s = new RepeatFactorSampler(imageLabels, { repeatThreshold: t });
    const rc = [9, 1, 4, 1].map((n) => Math.max(1, Math.sqrt(t / (n / 11))));
    expect(Array.from(s.categoryRepeatFactors)).toEqual(rc);
    expect(rc[0]).toBe(1);
    const ri = imageLabels.map((list) => Math.max(1, ...list.map((c) => rc[c])));
    expect(Array.from(s.repeatFactors)).toEqual(ri);
    expect(s.repeatFactors[9]).toBe(1);
  });

  it('stochastic rounding: each epoch repeats image i floor(r) or ceil(r) times, r on average', () => {
    const s = new RepeatFactorSampler(imageLabels, { repeatThreshold: 0.8, seed: 2 });
    const epochs = 4000;
    const total = new Float64Array(s.numSamples);
    let unrounded = 0;
    for (let e = 0; e < epochs; e++) {
      const counts = new Float64Array(s.numSamples);
      s.indices(e).forEach((i) => counts[i]++);
      counts.forEach((c, i) => {
        if (c !== Math.floor(s.repeatFactors[i]) && c !== Math.ceil(s.repeatFactors[i])) unrounded++;
        total[i] += c;
      });
    }
    expect(unrounded).toBe(0);
    total.forEach((c, i) => expect(Math.abs(c / epochs - s.repeatFactors[i])).toBeLessThan(0.03));
  });
});

describe('bi-level sampling (SimCal)', () => {
  it('draws categories uniformly, then images containing them, in groups of imagesPerClass', () => {
    const s = new BilevelSampler(imageLabels, { seed: 4, imagesPerClass: 3 });
    const { indices, categories } = s.draw(0, 60_001);
    expect(categories).toBeDefined();
    const cats = categories as Int32Array;
    expect(indices.every((img, k) => imageLabels[img].includes(cats[k]))).toBe(true);
    let mixedGroups = 0;
    for (let k = 0; k + 3 <= indices.length; k += 3) if (cats[k + 1] !== cats[k] || cats[k + 2] !== cats[k]) mixedGroups++;
    expect(mixedGroups).toBe(0);
    const f = frequencies(cats, 4);
    for (const v of f) expect(Math.abs(v - 0.25)).toBeLessThan(0.01);
  });
});

describe('BGNN bi-level resampling (PySGG bilvl)', () => {
  // 128 relations: predicate 1 has 4 (f = 1/32), 2 has 9 (f = 9/128), 0 has 60, 3 has 55.
  // With t = 36/128: r_1 = sqrt(9) = 3, r_2 = sqrt(4) = 2, r_0 = r_3 = 1 — all exact, so rounding is fixed.
  const relations: number[][] = [
    [1, 0, 0, 3], [1], [1, 0], [1, 2, 0, 0, 3],
    [2, 0], [2, 3], [2, 0, 0], [2], [2, 3], [2, 0], [2, 3], [2, 0],
    ...Array.from({ length: 20 }, (_, i) => (i < 10 ? [0, 0, 0, 3, 3] : [0, 0, 3, 3, 3])),
  ];
  const counts = [0, 0, 0, 0];
  relations.flat().forEach((p) => counts[p]++);
  const t = 36 / 128;

  it('uses the official predicate frequencies, per-class repeats and image repeats', () => {
    expect(counts).toEqual([60, 4, 9, 55]);
    const s = new BgnnSampler(relations, { repeatThreshold: t, dropRate: 0.9 });
    expect(Array.from(s.predicateFrequencies)).toEqual(counts.map((n) => n / 128));
    expect(Array.from(s.predicateRepeats)).toEqual([1, 3, 2, 1]);
    const expected = relations.map((r) => (r.includes(1) ? 3 : r.includes(2) ? 2 : 1));
    expect(Array.from(s.imageRepeats)).toEqual(expected);
    // One epoch lists image i exactly R_i times.
    const f = new Int32Array(relations.length);
    s.indices(0).forEach((i) => f[i]++);
    expect(Array.from(f)).toEqual(expected);
  });

  it('drops relation p of a repeated image with probability γ_d·(1 − R_p / R_i), clipped to [0, 1]', () => {
    const s = new BgnnSampler(relations, { repeatThreshold: t, dropRate: 0.9, seed: 9 });
    expect(s.dropProbability(0, 0)).toBe(0); // the tail predicate that set R_i is always kept
    expect(s.dropProbability(0, 1)).toBeCloseTo(0.9 * (1 - 1 / 3), 15);
    expect(s.dropProbability(3, 1)).toBeCloseTo(0.9 * (1 - 2 / 3), 15);
    expect(s.dropProbability(12, 0)).toBe(0); // R_i = 1: nothing dropped
    expect(new BgnnSampler(relations, { repeatThreshold: t, dropRate: 2 }).dropProbability(0, 1)).toBe(1);

    const { indices, relationKeep } = s.draw(0, 40_000);
    expect(relationKeep).toBeDefined();
    const { offsets, keep } = relationKeep as { offsets: Int32Array; keep: Uint8Array };
    const drawn = relations.map((r) => new Float64Array(r.length));
    const dropped = relations.map((r) => new Float64Array(r.length));
    expect(indices.every((img, k) => offsets[k + 1] - offsets[k] === relations[img].length)).toBe(true);
    indices.forEach((img, k) => {
      for (let r = 0; r < relations[img].length; r++) {
        drawn[img][r]++;
        if (!keep[offsets[k] + r]) dropped[img][r]++;
      }
    });
    relations.forEach((rels, img) => rels.forEach((_, r) => {
      expect(Math.abs(dropped[img][r] / drawn[img][r] - s.dropProbability(img, r))).toBeLessThan(0.05);
    }));
  });

  it('rounds a fractional predicate repeat once per seed: floor or ceil, r on average across seeds', () => {
    // Predicate 1 has f = 1/32; t = 4.5/32 gives r = sqrt(4.5) ≈ 2.121.
    const r = Math.sqrt(4.5);
    let sum = 0;
    const seeds = 2000;
    for (let seed = 0; seed < seeds; seed++) {
      const R = new BgnnSampler(relations, { repeatThreshold: 4.5 / 32, seed }).predicateRepeats[1];
      expect(R === 2 || R === 3).toBe(true);
      sum += R;
    }
    expect(Math.abs(sum / seeds - r)).toBeLessThan(0.04);
  });
});
