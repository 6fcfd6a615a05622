import { describe, expect, it } from 'vitest';
import { hasWebGPU, tensor, type Tensor } from '../../index.node.js';
import { crossEntropy, focalLoss, ldamLoss, logitAdjustedLoss, seqlLoss, sigmoidLoss, eqlLoss, type Reduction } from '../../longtail/losses.js';
import { classBalancedWeights, eqlWeights, ldamMargins, tailIndicator } from '../../longtail/weights.js';
import { gradcheck, inp, ints } from '../autograd/gradcheck.js';
import { randomArray, relErr } from '../helpers.js';

const cpu = (v: number[], shape: number[], dtype: 'f32' | 'i32' = 'f32'): Tensor => tensor(v, shape, { dtype, device: 'cpu' });
const val = (t: Tensor): number => t.cpu[0];
const L3 = Math.log(3);

describe('long-tail losses: hand-computed cases', () => {
  const z = cpu([0, L3], [1, 2]);
  const y = cpu([1], [1], 'i32');

  it('cross-entropy, weighted (torch mean over Σw_y), label smoothing', () => {
    expect(val(crossEntropy(z, y))).toBeCloseTo(-Math.log(3 / 4), 12);
    expect(val(crossEntropy(z, y, { weights: [2, 0.5] }))).toBeCloseTo(-Math.log(3 / 4), 12);
    expect(val(crossEntropy(z, y, { weights: [2, 0.5], reduction: 'sum' }))).toBeCloseTo(-0.5 * Math.log(3 / 4), 12);
    expect(val(crossEntropy(z, y, { labelSmoothing: 0.1 }))).toBeCloseTo(-(0.05 * Math.log(1 / 4) + 0.95 * Math.log(3 / 4)), 12);
  });

  it('focal loss (1 − p)^γ·CE', () => {
    expect(val(focalLoss(z, y, { gamma: 2 }))).toBeCloseTo((1 / 16) * -Math.log(3 / 4), 12);
    expect(val(focalLoss(z, y, { gamma: 0 }))).toBeCloseTo(-Math.log(3 / 4), 12);
  });

  it('LDAM subtracts the capped margin of the label class before scaling', () => {
    // counts [100, 1]: Δ ∝ n^(-1/4) = [0.316, 1] scaled to max 0.5 → Δ_1 = 0.5
    const l = val(ldamLoss(cpu([1, 2], [1, 2]), y, [100, 1], { scale: 30, maxMargin: 0.5 }));
    expect(l).toBeCloseTo(Math.log(1 + Math.exp(-15)), 12);
  });

  it('logit-adjusted loss adds τ·log π', () => {
    expect(val(logitAdjustedLoss(cpu([0, 0], [1, 2]), y, [3, 1]))).toBeCloseTo(Math.log(4), 12);
    expect(val(logitAdjustedLoss(cpu([0, 0], [1, 2]), y, [3, 1], { tau: 0 }))).toBeCloseTo(Math.log(2), 12);
  });

  it('SEQL: w̃ = 1 is cross-entropy; a zero weight removes a negative class from the partition', () => {
    const z3 = cpu([0, L3, 0], [1, 3]);
    expect(val(seqlLoss(z3, y, new Float32Array([1, 1, 1])))).toBeCloseTo(-Math.log(3 / 5), 6);
    expect(val(seqlLoss(z3, y, new Float32Array([1, 1, 0])))).toBeCloseTo(-Math.log(3 / 4), 6);
  });

  it('sigmoid BCE and EQL weights', () => {
    const z2 = cpu([0, 0], [1, 2]);
    const y0 = cpu([0], [1], 'i32');
    expect(val(sigmoidLoss(z2, y0))).toBeCloseTo(2 * Math.log(2), 12);
    expect(val(eqlLoss(z2, y0, new Float32Array([1, 0])))).toBeCloseTo(Math.log(2), 12);
  });

  it('rejects bad input with named errors', () => {
    expect(() => crossEntropy(z, y, { weights: [1, 2, 3] })).toThrow(/crossEntropy: got 3 class weights for 2 classes/);
    expect(() => crossEntropy(cpu([], [1, 0]), y)).toThrow(/class count is zero/);
    expect(() => ldamLoss(z, y, [0, 5])).toThrow(/class 0 has count 0/);
    expect(() => crossEntropy(z, cpu([1, 0], [2], 'i32'))).toThrow(/labels must be i32 \[1\]/);
  });
});

