import { describe, expect, it } from 'vitest';
import { Rng } from '../../data/rng.js';
import {
  checkClassWeights,
  classBalancedWeights,
  drwWeights,
  effectiveNumber,
  eqlWeights,
  grwWeights,
  imageFrequencies,
  ldamMargins,
  logitAdjustments,
  sampleWeights,
  seqlWeights,
  tailIndicator,
} from '../../longtail/index.js';
import { OpError } from '../../kernels/errors.js';

const sum = (a: ArrayLike<number>): number => Array.from(a).reduce((x, y) => x + y, 0);
const closeAll = (a: ArrayLike<number>, b: ArrayLike<number>, digits = 12): void => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i], digits);
};

describe('class-balanced weights (Cui et al., CVPR 2019)', () => {
  it('E_n = (1 − β^n)/(1 − β): 1 for one sample, n as β → 1, 1 for β = 0', () => {
    expect(effectiveNumber(1, 0.999)).toBeCloseTo(1, 14);
    expect(effectiveNumber(5, 0)).toBe(1);
    expect(effectiveNumber(100, 1 - 1e-9)).toBeCloseTo(100, 4);
    expect(effectiveNumber(3, 0.5)).toBe(1.75);
  });

  it('w_j ∝ 1/E_{n_j}, normalised to Σ w = C as the official code does', () => {
    const counts = [100, 10, 1];
    const beta = 0.9;
    const raw = counts.map((n) => (1 - beta) / (1 - beta ** n));
    const expected = raw.map((v) => (v / sum(raw)) * counts.length);
    const w = classBalancedWeights(counts, beta);
    closeAll(w, expected, 14);
    expect(sum(w)).toBeCloseTo(3, 14);
    // Hand values: 1/E_1 = 1, 1/E_10 = 0.1/(1 − 0.9^10) ≈ 0.153534, 1/E_100 ≈ 0.100003.
    expect(w[2] / w[1]).toBeCloseTo(1 / 0.15353399, 6);
    closeAll(classBalancedWeights(counts, 0), [1, 1, 1], 14);
  });

  it('names the function and the bad class for zero, NaN or negative counts and a bad β', () => {
    expect(() => classBalancedWeights([5, 0, 2])).toThrow(/classBalancedWeights: class 1 has count 0/);
    expect(() => classBalancedWeights([5, 2, NaN])).toThrow(/classBalancedWeights: class 2 count is NaN/);
    expect(() => ldamMargins([-3, 2])).toThrow(/ldamMargins: class 0 count is -3/);
    expect(() => classBalancedWeights([5, 2], 1)).toThrow(/beta must be in \[0, 1\), got 1/);
    expect(() => classBalancedWeights([])).toThrow(OpError);
  });
});

describe('LDAM margins and DRW (Cao et al., NeurIPS 2019)', () => {
  it('Δ_j = C / n_j^{1/4} with max Δ = max_m', () => {
    // n^{-1/4} = [0.1, 0.5, 1] → scaled to max 0.5.
    closeAll(ldamMargins([10000, 16, 1]), [0.05, 0.25, 0.5], 15);
    const counts = [500, 37, 3];
    const m = ldamMargins(counts, 0.3);
    closeAll(m, counts.map((n) => (0.3 * n ** -0.25) / 3 ** -0.25), 14);
    expect(Math.max(...m)).toBeCloseTo(0.3, 15);
  });

  it('DRW: all ones before the switch epoch, the β = 0.9999 class-balanced weights from it on', () => {
    const counts = [5000, 500, 50, 5];
    closeAll(drwWeights(counts, 0, 160), [1, 1, 1, 1], 15);
    closeAll(drwWeights(counts, 159, 160), [1, 1, 1, 1], 15);
    closeAll(drwWeights(counts, 160, 160), classBalancedWeights(counts, 0.9999), 15);
    closeAll(drwWeights(counts, 199, 160, 0.999), classBalancedWeights(counts, 0.999), 15);
  });
});

