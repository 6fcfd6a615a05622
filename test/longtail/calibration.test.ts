import { describe, expect, it } from 'vitest';
import { hasWebGPU, manualSeed, tensor, type Tensor } from '../../index.node.js';
import { OpError } from '../../kernels/errors.js';
import { copyInto } from '../../nn/init.js';
import { parameter } from '../../nn/module.js';
import {
  CALIBRATIONS, CausalNormHead, calibrationHeadMismatch, CosineHead, DisAlignHead, GroupSoftmaxHead, LinearHead, calibrate, classCentroids, disalignLogits, disalignLoss, groupSoftmaxLoss,
  LwsHead, groupSplit, logitAdjust, ncm, trainCrt, trainDisAlign, trainLws, type CalibrationName, type Head,
} from '../../longtail/calibration.js';
import { crossEntropy } from '../../longtail/losses.js';
import { perClassAccuracy, predictions } from '../../longtail/metrics.js';
import { Rng } from '../../data/rng.js';
import { grwWeights } from '../../longtail/weights.js';
import { fixed, gradcheck, inp } from '../autograd/gradcheck.js';
import { randomArray, relErr } from '../helpers.js';

const devices = (): ('cpu' | 'webgpu')[] => (hasWebGPU() ? ['cpu', 'webgpu'] : ['cpu']);
const gpuOrCpu = (): 'cpu' | 'webgpu' => (hasWebGPU() ? 'webgpu' : 'cpu');
const set = (t: Tensor, v: ArrayLike<number>): void => copyInto(t, tensor(v, [...t.shape], { device: 'cpu' }));
const labelsOf = (counts: readonly number[]): Int32Array => Int32Array.from(counts.flatMap((n, c) => Array<number>(n).fill(c)));

function gaussian(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - rng.uniform())) * Math.cos(2 * Math.PI * rng.uniform());
}

/** Gaussian class clusters: x = μ_y + ε with ε ~ N(0, I); `counts[c]` samples of class c. */
function clusters(means: Float64Array, D: number, counts: readonly number[], rng: Rng): Float32Array {
  const y = labelsOf(counts);
  return Float32Array.from({ length: y.length * D }, (_, i) => means[y[Math.floor(i / D)] * D + (i % D)] + gaussian(rng));
}

/** Direct float64 DisAlign: (1 + σα_j) z_j + σβ_j with σ = sigmoid(v·x + b). */
function disalignReference(zo: ArrayLike<number>, x: ArrayLike<number>, v: ArrayLike<number>, b: number, alpha: ArrayLike<number>, beta: ArrayLike<number>, N: number, D: number, C: number): Float64Array {
  const out = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    let a = b;
    for (let d = 0; d < D; d++) a += v[d] * x[n * D + d];
    const s = 1 / (1 + Math.exp(-a));
    for (let j = 0; j < C; j++) out[n * C + j] = (1 + s * alpha[j]) * zo[n * C + j] + s * beta[j];
  }
  return out;
}