describe('long-tail losses: gradients against finite differences, GPU against CPU', () => {
  const labels = ints([0, 3, 1, 3, 2], [5]);
  const counts = [50, 20, 5, 2];
  it('cross-entropy with weights and label smoothing', async () => {
    await gradcheck(([z, y]) => crossEntropy(z, y, { weights: [1, 2, 3, 4] }), [inp([5, 4], -2, 2), labels]);
    await gradcheck(([z, y]) => crossEntropy(z, y, { labelSmoothing: 0.2 }), [inp([5, 4], -2, 2), labels]);
  });
  it('focal', async () => {
    await gradcheck(([z, y]) => focalLoss(z, y, { gamma: 1.5 }), [inp([5, 4], -2, 2), labels]);
  });
  it('LDAM with DRW weights', async () => {
    await gradcheck(([z, y]) => ldamLoss(z, y, counts, { scale: 5, weights: [0.5, 0.8, 1.2, 1.5] }), [inp([5, 4], -1, 1), labels]);
  });
  it('logit-adjusted', async () => {
    await gradcheck(([z, y]) => logitAdjustedLoss(z, y, counts, { tau: 1.2 }), [inp([5, 4], -2, 2), labels]);
  });
  it('sigmoid focal with class weights, and SEQL', async () => {
    await gradcheck(([z, y]) => sigmoidLoss(z, y, { gamma: 2, classWeights: [1, 2, 3, 4] }), [inp([5, 4], -2, 2), labels]);
    const w = new Float32Array(20).map((_, i) => (i % 3 === 0 ? 0 : 1));
    for (const [i, c] of [0, 3, 1, 3, 2].entries()) w[i * 4 + c] = 1;
    await gradcheck(([z, y]) => seqlLoss(z, y, w), [inp([5, 4], -2, 2), labels]);
  });
});

// ------------------------------------------------------------------ float64 references

const devices = (): ('cpu' | 'webgpu')[] => (hasWebGPU() ? ['cpu', 'webgpu'] : ['cpu']);

/** log softmax(z_i)_c in float64 for a row-major [N, C] array. */
function logSoftmaxRow(z: ArrayLike<number>, i: number, C: number): Float64Array {
  let m = -Infinity;
  for (let c = 0; c < C; c++) m = Math.max(m, z[i * C + c]);
  let s = 0;
  for (let c = 0; c < C; c++) s += Math.exp(z[i * C + c] - m);
  return Float64Array.from({ length: C }, (_, c) => z[i * C + c] - m - Math.log(s));
}

const logSigmoid = (x: number): number => -Math.log1p(Math.exp(-x));

/** Applies a reduction to per-sample float64 losses: 'mean' divides by `denominator`. */
function reduceRef(per: Float64Array, reduction: Reduction, denominator = per.length): Float64Array {
  if (reduction === 'none') return per;
  const s = per.reduce((a, b) => a + b, 0);
  return Float64Array.of(reduction === 'sum' ? s : s / denominator);
}