describe('generalized re-weighting (DisAlign, CVPR 2021)', () => {
  it('ρ = 0 gives uniform weights', () => {
    closeAll(grwWeights([900, 90, 9, 1], 0), [1, 1, 1, 1], 15);
    closeAll(grwWeights([900, 90, 9, 1], 0, 1), [0.25, 0.25, 0.25, 0.25], 15);
  });

  it('w_c = (1/r_c)^ρ / Σ_k (1/r_k)^ρ, scaled to Σ w = C by default as the official code', () => {
    // r = [3/4, 1/4]; ρ = 1: (1/r) = [4/3, 4] → [1/4, 3/4] → ×2.
    closeAll(grwWeights([3, 1], 1), [0.5, 1.5], 15);
    closeAll(grwWeights([3, 1], 1, 1), [0.25, 0.75], 15);
    const counts = [1280, 40, 7];
    const r = counts.map((n) => n / sum(counts));
    const raw = r.map((v) => (1 / v) ** 1.2);
    closeAll(grwWeights(counts, 1.2), raw.map((v) => (v / sum(raw)) * 3), 13);
  });
});

describe('EQL / SEQL (Tan et al., CVPR 2020) and logit adjustment (Menon et al., ICLR 2021)', () => {
  it('image frequencies and the tail indicator T_λ(f) = [f < λ]', () => {
    closeAll(imageFrequencies([50, 2, 0], 100), [0.5, 0.02, 0], 15);
    expect(Array.from(tailIndicator([0.001, 0.01, 0.0005, 0.00177], 0.00177))).toEqual([1, 0, 1, 0]);
    expect(() => tailIndicator([0.1, NaN], 0.01)).toThrow(/tailIndicator: class 1 frequency is NaN/);
    expect(() => imageFrequencies([5, 120], 100)).toThrow(/imageFrequencies: class 1 appears in 120 of 100 images/);
  });

  it('EQL weights 1 − E(r)·T_λ(f_j)·(1 − y_j), background rows all ones', () => {
    const tail = [0, 1, 1];
    const w = eqlWeights([0, 1, 3], tail);
    expect(Array.from(w)).toEqual([1, 0, 0, 1, 1, 0, 1, 1, 1]);
    expect(() => eqlWeights([4], tail)).toThrow(/eqlWeights: label 4 at index 0 is outside \[0, 3\]/);
  });

  it('SEQL: γ = 1 is EQL without background, γ = 0 is plain softmax, otherwise β ~ Bernoulli(γ) per entry', () => {
    const tail = [0, 1, 1, 1];
    const labels = Int32Array.from({ length: 2000 }, (_, i) => i % 4);
    expect(Array.from(seqlWeights(labels, tail, 1, new Rng(1)))).toEqual(Array.from(eqlWeights(labels, tail)));
    expect(Array.from(seqlWeights(labels, tail, 0, new Rng(1))).every((v) => v === 1)).toBe(true);
    const w = seqlWeights(labels, tail, 0.3, new Rng(2));
    let eligible = 0;
    let zeroed = 0;
    let ineligibleChanged = 0;
    labels.forEach((y, i) => tail.forEach((t, k) => {
      if (t && k !== y) { eligible++; if (w[i * 4 + k] === 0) zeroed++; }
      else if (w[i * 4 + k] !== 1) ineligibleChanged++;
    }));
    expect(ineligibleChanged).toBe(0);
    expect(Math.abs(zeroed / eligible - 0.3)).toBeLessThan(0.02);
    expect(Array.from(seqlWeights(labels, tail, 0.3, new Rng(2)))).toEqual(Array.from(w));
  });

  it('logit adjustment τ·log π_j', () => {
    closeAll(logitAdjustments([1, 3]), [Math.log(0.25), Math.log(0.75)], 15);
    closeAll(logitAdjustments([1, 3], 2), [2 * Math.log(0.25), 2 * Math.log(0.75)], 15);
    expect(() => logitAdjustments([4, 0])).toThrow(/logitAdjustments: class 1 has count 0/);
  });
});

describe('class weights against labels', () => {
  it('gathers w_{y_i} and rejects mismatched weights and labels', () => {
    expect(Array.from(sampleWeights([0.5, 2, 4], [2, 0, 1, 2]))).toEqual([4, 0.5, 2, 4]);
    expect(() => sampleWeights([0.5, 2], [0, 1], 3)).toThrow(/sampleWeights: got 2 class weights for 3 classes/);
    expect(() => sampleWeights([0.5, 2], [0, 2])).toThrow(/sampleWeights: label 2 at index 1 is outside the 2 classes/);
    expect(() => checkClassWeights('lossX', [1, NaN], 2)).toThrow(/lossX: class 1 weight is NaN/);
  });
});