describe('DisAlign', () => {
  it('computes (1 + σ(x)α) z° + σ(x)β, and its gradients match finite differences', async () => {
    const N = 5, D = 6, C = 7;
    const zo = randomArray(N * C, -3, 3), x = randomArray(N * D), v = randomArray(D), alpha = randomArray(C), beta = randomArray(C);
    const ref = disalignReference(zo, x, v, 0.3, alpha, beta, N, D, C);
    for (const device of devices()) {
      const t = (a: ArrayLike<number>, s: number[]) => tensor(a, s, { device });
      const out = disalignLogits(t(zo, [N, C]), t(x, [N, D]), t(v, [1, D]), t([0.3], [1]), t(alpha, [1, C]), t(beta, [1, C]));
      expect(relErr(await out.data(), ref), device).toBeLessThan(1e-6);
    }
    await gradcheck(([z, xs, vs, b, a, be]) => disalignLogits(z, xs, vs, b, a, be), [inp([N, C], -2, 2), inp([N, D]), inp([1, D]), inp([1]), inp([1, C]), inp([1, C])]);
  });

  it('gradients of the DisAlign head (linear and cosine, DisAlign*) reach its own parameters only', async () => {
    const N = 4, D = 5, C = 3;
    for (const cosine of [false, true]) {
      const heads = new Map<string, DisAlignHead>();
      await gradcheck(([x, v, b, a, be]) => {
        let head = heads.get(x.device);
        if (!head) {
          const base: Head = cosine ? new CosineHead(D, C, { device: x.device }) : new LinearHead(D, C, { device: x.device });
          for (const p of base.parameters()) set(p, Float32Array.from({ length: p.size }, (_, i) => Math.sin(i + 1)));
          heads.set(x.device, (head = new DisAlignHead(base)));
          expect(head.confidenceOnNormalized).toBe(cosine);
        }
        head.confidence_layer.weight = parameter(v);
        head.confidence_layer.bias = parameter(b);
        head.logit_scale = parameter(a);
        head.logit_bias = parameter(be);
        return head.forward(x);
      }, [fixed([N, D]), inp([1, D]), inp([1]), inp([1, C]), inp([1, C])]);
      for (const head of heads.values()) for (const p of head.classifier.parameters()) expect(p.grad).toBeNull();
    }
  });

  it('starts from the stage-1 logits (α = β = 0), and with σ ≡ 0 (v = 0, b = −large) returns them for any α, β', async () => {
    const N = 6, D = 4, C = 5;
    const x = randomArray(N * D);
    for (const device of devices()) {
      const base = new LinearHead(D, C, { device });
      const head = new DisAlignHead(base);
      expect(head.calibrationParameters().map(([n, p]) => `${n} ${p.shape.join('x')}`)).toEqual(['logit_scale 1x5', 'logit_bias 1x5', 'confidence_layer.weight 1x4', 'confidence_layer.bias 1']);
      expect(relErr(await head.confidence_layer.weight.data(), [0.1, 0.1, 0.1, 0.1])).toBeLessThan(1e-7);
      expect(Array.from(await head.logit_scale.data())).toEqual([0, 0, 0, 0, 0]);
      expect(Array.from(await head.logit_bias.data())).toEqual([0, 0, 0, 0, 0]);
      const xs0 = tensor(x, [N, D], { device });
      expect(Array.from(await head.forward(xs0).data())).toEqual(Array.from(await base.forward(xs0).data()));
      set(head.logit_scale, randomArray(C));
      set(head.logit_bias, randomArray(C));
      set(head.confidence_layer.weight, [0, 0, 0, 0]);
      set(head.confidence_layer.bias!, [-1e4]);
      const xs = tensor(x, [N, D], { device });
      expect(Array.from(await head.forward(xs).data())).toEqual(Array.from(await base.forward(xs).data()));
    }
  });

  it('σ(x) = sigmoid(v·x + b), on x/‖x‖ by default for heads that score only the direction (cosine, causal-norm)', async () => {
    const N = 5, D = 4, C = 3;
    const x = randomArray(N * D, 0, 3), v = randomArray(D), b = 0.4;
    const reference = (normalized: boolean) => Float64Array.from({ length: N }, (_, n) => {
      const row = Array.from(x.subarray(n * D, (n + 1) * D));
      const scale = normalized ? Math.hypot(...row) : 1;
      return 1 / (1 + Math.exp(-(row.reduce((s, e, d) => s + (e / scale) * v[d], 0) + b)));
    });
    for (const device of devices()) {
      const bases: [Head, boolean][] = [[new LinearHead(D, C, { device }), false], [new CosineHead(D, C, { device }), true], [new CausalNormHead(D, C, { device }), true]];
      for (const [base, normalized] of bases) {
        const head = new DisAlignHead(base);
        expect(head.confidenceOnNormalized, base.constructor.name).toBe(normalized);
        expect(new DisAlignHead(base, { confidenceOnNormalized: !normalized }).confidenceOnNormalized).toBe(!normalized);
        set(head.confidence_layer.weight, v);
        set(head.confidence_layer.bias!, [b]);
        const sigma = await head.confidence(tensor(x, [N, D], { device })).data();
        expect(relErr(sigma, reference(normalized)), `${base.constructor.name} on ${device}`).toBeLessThan(1e-6);
      }
    }
  });

  it('at initialisation the loss does not move σ: the confidence layer gets a zero gradient, α and β do not', async () => {
    const N = 8, D = 4, C = 3, counts = [40, 8, 2];
    const y = [0, 0, 1, 2, 0, 1, 0, 2];
    const base = new CausalNormHead(D, C, { device: 'cpu' });
    const head = new DisAlignHead(base);
    const loss = disalignLoss(head.forward(tensor(randomArray(N * D, 0, 2), [N, D], { device: 'cpu' })), tensor(y, [N], { dtype: 'i32', device: 'cpu' }), y, grwWeights(counts, 1.2));
    loss.backward();
    expect(Array.from(head.confidence_layer.weight.grad!.cpu)).toEqual([0, 0, 0, 0]);
    expect(head.confidence_layer.bias!.grad!.cpu[0]).toBe(0);
    expect(Array.from(head.logit_scale.grad!.cpu).some((g) => Math.abs(g) > 1e-3)).toBe(true);
    expect(Array.from(head.logit_bias.grad!.cpu).some((g) => Math.abs(g) > 1e-3)).toBe(true);
  });

  it('with ρ = 0 the reference is one-hot: the loss is plain cross-entropy', async () => {
    const counts = [50, 20, 5, 1];
    expect(Array.from(grwWeights(counts, 0))).toEqual([1, 1, 1, 1]);
    const N = 6, C = 4;
    const z = randomArray(N * C, -2, 2), y = [0, 3, 1, 1, 2, 0];
    for (const device of devices()) {
      const zt = tensor(z, [N, C], { device }), yt = tensor(y, [N], { dtype: 'i32', device });
      const kl = await disalignLoss(zt, yt, y, grwWeights(counts, 0)).item();
      expect(kl).toBeCloseTo(await crossEntropy(zt, yt).item(), 5);
      // ρ > 0: the value of torch's F.cross_entropy(weight=w), as cvpods' GRWCrossEntropyLoss logs it
      const w = grwWeights(counts, 1.2);
      const weighted = await crossEntropy(zt, yt, { weights: w }).item();
      expect(await disalignLoss(zt, yt, y, w).item()).toBeCloseTo(weighted, 4);
    }
  });
});

