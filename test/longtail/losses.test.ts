import { describe, expect, it } from 'vitest';
import { tensor, type Tensor } from '../../index.node.js';
import { crossEntropy, focalLoss, ldamLoss, logitAdjustedLoss, seqlLoss, sigmoidLoss, eqlLoss } from '../../longtail/losses.js';
import { gradcheck, inp, ints } from '../autograd/gradcheck.js';

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
