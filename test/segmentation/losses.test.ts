import { describe, expect, it } from 'vitest';
import { tensor } from '../../kernels/creation.js';
import { scope } from '../../kernels/tensor.js';
import { conv2d } from '../../autograd/conv-ops.js';
import { sum } from '../../autograd/ops.js';
import { SGD } from '../../nn/optim.js';
import { ADE20K_PIXEL_RATIO } from '../../segmentation/ade20k-split.js';
import { grwPixelWeights, pixelCounts, segCrossEntropy, segmentationLoss } from '../../segmentation/losses.js';
import { SegDisAlign, disalignPixelLogits, logitAdjustPixels, tauNormWeights } from '../../segmentation/disalign.js';
import { segmentationModel } from '../../segmentation/models.js';
import { fixed, gradcheck, inp } from '../autograd/gradcheck.js';
import { randomArray } from '../helpers.js';

// float64 reference: per-pixel −w_y log softmax(z)_y over NCHW logits
function refCE(z: ArrayLike<number>, shape: number[], labels: number[], w: number[] | undefined, reduction: 'mean' | 'mmseg' | 'sum'): number {
  const [n, c, h, wd] = shape;
  let tot = 0, den = 0;
  for (let b = 0; b < n; b++) for (let i = 0; i < h * wd; i++) {
    const y = labels[b * h * wd + i];
    if (y === 255) continue;
    const row = Array.from({ length: c }, (_, k) => z[(b * c + k) * h * wd + i]);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    const wy = w ? w[y] : 1;
    tot += wy * (lse - row[y]);
    den += wy;
  }
  return reduction === 'sum' ? tot : reduction === 'mmseg' ? tot / (n * h * wd) : tot / den;
}

describe('per-pixel cross-entropy', () => {
  const shape = [2, 3, 2, 3];
  const labels = [0, 2, 255, 1, 1, 0, 2, 255, 255, 0, 1, 2];
  const w = [0.5, 2, 1.25];

  it('matches a float64 reference with the ignore index, class weights and each reduction', async () => {
    const z = randomArray(36, -2, 2);
    for (const reduction of ['mean', 'mmseg', 'sum'] as const) {
      for (const weights of [undefined, w]) {
        const got = await scope(() => segCrossEntropy(tensor(z, shape), labels, { classWeights: weights, reduction })).item();
        expect(got).toBeCloseTo(refCE(z, shape, labels, weights, reduction), 5);
      }
    }
    // all pixels ignored: 0, not NaN
    expect(await segCrossEntropy(tensor(z, shape), new Array(12).fill(255)).item()).toBe(0);
  });

  it('rejects a label outside the classes that is not the ignore index, and a wrong label count', () => {
    expect(() => segCrossEntropy(tensor(new Float32Array(36), shape), [...labels.slice(0, 11), 3])).toThrow(/label 3 at pixel 11 is outside \[0, 3\)/);
    expect(() => segCrossEntropy(tensor(new Float32Array(36), shape), labels.slice(1))).toThrow(/11 labels for logits \[2, 3, 2, 3\]/);
  });

  it('passes a gradient check (weighted, ignore index)', async () => {
    await gradcheck(([z]) => segCrossEntropy(z, labels, { classWeights: w }), [inp(shape)]);
  });

  it('the auxiliary loss is added with weight 0.4', async () => {
    const out = tensor(randomArray(36), shape), aux = tensor(randomArray(36), shape);
    const total = await segmentationLoss({ out, aux }, labels).item();
    const a = await segCrossEntropy(out, labels).item(), b = await segCrossEntropy(aux, labels).item();
    expect(total).toBeCloseTo(a + 0.4 * b, 5);
    expect(await segmentationLoss({ out }, labels).item()).toBeCloseTo(a, 6);
  });

  it('G-RW weights: r^−ρ normalised to sum C (DisAlign get_class_grw_weight)', () => {
    const g = grwPixelWeights(ADE20K_PIXEL_RATIO, 0.2);
    expect(g.reduce((s, v) => s + v, 0)).toBeCloseTo(150, 9);
    expect(g[149] / g[0]).toBeCloseTo((0.1576 / 0.0002) ** 0.2, 9);
    expect(Array.from(grwPixelWeights([0.5, 0.5], 0.3))).toEqual([1, 1]);
    expect(() => grwPixelWeights([1, 0])).toThrow(/class 1 has pixel share 0/);
    expect(Array.from(pixelCounts([[0, 1, 1, 255], [2, 1]], 3))).toEqual([1, 3, 1]);
  });
});