describe('post-hoc calibration', () => {
  it('logit adjustment: z − λ log ρ, the identity at λ = 0', async () => {
    const counts = [30, 10, 1];
    const z = randomArray(8 * 3);
    for (const device of devices()) {
      const zt = tensor(z, [8, 3], { device });
      expect(Array.from(await logitAdjust(zt, counts, 0).data())).toEqual(Array.from(await zt.data()));
      const ref = Float64Array.from(z, (v, i) => v - 0.5 * Math.log(counts[i % 3] / 41));
      expect(relErr(await logitAdjust(zt, counts, 0.5).data(), ref), device).toBeLessThan(1e-6);
    }
  });

  it('NCM: class centroids are class means, and separable clusters are classified perfectly', async () => {
    const D = 3, counts = [5, 3, 1];
    const means = Float64Array.from([6, 0, 0, 0, 6, 0, 0, 0, 6]);
    const rng = new Rng(3);
    const train = clusters(means, D, counts, rng);
    const trainLabels = labelsOf(counts);
    const test = clusters(means, D, [4, 4, 4], rng);
    for (const device of devices()) {
      const trainX = tensor(train, [9, D], { device });
      const centroids = await classCentroids(trainX, trainLabels, 3).data();
      const ref = new Float64Array(9);
      trainLabels.forEach((c, i) => { for (let d = 0; d < D; d++) ref[c * D + d] += train[i * D + d] / counts[c]; });
      expect(relErr(centroids, ref), device).toBeLessThan(1e-6);
      const head = new LinearHead(D, 3, { device });
      for (const transform of ['un', 'l2n', 'cl2n'] as const) {
        for (const ncmMetric of ['cos', 'l2'] as const) {
          const f = await CALIBRATIONS.ncm({ trainFeatures: trainX, trainLabels, classCounts: counts, head, options: { ncmTransform: transform, ncmMetric } });
          const predicted = predictions(new Float64Array(await f(tensor(test, [12, D], { device })).data()), 3);
          expect(Array.from(predicted), `${transform} ${ncmMetric} on ${device}`).toEqual(Array.from(labelsOf([4, 4, 4])));
        }
      }
    }
  });

  it('τ-norm drops the bias (their tau_norm.py) and τ = 0 with keepBias is the head itself', async () => {
    const D = 4, C = 3, x = randomArray(5 * D);
    for (const device of devices()) {
      const head = new LinearHead(D, C, { device });
      const xs = tensor(x, [5, D], { device });
      const input = { trainFeatures: xs, trainLabels: [0, 1, 2, 0, 1], classCounts: [2, 2, 1], head };
      const same = await calibrate('taunorm', { ...input, options: { tau: 0, keepBias: true } });
      expect(relErr(await same(xs).data(), await head.forward(xs).data()), device).toBeLessThan(1e-6);
      const noBias = await calibrate('taunorm', { ...input, options: { tau: 0 } });
      const w = await head.fc.weight.data();
      const ref = Float64Array.from({ length: 5 * C }, (_, i) => {
        let s = 0;
        for (let d = 0; d < D; d++) s += x[Math.floor(i / C) * D + d] * w[(i % C) * D + d];
        return s;
      });
      expect(relErr(await noBias(xs).data(), ref), device).toBeLessThan(1e-5);
    }
  });

  it("TDE uses the head's moving average, or the training-feature mean; α = 0 is the plain causal-norm head", async () => {
    const D = 4, C = 3, N = 6, x = randomArray(N * D);
    for (const device of devices()) {
      const head = new CausalNormHead(D, C, { device });
      const xs = tensor(x, [N, D], { device });
      const input = { trainFeatures: xs, trainLabels: [0, 1, 2, 0, 1, 0], classCounts: [3, 2, 1], head };
      await expect(calibrate('tde', input)).rejects.toThrow(/tde: the head's feature moving average is zero/);
      head.forward(xs); // a training forward accumulates x̄
      head.eval();
      const plain = await calibrate('tde', { ...input, options: { tdeAlpha: 0 } });
      expect(relErr(await plain(xs).data(), await head.forward(xs).data()), device).toBeLessThan(1e-6);
      // x̄ = 1·mean(x) after one forward from zero, so both sources agree
      const fromHead = await calibrate('tde', input), fromTrain = await calibrate('tde', { ...input, options: { tdeEmbed: 'train' } });
      expect(relErr(await fromHead(xs).data(), await fromTrain(xs).data()), device).toBeLessThan(1e-5);
      await expect(calibrate('tde', { ...input, head: new LinearHead(D, C, { device }) })).rejects.toThrow(/tde: needs a CausalNormHead/);
    }
  });
});

describe('NCM and LWS', () => {
  /** Float64 NCM scores: centroids of the transformed training features, then cosine or −squared distance. */
  function ncmReference(train: Float32Array, labels: ArrayLike<number>, test: Float32Array, D: number, C: number, transform: 'un' | 'l2n' | 'cl2n', metric: 'cos' | 'l2', scale: number): Float64Array {
    const N = labels.length, M = test.length / D;
    const mean = new Float64Array(D);
    for (let i = 0; i < N; i++) for (let d = 0; d < D; d++) mean[d] += train[i * D + d] / N;
    const t = (x: Float32Array, i: number): Float64Array => {
      const v = Float64Array.from({ length: D }, (_, d) => x[i * D + d] - (transform === 'cl2n' ? mean[d] : 0));
      const n = Math.hypot(...v);
      return transform === 'un' ? v : v.map((e) => e / n);
    };
    const centroids = Array.from({ length: C }, () => new Float64Array(D));
    const counts = new Float64Array(C);
    for (let i = 0; i < N; i++) {
      const v = t(train, i);
      counts[labels[i]]++;
      v.forEach((e, d) => (centroids[labels[i]][d] += e));
    }
    centroids.forEach((c, j) => c.forEach((_, d) => (c[d] /= counts[j])));
    const out = new Float64Array(M * C);
    for (let i = 0; i < M; i++) {
      const v = t(test, i);
      for (let j = 0; j < C; j++) {
        const e = centroids[j];
        const dot = v.reduce((s, x, d) => s + x * e[d], 0);
        out[i * C + j] = metric === 'cos' ? (scale * dot) / (Math.hypot(...v) * Math.hypot(...e)) : -v.reduce((s, x, d) => s + (x - e[d]) ** 2, 0);
      }
    }
    return out;
  }

  it('NCM scores λ·cos(x̃, e_j) or −‖x̃ − e_j‖² with e_j the mean transformed feature of class j (Kang et al.)', async () => {
    const D = 5, C = 3, N = 9, M = 4;
    const train = randomArray(N * D, -1, 2), test = randomArray(M * D, -1, 2);
    const labels = [0, 1, 2, 0, 1, 0, 2, 0, 1];
    for (const device of devices()) {
      for (const transform of ['un', 'l2n', 'cl2n'] as const) {
        for (const metric of ['cos', 'l2'] as const) {
          const model = ncm(tensor(train, [N, D], { device }), labels, C, { transform, metric, scale: 2.5 });
          const ref = ncmReference(train, labels, test, D, C, transform, metric, 2.5);
          expect(relErr(await model.logits(tensor(test, [M, D], { device })).data(), ref), `${transform} ${metric} on ${device}`).toBeLessThan(1e-5);
        }
      }
    }
  });

  it('LWS scores s_j·(w_j·x + b_j) with s = 1 at the start, and its training moves only the scales', async () => {
    const D = 4, C = 3, N = 12;
    const x = randomArray(N * D), scales = [0.5, 2, -1];
    const labels = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2];
    for (const device of devices()) {
      const base = new LinearHead(D, C, { device });
      const xs = tensor(x, [N, D], { device });
      const z = await base.forward(xs).data();
      const lws = new LwsHead(base);
      expect(relErr(await lws.forward(xs).data(), z), device).toBeLessThan(1e-7);
      set(lws.scales, scales);
      expect(relErr(await lws.forward(xs).data(), Float64Array.from(z, (v, i) => scales[i % C] * v)), device).toBeLessThan(1e-6);
    }
    const base = new LinearHead(D, C, { device: 'cpu' });
    const weightBefore = await base.fc.weight.data(), biasBefore = await base.fc.bias!.data();
    const { head } = await trainLws(base, tensor(x, [N, D], { device: 'cpu' }), labels, { epochs: 3, batchSize: 4, lr: 0.5 });
    expect(Array.from(await head.scales.data())).not.toEqual([1, 1, 1]);
    expect(Array.from(await base.fc.weight.data())).toEqual(Array.from(weightBefore));
    expect(Array.from(await base.fc.bias!.data())).toEqual(Array.from(biasBefore));
  });
});