describe('long-tail losses against direct float64 implementations of the papers\u2019 formulas', () => {
  const N = 7, C = 5;
  const counts = [400, 90, 21, 6, 1];
  const y = [0, 4, 2, 1, 0, 3, 4];
  const z = randomArray(N * C, -3, 3);
  const wOf = (w: ArrayLike<number>): number => y.reduce((s, c) => s + w[c], 0);

  /** Runs `loss` on both backends for every reduction and compares with `ref(reduction)`. */
  async function expectMatches(name: string, loss: (zt: Tensor, yt: Tensor, r: Reduction) => Tensor, ref: (r: Reduction) => Float64Array): Promise<void> {
    for (const device of devices()) {
      const zt = tensor(z, [N, C], { device }), yt = tensor(y, [N], { dtype: 'i32', device });
      for (const r of ['mean', 'sum', 'none'] as const) {
        const out = await loss(zt, yt, r).data();
        expect(relErr(out, ref(r)), `${name} ${r} on ${device}`).toBeLessThan(device === 'cpu' ? 1e-12 : 1e-5);
      }
    }
  }

  it('cross-entropy: −w_y log q_y (torch mean over Σ w_y), label smoothing (1 − ε)·onehot + ε/C', async () => {
    const w = [0.5, 1, 2, 3, 4], eps = 0.15;
    const per = (smoothing: number, weights?: number[]) => Float64Array.from(y, (c, i) => {
      const lq = logSoftmaxRow(z, i, C);
      let l = 0;
      for (let k = 0; k < C; k++) l -= ((k === c ? 1 - smoothing : 0) + smoothing / C) * (weights ? weights[k] : 1) * lq[k];
      return l;
    });
    await expectMatches('CE', (zt, yt, reduction) => crossEntropy(zt, yt, { reduction }), (r) => reduceRef(per(0), r));
    await expectMatches('weighted CE', (zt, yt, reduction) => crossEntropy(zt, yt, { weights: w, reduction }), (r) => reduceRef(per(0, w), r, wOf(w)));
    await expectMatches('smoothed CE', (zt, yt, reduction) => crossEntropy(zt, yt, { labelSmoothing: eps, reduction }), (r) => reduceRef(per(eps), r));
    await expectMatches('weighted smoothed CE', (zt, yt, reduction) => crossEntropy(zt, yt, { weights: w, labelSmoothing: eps, reduction }), (r) => reduceRef(per(eps, w), r, wOf(w)));
  });

  it('class-balanced CE and focal: w_y = (1 − β)/(1 − β^{n_y}) scaled to Σ w = C (Cui et al.), focal −w_y (1 − p_y)^γ log p_y', async () => {
    const beta = 0.99, gamma = 1.5;
    const w = Array.from({ length: C }, (_, j) => (1 - beta) / (1 - beta ** counts[j]));
    const total = w.reduce((a, b) => a + b, 0);
    const cb = w.map((v) => (v * C) / total);
    const ce = Float64Array.from(y, (c, i) => -cb[c] * logSoftmaxRow(z, i, C)[c]);
    const focal = Float64Array.from(y, (c, i) => {
      const lp = logSoftmaxRow(z, i, C)[c];
      return -cb[c] * (1 - Math.exp(lp)) ** gamma * lp;
    });
    const weights = Array.from(classBalancedWeights(counts, beta));
    await expectMatches('CB-CE', (zt, yt, reduction) => crossEntropy(zt, yt, { weights, reduction }), (r) => reduceRef(ce, r, wOf(cb)));
    await expectMatches('CB-focal', (zt, yt, reduction) => focalLoss(zt, yt, { gamma, weights, reduction }), (r) => reduceRef(focal, r));
  });

  it('class-balanced sigmoid focal: Σ_j w_{y_i} (1 − p^t_j)^γ (−log p^t_j), p^t = σ(z) for the label, 1 − σ(z) otherwise (Cui et al.)', async () => {
    const gamma = 2, weights = classBalancedWeights(counts, 0.999);
    const elementWeights = Float32Array.from({ length: N * C }, (_, k) => weights[y[Math.floor(k / C)]]);
    const per = (g: number) => Float64Array.from(y, (c, i) => {
      let l = 0;
      for (let j = 0; j < C; j++) {
        const x = z[i * C + j];
        const logPt = j === c ? logSigmoid(x) : logSigmoid(-x);
        l -= elementWeights[i * C + j] * (1 - Math.exp(logPt)) ** g * logPt;
      }
      return l;
    });
    await expectMatches('CB-sigmoid', (zt, yt, reduction) => sigmoidLoss(zt, yt, { elementWeights, reduction }), (r) => reduceRef(per(0), r));
    await expectMatches('CB-sigmoid focal', (zt, yt, reduction) => sigmoidLoss(zt, yt, { elementWeights, gamma, reduction }), (r) => reduceRef(per(gamma), r));
  });

  it('LDAM: −log softmax(s·(z − Δ_y e_y))_y with Δ_j = C/n_j^{1/4}, max Δ = 0.5 (Cao et al.)', async () => {
    const s = 10;
    const delta = counts.map((n) => n ** -0.25);
    const k = 0.5 / Math.max(...delta);
    const shifted = Float64Array.from(z, (v, idx) => s * (v - (idx % C === y[Math.floor(idx / C)] ? k * delta[idx % C] : 0)));
    const per = Float64Array.from(y, (c, i) => -logSoftmaxRow(shifted, i, C)[c]);
    expect(relErr(ldamMargins(counts), delta.map((d) => k * d))).toBeLessThan(1e-15);
    await expectMatches('LDAM', (zt, yt, reduction) => ldamLoss(zt, yt, counts, { scale: s, reduction }), (r) => reduceRef(per, r));
  });

  it('balanced softmax −log(π_y e^{z_y} / Σ_k π_k e^{z_k}) (Ren et al.) and logit adjustment CE(z + τ log π) (Menon et al.)', async () => {
    const total = counts.reduce((a, b) => a + b, 0);
    const pi = counts.map((n) => n / total);
    const balanced = Float64Array.from(y, (c, i) => {
      let d = 0;
      for (let j = 0; j < C; j++) d += pi[j] * Math.exp(z[i * C + j]);
      return -Math.log((pi[c] * Math.exp(z[i * C + c])) / d);
    });
    await expectMatches('balanced softmax', (zt, yt, reduction) => logitAdjustedLoss(zt, yt, counts, { reduction }), (r) => reduceRef(balanced, r));
    const tau = 0.7;
    const adjusted = Float64Array.from(z, (v, idx) => v + tau * Math.log(pi[idx % C]));
    const la = Float64Array.from(y, (c, i) => -logSoftmaxRow(adjusted, i, C)[c]);
    await expectMatches('logit-adjusted', (zt, yt, reduction) => logitAdjustedLoss(zt, yt, counts, { tau, reduction }), (r) => reduceRef(la, r));
  });

  it('EQL: Σ_j w_j BCE(z_j, y_j) with w_j = 1 − T_λ(f_j)(1 − y_j); SEQL −log(e^{z_y} / Σ_k w̃_k e^{z_k}) (Tan et al.)', async () => {
    const total = counts.reduce((a, b) => a + b, 0);
    const tail = tailIndicator(counts.map((n) => n / total), 0.05); // classes 2, 3, 4
    expect(Array.from(tail)).toEqual([0, 0, 1, 1, 1]);
    const w = eqlWeights(y, tail);
    const eql = Float64Array.from(y, (c, i) => {
      let l = 0;
      for (let j = 0; j < C; j++) {
        const weight = 1 - tail[j] * (j === c ? 0 : 1);
        l -= weight * (j === c ? logSigmoid(z[i * C + j]) : logSigmoid(-z[i * C + j]));
      }
      return l;
    });
    await expectMatches('EQL', (zt, yt, reduction) => eqlLoss(zt, yt, w, reduction), (r) => reduceRef(eql, r));
    const seql = Float64Array.from(y, (c, i) => {
      let d = 0;
      for (let j = 0; j < C; j++) d += w[i * C + j] * Math.exp(z[i * C + j]);
      return -(z[i * C + c] - Math.log(d));
    });
    await expectMatches('SEQL', (zt, yt, reduction) => seqlLoss(zt, yt, w, reduction), (r) => reduceRef(seql, r));
  });
});