describe('DisAlign per pixel', () => {
  it('the head (1×1 confidence conv, α, β) passes a gradient check', async () => {
    // z [2, 3, 2, 3]; features [2, 4, 2, 3]; confidence conv weight [1, 4, 1, 1]; α, β [1, 3, 1, 1]
    await gradcheck(
      ([z, x, v, a, b]) => disalignPixelLogits(z, conv2d(x, v, null), a, b),
      [inp([2, 3, 2, 3], -2, 2), inp([2, 4, 2, 3]), inp([1, 4, 1, 1]), inp([1, 3, 1, 1], 0.5, 1.5), inp([1, 3, 1, 1])],
    );
    // with the confidence input fixed, only z, α and β carry gradients
    await gradcheck(([z, c, a, b]) => disalignPixelLogits(z, c, a, b), [inp([1, 2, 3, 1]), fixed([1, 1, 3, 1]), inp([1, 2, 1, 1]), inp([1, 2, 1, 1])]);
  });

  it('σ(zα + β) + (1 − σ)z elementwise', async () => {
    const z = [1, -2, 0.5, 3], c = [0, 2], alpha = [2, -1], beta = [0.5, 1];
    const out = await disalignPixelLogits(tensor(z, [1, 2, 1, 2]), tensor(c, [1, 1, 1, 2]), tensor(alpha, [1, 2, 1, 1]), tensor(beta, [1, 2, 1, 1])).data();
    const sg = (x: number): number => 1 / (1 + Math.exp(-x));
    const ref = [0, 1, 2, 3].map((i) => {
      const ch = i >> 1, px = i & 1, s = sg(c[px]);
      return s * (z[i] * alpha[ch] + beta[ch]) + (1 - s) * z[i];
    });
    ref.forEach((r, i) => expect(out[i]).toBeCloseTo(r, 5));
  });

  it('starts as the identity (α = 1, β = 0) and stage 2 trains only α, β and the confidence layer', async () => {
    const model = segmentationModel('deeplabv3plus', { depth: 14, numClasses: 4, headChannels: 8, lowChannels: 8, resnet: { baseChannels: 4 }, outputStride: 16 });
    model.eval();
    const da = new SegDisAlign(model);
    expect(da.stateDict().has('confidence_layer.conv.weight')).toBe(true);
    expect(da.stateDict().has('confidence_layer.bn.running_var')).toBe(true);
    expect(da.trainableParameters().length).toBe(5);
    const x = tensor(randomArray(3 * 17 * 19), [1, 3, 17, 19]);
    const base = await scope(() => model.forward(x).out).data();
    da.train();
    expect(model.training).toBe(false);
    const cal = await scope(() => da.forward(x).out).data();
    for (let i = 0; i < base.length; i += 37) expect(cal[i]).toBeCloseTo(base[i], 4);
    const frozen = await model.classifier.finalConv.weight.data();
    const alpha0 = await da.logit_scale.data();
    const opt = new SGD(da.trainableParameters(), { lr: 0.5 });
    const labels = Array.from({ length: 17 * 19 }, (_, i) => (i % 7 === 0 ? 255 : i % 4));
    for (let step = 0; step < 2; step++) {
      opt.zeroGrad();
      scope(() => segmentationLoss(da.forward(x), labels, { classWeights: [1, 2, 3, 4] }).backward());
      opt.step();
    }
    expect(Array.from(await model.classifier.finalConv.weight.data())).toEqual(Array.from(frozen));
    expect(model.classifier.finalConv.weight.grad ?? null).toBeNull();
    expect(Array.from(await da.logit_scale.data())).not.toEqual(Array.from(alpha0));
  });

  it('logit adjustment subtracts τ log π per class; τ-norm rescales classifier rows to ‖w‖^(1−τ)', async () => {
    const z = tensor([0, 0, 0, 0], [1, 2, 1, 2]);
    const adj = await logitAdjustPixels(z, [3, 1], 1).data();
    expect(adj[0]).toBeCloseTo(-Math.log(0.75), 5);
    expect(adj[2]).toBeCloseTo(-Math.log(0.25), 5);
    // shares give the same shift as counts; a zero class gets half the smallest prior
    expect(Array.from(await logitAdjustPixels(z, [0.75, 0.25], 1).data())).toEqual(Array.from(adj));
    expect((await logitAdjustPixels(z, [4, 0], 2).data())[2]).toBeCloseTo(-2 * Math.log(0.5), 5);
    const wt = tensor([3, 4, 0.6, 0.8], [2, 2, 1, 1]);
    const tn = await (await tauNormWeights(wt, 0.5)).data();
    expect(Math.hypot(tn[0], tn[1])).toBeCloseTo(Math.sqrt(5), 5);
    expect(Math.hypot(tn[2], tn[3])).toBeCloseTo(1, 5);
    expect(await sum(await tauNormWeights(wt, 0)).item()).toBeCloseTo(8.4, 5);
  });
});