describe('balanced group softmax', () => {
  it('bins classes by instance count with an "others" column per group', () => {
    const s = groupSplit([2000, 5, 150, 40, 9, 1000]);
    expect(s.groups.map((g) => Array.from(g))).toEqual([[1, 4], [3], [2], [0, 5]]);
    expect(Array.from(s.sliceStart)).toEqual([0, 3, 5, 7]);
    expect(Array.from(s.classSlot)).toEqual([1, 1, 1, 1, 2, 2]);
    expect(Array.from(s.mergedColumn)).toEqual([4, 0, 3, 2, 1, 5]);
    expect(groupSplit([3, 4], [10, 100]).groups.length).toBe(1); // empty groups are dropped
    expect(() => groupSplit([3, 4], [100, 10])).toThrow(/increasing/);
  });

  it('scores each class by the log-softmax of its group', async () => {
    const D = 3, N = 4, counts = [500, 5, 50];
    const x = randomArray(N * D);
    for (const device of devices()) {
      const head = new GroupSoftmaxHead(D, counts, { device });
      set(head.fc.weight, randomArray(6 * D));
      const raw = await head.rawLogits(tensor(x, [N, D], { device })).data();
      const out = await head.forward(tensor(x, [N, D], { device })).data();
      // groups: [1] at columns 0..1, [2] at 2..3, [0] at 4..5
      const logSoftmax2 = (a: number, b: number) => a - Math.log(Math.exp(a) + Math.exp(b));
      const ref = Float64Array.from({ length: N * 3 }, (_, i) => {
        const n = Math.floor(i / 3), r = raw.subarray(n * 6, n * 6 + 6), c = i % 3;
        return c === 0 ? logSoftmax2(r[5], r[4]) : c === 1 ? logSoftmax2(r[1], r[0]) : logSoftmax2(r[3], r[2]);
      });
      expect(relErr(out, ref), device).toBeLessThan(1e-5);
    }
  });

  it('trains each group on its classes plus ⌊8·positives⌋ sampled others, averaged per group', async () => {
    // group 0: class 1 (5 instances), group 1: class 0 (500)
    const split = groupSplit([500, 5], [10]);
    const labels = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const raw = randomArray(labels.length * 4, -2, 2);
    const ce = (row: number, start: number, target: number) => {
      const a = raw[row * 4 + start], b = raw[row * 4 + start + 1];
      return Math.log(Math.exp(a) + Math.exp(b)) - raw[row * 4 + start + target];
    };
    for (const device of devices()) {
      const loss = await groupSoftmaxLoss(tensor(raw, [labels.length, 4], { device }), labels, split, 8, new Rng(0)).item();
      // group 1 (class 0): 10 positives, 80 others wanted, the 1 available kept → mean over 11 rows
      let g1 = 0;
      labels.forEach((y, i) => (g1 += ce(i, 2, y === 0 ? 1 : 0)));
      // group 0 (class 1): 1 positive and 8 of the 10 others, drawn by the same Rng as the loss draws them
      const rng = new Rng(0), others = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
      let g0 = ce(10, 0, 1);
      for (let k = 0; k < 8; k++) {
        const r = k + rng.int(others.length - k);
        [others[k], others[r]] = [others[r], others[k]];
        g0 += ce(others[k], 0, 0);
      }
      expect(loss, device).toBeCloseTo(g0 / 9 + g1 / 11, 4);
    }
  });
});