describe('long-tail losses: more gradients against finite differences', () => {
  const labels = ints([0, 3, 1, 3, 2], [5]);
  const y = [0, 3, 1, 3, 2];
  const counts = [50, 20, 5, 2];
  const cb = Array.from(classBalancedWeights(counts, 0.99));

  it('weighted label smoothing and class-balanced focal', async () => {
    await gradcheck(([z, t]) => crossEntropy(z, t, { weights: cb, labelSmoothing: 0.1 }), [inp([5, 4], -2, 2), labels]);
    await gradcheck(([z, t]) => focalLoss(z, t, { gamma: 2, weights: cb }), [inp([5, 4], -2, 2), labels]);
  });

  it('class-balanced sigmoid (per-sample weights) and EQL', async () => {
    const perSample = Float32Array.from({ length: 20 }, (_, k) => cb[y[Math.floor(k / 4)]]);
    await gradcheck(([z, t]) => sigmoidLoss(z, t, { elementWeights: perSample, gamma: 1 }), [inp([5, 4], -2, 2), labels]);
    const w = eqlWeights(y, [0, 0, 1, 1]);
    await gradcheck(([z, t]) => eqlLoss(z, t, w), [inp([5, 4], -2, 2), labels]);
  });

  it('balanced softmax, and the sum and none reductions', async () => {
    await gradcheck(([z, t]) => logitAdjustedLoss(z, t, counts), [inp([5, 4], -2, 2), labels]);
    await gradcheck(([z, t]) => crossEntropy(z, t, { weights: cb, reduction: 'none' }), [inp([5, 4], -2, 2), labels]);
    await gradcheck(([z, t]) => ldamLoss(z, t, counts, { scale: 4, reduction: 'sum' }), [inp([5, 4], -1, 1), labels]);
  });
});