describe('learned calibration on a synthetic long-tailed feature set (10 classes, imbalance 100)', () => {
  const C = 10, D = 16, batch = 64;
  // 283·100^(−j/9): 704 = 11 batches of 64, so every step has the same shapes (one compile per kernel)
  const counts = Array.from({ length: C }, (_, j) => Math.round(283 * 100 ** (-j / (C - 1))));
  const rng = new Rng(8);
  const means = Float64Array.from({ length: C * D }, () => 0.8 * gaussian(rng));
  const trainLabels = labelsOf(counts);
  const train = clusters(means, D, counts, rng);
  const testLabels = labelsOf(Array<number>(C).fill(batch));
  const test = clusters(means, D, Array<number>(C).fill(batch), rng);

  /** Mean per-class accuracy on the balanced test set, scored a batch at a time. */
  async function balancedAccuracy(logits: (x: Tensor) => Tensor): Promise<number> {
    const scores = new Float32Array(testLabels.length * C);
    for (let start = 0; start < testLabels.length; start += batch) {
      const x = tensor(test.subarray(start * D, (start + batch) * D), [batch, D], { device: gpuOrCpu() });
      scores.set(await logits(x).data(), start * C);
    }
    const perClass = perClassAccuracy(predictions(scores, C), testLabels, C);
    return perClass.reduce((a: number, b: number) => a + b, 0) / C;
  }

  it('cRT, LWS, DisAlign and balanced group softmax beat the plain instance-balanced head', async () => {
    manualSeed(1);
    const trainFeatures = tensor(train, [trainLabels.length, D], { device: gpuOrCpu() });
    const { head: plain, epochLosses } = await trainCrt(trainFeatures, trainLabels, C, { batchSize: batch, sampler: 'instance', epochs: 10 });
    expect(epochLosses[9]).toBeLessThan(epochLosses[0]);
    const base = await balancedAccuracy((x) => plain.forward(x));
    const options: Record<string, object> = {
      crt: { epochs: 10 },
      lws: { epochs: 3 },
      disalign: { epochs: 5 },
      // with instance sampling (their default) the groups' probabilities do not compare across groups
      // for a top-1 decision on this set; class-balanced sampling gives the groups balanced data
      bgs: { epochs: 10, lr: 0.2, sampler: 'class' },
    };
    for (const name of Object.keys(options) as CalibrationName[]) {
      const f = await calibrate(name, { trainFeatures, trainLabels, classCounts: counts, head: plain, options: { batchSize: batch, minIterations: 0, ...options[name] } }); // the epochs as given
      const accuracy = await balancedAccuracy(f);
      expect(accuracy, `${name}: ${accuracy} vs plain ${base}`).toBeGreaterThan(base + 0.04);
      expect(f.epochLosses.at(-1)!, name).toBeLessThan(f.epochLosses[0]);
    }
  });

  it('DisAlign training is reproducible and leaves the stage-1 head untouched', async () => {
    const trainFeatures = tensor(train, [trainLabels.length, D], { device: gpuOrCpu() });
    const head = new LinearHead(D, C, { device: gpuOrCpu() });
    const before = await head.fc.weight.data();
    manualSeed(5); // the confidence layer's bias starts from torch's random init
    const a = await trainDisAlign(head, trainFeatures, trainLabels, counts, { batchSize: batch, epochs: 2, minIterations: 0 });
    manualSeed(5);
    const b = await trainDisAlign(head, trainFeatures, trainLabels, counts, { batchSize: batch, epochs: 2, minIterations: 0 });
    expect(b.epochLosses).toEqual(a.epochLosses);
    expect(Array.from(await head.fc.weight.data())).toEqual(Array.from(before));
  });
});