describe('long-tail losses: bad input', () => {
  const z = cpu([0, 1, 2, 3, 4, 5], [2, 3]);
  const y = cpu([0, 2], [2], 'i32');

  it('names the loss and the mismatch for weights or counts that do not match the classes', () => {
    expect(() => focalLoss(z, y, { weights: [1, 2] })).toThrow(/focalLoss: got 2 class weights for 3 classes/);
    expect(() => sigmoidLoss(z, y, { classWeights: [1, 2, 3, 4] })).toThrow(/sigmoidLoss: got 4 class weights for 3 classes/);
    expect(() => sigmoidLoss(z, y, { elementWeights: new Float32Array(5) })).toThrow(/sigmoidLoss: elementWeights has 5 entries for \[2, 3\]/);
    expect(() => eqlLoss(z, y, new Float32Array(3))).toThrow(/elementWeights has 3 entries for \[2, 3\]/);
    expect(() => seqlLoss(z, y, new Float32Array(7))).toThrow(/seqlLoss: weights has 7 entries for \[2, 3\]/);
    expect(() => ldamLoss(z, y, [5, 5])).toThrow(/ldamLoss: 2 class counts for 3 classes/);
    expect(() => ldamLoss(z, y, [5, 5, 5], { weights: [1, 1] })).toThrow(/crossEntropy: got 2 class weights for 3 classes/);
    expect(() => logitAdjustedLoss(z, y, [5, 5, 5, 5])).toThrow(/logitAdjustedLoss: 4 class counts for 3 classes/);
    expect(() => crossEntropy(z, y, { weights: [1, NaN, 1] })).toThrow(/crossEntropy: class 1 weight is NaN/);
  });

  it('names the loss for a class count of zero and for parameters out of range', () => {
    expect(() => logitAdjustedLoss(z, y, [5, 0, 5])).toThrow(/logitAdjustedLoss: class 1 has count 0/);
    expect(() => focalLoss(cpu([], [2, 0]), y)).toThrow(/focalLoss: the class count is zero/);
    expect(() => sigmoidLoss(cpu([], [2, 0]), y)).toThrow(/sigmoidLoss: the class count is zero/);
    expect(() => crossEntropy(z, y, { labelSmoothing: 1 })).toThrow(/labelSmoothing must be in \[0, 1\), got 1/);
    expect(() => focalLoss(z, y, { gamma: -1 })).toThrow(/focalLoss: gamma must be >= 0, got -1/);
    expect(() => ldamLoss(z, y, [5, 5, 5], { maxMargin: 0 })).toThrow(/ldamMargins: maxMargin must be a positive number, got 0/);
  });
});