describe('calibration input errors', () => {
  const D = 4, C = 3;
  const features = () => tensor(randomArray(6 * D), [6, D], { device: 'cpu' });
  const base = () => ({ trainFeatures: features(), trainLabels: [0, 1, 2, 0, 1, 0], classCounts: [3, 2, 1], head: new LinearHead(D, C, { device: 'cpu' }) as Head });

  it('names the method and the problem', async () => {
    await expect(calibrate('disalign', { ...base(), classCounts: [] })).rejects.toThrow(/disalign: the class-count list is empty/);
    await expect(calibrate('lws', { ...base(), classCounts: [3, 3] })).rejects.toThrow(/lws: 2 class counts for a head of 3 classes/);
    await expect(calibrate('crt', { ...base(), classCounts: [3, 0, 3] })).rejects.toThrow(/crt: class 1 has count 0/);
    await expect(calibrate('ncm', { ...base(), trainLabels: [0, 1, 2] })).rejects.toThrow(/ncm: 3 labels for 6 feature rows/);
    await expect(calibrate('bgs', { ...base(), trainLabels: [0, 1, 2, 0, 1, 3] })).rejects.toThrow(/bgs: label 3 at index 5 is outside the 3 classes/);
    await expect(calibrate('taunorm', { ...base(), head: new CausalNormHead(D, C, { device: 'cpu' }) })).rejects.toThrow(/taunorm: needs a linear/);
    expect(calibrationHeadMismatch('taunorm', new CausalNormHead(D, C, { device: 'cpu' }))).toMatch(/^needs a linear .* got CausalNormHead$/);
    expect(calibrationHeadMismatch('tde', base().head)).toMatch(/^needs a CausalNormHead .* got LinearHead$/);
    expect(['ncm', 'taunorm', 'logitadjust', 'crt', 'lws', 'bgs', 'disalign'].map((n) => calibrationHeadMismatch(n, base().head))).toEqual(Array(7).fill(null));
    expect(() => calibrate('platt', base())).toThrow(/unknown calibration "platt"; expected one of ncm, taunorm, logitadjust, tde, crt, lws, bgs, disalign/);
    const t = tensor(randomArray(2 * C), [2, C], { device: 'cpu' }), y = tensor([0, 1], [2], { dtype: 'i32', device: 'cpu' });
    expect(() => disalignLoss(t, y, [0, 1], [1, 1])).toThrow(/disalignLoss: got 2 class weights for 3 classes/);
    expect(() => logitAdjust(t, [1, 2])).toThrow(/logitAdjust: logits must be \[N, 2\]/);
    expect(() => new GroupSoftmaxHead(D, [])).toThrow(OpError);
  });

  it('stops training when the logits turn NaN', async () => {
    const input = base();
    set((input.head as LinearHead).fc.weight, Array(C * D).fill(NaN));
    await expect(calibrate('disalign', { ...input, options: { epochs: 1, batchSize: 3, minIterations: 0 } })).rejects.toThrow(/disalign: the training loss became NaN in epoch 1 of 1/);
    const nanFeatures = tensor(Array(6 * D).fill(NaN), [6, D], { device: 'cpu' });
    await expect(calibrate('crt', { ...base(), trainFeatures: nanFeatures, options: { epochs: 1 } })).rejects.toThrow(/crt: the training loss became NaN/);
  });
});
