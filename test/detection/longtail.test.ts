import { describe, expect, it } from 'vitest';
import { hasWebGPU, tensor, type Tensor } from '../../index.node.js';
import { OpError } from '../../kernels/errors.js';
import { copyInto } from '../../nn/init.js';
import { Linear } from '../../nn/layers.js';
import {
  bagsClassifier, bagsGroups, bagsLoss, bagsScores, CosineBoxClassifier, detectionLtMethod, DisAlignBoxHead, disalignBoxLogits, eqlBoxWeights, eqlBoxLoss, grwBoxLoss, grwBoxWeights,
  initSigmoidClassifier, logitAdjustBoxLogits, priorBias, repeatFactors, rfsSampler, sigmoidBoxScores, sigmoidFocalBoxLoss, simcalCombine,
  simcalBatch, simcalSampler, tauNormBoxLogits, trainDisAlignBoxHead,
} from '../../detection/longtail.js';
import { Rng } from '../../data/rng.js';
import { fixed, gradcheck, inp } from '../autograd/gradcheck.js';
import { randomArray, relErr } from '../helpers.js';
import fx from '../fixtures/detection-longtail/longtail.json';

const cpu = (v: ArrayLike<number>, shape: number[]): Tensor => tensor(v, shape, { device: 'cpu' });
const set = (t: Tensor, v: ArrayLike<number>): void => copyInto(t, tensor(v, [...t.shape], { device: 'cpu' }));
const softplus = (x: number): number => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const sig = (x: number): number => 1 / (1 + Math.exp(-x));
function softmaxRow(v: number[]): number[] {
  const m = Math.max(...v);
  const e = v.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

describe('repeat-factor sampling', () => {
  // 4 images: f_0 = 3/4, f_1 = 1/4; t = 0.5 → r(0) = 1, r(1) = √2; image 3 has no annotation
  const cats = [[0], [0, 1, 1], [0], []];
  it('r_i = max over its categories of max(1, sqrt(t / f_c)), hand-worked', () => {
    const r = repeatFactors(cats, undefined, 0.5);
    expect(Array.from(r)).toEqual([1, Math.SQRT2, 1, 1]);
    // counts given as LVIS image_count give the same; t = 0.001 leaves everything at 1 here
    expect(Array.from(repeatFactors(cats, [3, 1], 0.5))).toEqual(Array.from(r));
    expect(Array.from(repeatFactors(cats, [3, 1]))).toEqual([1, 1, 1, 1]);
    // the same factors as the shared sampler's
    expect(Array.from(rfsSampler(cats, { repeatThreshold: 0.5, numClasses: 2 }).repeatFactors)).toEqual(Array.from(r));
  });
  it('epochs: seeded, stochastic rounding with expectation r_i', () => {
    const s = rfsSampler(cats, { repeatThreshold: 0.5, numClasses: 2, seed: 3 });
    expect(Array.from(s.indices(5))).toEqual(Array.from(rfsSampler(cats, { repeatThreshold: 0.5, numClasses: 2, seed: 3 }).indices(5)));
    let ones = 0;
    const E = 2000;
    for (let e = 0; e < E; e++) {
      const idx = s.indices(e);
      const c = [0, 0, 0, 0];
      idx.forEach((i) => c[i]++);
      expect([c[0], c[2], c[3]]).toEqual([1, 1, 1]);
      expect(c[1] === 1 || c[1] === 2).toBe(true);
      ones += c[1];
    }
    // mean of floor(√2) + Bernoulli(0.414): sd of the mean ≈ 0.011
    expect(Math.abs(ones / E - Math.SQRT2)).toBeLessThan(0.05);
  });
  it('bad input is named', () => {
    expect(() => repeatFactors([[0], [5]], [1, 1])).toThrow(OpError);
    expect(() => repeatFactors([], [1])).toThrow(/no images/);
  });
});

describe('EQL', () => {
  it('prior bias: −log((1 − π)/π) with their π = 0.001', () => {
    expect(priorBias()).toBeCloseTo(-Math.log(999), 12);
    const fc = new Linear(8, 4, { device: 'cpu' });
    initSigmoidClassifier(fc);
    expect(Array.from(fc.bias!.cpu).every((b) => Math.abs(b - priorBias()) < 1e-12)).toBe(true);
    // σ(b) = π
    expect(sig(priorBias())).toBeCloseTo(0.001, 12);
  });
  it('hand-worked: tail negatives of foreground proposals are dropped, background proposals keep all', () => {
    // C = 2: class 1 frequent (f = 0.5), class 2 rare (f = 1e-4 < λ)
    const freq = [0.5, 1e-4];
    const labels = [1, 0, 2];
    expect(Array.from(eqlBoxWeights(labels, freq))).toEqual([1, 0, 1, 1, 1, 1]);
    const z = [0.3, 0.7, -1.2, /**/ -0.4, 0.2, 0.9, /**/ 1.1, -0.5, 0.25];
    // row 0 (class 1): BCE(0.7, 1) + 0·BCE(−1.2, 0); row 1 (bg): BCE(0.2, 0) + BCE(0.9, 0); row 2 (class 2): BCE(−0.5, 0) + BCE(0.25, 1)
    const expected = (softplus(0.7) - 0.7 + softplus(0.2) + softplus(0.9) + softplus(-0.5) + softplus(0.25) - 0.25) / 3;
    const loss = eqlBoxLoss(cpu(z, [3, 3]), labels, freq).cpu[0];
    expect(Math.abs(loss - expected)).toBeLessThan(1e-12);
    // λ = 0 (no tail class): plain sigmoid BCE
    const plain = eqlBoxLoss(cpu(z, [3, 3]), labels, freq, 0).cpu[0];
    expect(Math.abs(plain - (expected + softplus(-1.2) / 3))).toBeLessThan(1e-12);
  });
  it('gradient check; the background column gets no gradient', async () => {
    const freq = [0.3, 1e-4, 0.002, 1e-3];
    const labels = [0, 1, 2, 4, 3];
    await gradcheck(([z]) => eqlBoxLoss(z, labels, freq), [inp([5, 5], -2, 2)]);
    const z = cpu(randomArray(25), [5, 5]).requireGrad();
    eqlBoxLoss(z, labels, freq).backward();
    const g = z.grad!.cpu;
    for (let i = 0; i < 5; i++) expect(g[i * 5]).toBe(0);
    // weights zero the rare classes' negatives on foreground rows
    expect(g[1 * 5 + 2]).toBe(0);
    expect(g[1 * 5 + 4]).toBe(0);
    const s = sigmoidBoxScores(cpu([0, 0, 1], [1, 3])).cpu;
    expect(Array.from(s)).toEqual([0, 0.5, sig(1)]);
  });
});

describe('sigmoid focal loss for the box classifier', () => {
  it('matches the fvcore formula and gradient-checks', async () => {
    const labels = [0, 2, 1, 0];
    const zv = randomArray(4 * 3, -2, 2);
    let ref = 0;
    for (let i = 0; i < 4; i++) for (let j = 1; j < 3; j++) {
      const x = zv[i * 3 + j], y = labels[i] === j ? 1 : 0, p = sig(x);
      const pt = y ? p : 1 - p;
      ref += (y ? 0.25 : 0.75) * (1 - pt) ** 2 * (softplus(x) - y * x);
    }
    expect(Math.abs(sigmoidFocalBoxLoss(cpu(zv, [4, 3]), labels).cpu[0] - ref / 2)).toBeLessThan(1e-10);
    await gradcheck(([z]) => sigmoidFocalBoxLoss(z, labels, { gamma: 2, alpha: 0.25 }), [inp([4, 3], -2, 2)]);
  });
});

describe('BAGS', () => {
  // C = 3: counts 5 (< 10), 50 ([10, 100)), 2000 (≥ 1000); the [100, 1000) bin is empty
  const g = bagsGroups([5, 50, 2000]);
  it('groups, label maps and slices as their get_cate_gs', () => {
    expect(g.numOutputs).toBe(3 + 1 + 5);
    expect(g.predSlice).toEqual([[0, 2], [2, 2], [4, 2], [6, 1], [7, 2]]);
    expect(g.label2binlabel.map((m) => Array.from(m))).toEqual([[0, 1, 1, 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 1]]);
    expect(g.bins.map((b) => Array.from(b))).toEqual([[], [1], [2], [], [3]]);
    const fc = bagsClassifier(5, g, { device: 'cpu' });
    expect(fc.weight.shape).toEqual([9, 5]);
    expect(Array.from(fc.bias!.cpu).every((b) => b === 0)).toBe(true);
    // custom thresholds: 2 bins of classes
    expect(bagsGroups([3, 30, 4], [10]).bins.map((b) => Array.from(b))).toEqual([[], [1, 3], [2]]);
  });
  const raw = [0.2, -0.3, 1.0, 0.1, -0.7, 0.4, 0.5, 0.3, -1.2, /**/ -0.5, 0.8, 0.6, -0.2, 0.0, 0.9, -0.1, 1.5, 0.2];
  const ce = (v: number[], y: number): number => -Math.log(softmaxRow(v)[y]);
  it('loss, hand-worked with every other kept', () => {
    const labels = [1, 0];
    const r0 = raw.slice(0, 9), r1 = raw.slice(9);
    // bin 0 over both rows; bin 1 (class 1 present) over both rows (row 1 is "others"); bins 2–4 have no positive
    const expected = (ce(r0.slice(0, 2), 1) + ce(r1.slice(0, 2), 0)) / 2 + (ce(r0.slice(2, 4), 1) + ce(r1.slice(2, 4), 0)) / 2;
    const loss = bagsLoss(cpu(raw, [2, 9]), labels, g, new Rng(1)).cpu[0];
    expect(Math.abs(loss - expected)).toBeLessThan(1e-12);
  });
  it('gradient check (all others kept)', async () => {
    await gradcheck(([z]) => bagsLoss(z, [3, 0, 2], g, new Rng(1)), [inp([3, 9], -2, 2)]);
  });
  it('others are sampled: int(ratio·positives) of them, averaged over the kept rows', async () => {
    // 1 positive of class 3 and 4 others whose bin-4 slices are equal: any draw of 2 gives the same loss
    const rows = [[0, 0, 0, 0, 0, 0, 0, 0.3, 1.1]];
    for (let k = 0; k < 4; k++) rows.push([0.1 * k, 0, 0, 0, 0, 0, 0, -0.4, 0.6]);
    const labels = [3, 0, 1, 0, 2];
    const flat = rows.flat();
    const bin0 = rows.reduce((a, r, i) => a + ce(r.slice(0, 2), labels[i] ? 1 : 0), 0) / 5;
    const bin1 = (ce(rows[2].slice(2, 4), 1) + 4 * ce([0, 0], 0)) / 5; // class 1 positive: 8 others wanted, 4 exist
    const bin2 = (ce(rows[4].slice(4, 6), 1) + 4 * ce([0, 0], 0)) / 5;
    const bin4 = (ce(rows[0].slice(7, 9), 1) + 2 * ce([-0.4, 0.6], 0)) / 3; // ratio 2: 2 of the 4 others
    for (const seed of [1, 2, 3]) {
      const loss = bagsLoss(cpu(flat, [5, 9]), labels, g, new Rng(seed), 2).cpu[0];
      expect(Math.abs(loss - (bin0 + bin1 + bin2 + bin4))).toBeLessThan(1e-12);
    }
    await gradcheck(([z]) => bagsLoss(z, labels, g, new Rng(5), 2), [inp([5, 9], -2, 2)]);
  });
  it('inference maps group probabilities back to classes as _merge_score', async () => {
    const s = bagsScores(cpu(raw, [2, 9]), g).cpu;
    for (let i = 0; i < 2; i++) {
      const r = raw.slice(i * 9, i * 9 + 9);
      const b0 = softmaxRow(r.slice(0, 2));
      const expected = [b0[0], b0[1] * softmaxRow(r.slice(2, 4))[1], b0[1] * softmaxRow(r.slice(4, 6))[1], b0[1] * softmaxRow(r.slice(7, 9))[1]];
      expect(relErr(Array.from(s.slice(i * 4, i * 4 + 4)), expected)).toBeLessThan(1e-12);
    }
    await gradcheck(([z]) => bagsScores(z, g), [inp([2, 9], -2, 2)]);
  });
});

describe('SimCal bi-level sampling', () => {
  // class 1 in 60 images, class 2 in 10, class 3 in 1 (image 0 holds 1 and 3)
  const cats: number[][] = Array.from({ length: 70 }, (_, i) => (i < 60 ? [1] : [2]));
  cats[0] = [1, 3, 1];
  it('draws classes uniformly, then images containing the class; seeded', () => {
    const s = simcalSampler(cats, 3, { seed: 11 });
    const d = s.draw(0, 3000);
    const perClass = [0, 0, 0, 0];
    d.categories!.forEach((c, k) => {
      perClass[c]++;
      expect(cats[d.indices[k]]).toContain(c);
    });
    expect(perClass[0]).toBe(0);
    // uniform over 3 present classes: expected 1000 each, sd ≈ 26
    for (const c of [1, 2, 3]) expect(Math.abs(perClass[c] - 1000)).toBeLessThan(120);
    expect(Array.from(s.draw(0, 50).indices)).toEqual(Array.from(simcalSampler(cats, 3, { seed: 11 }).draw(0, 50).indices));
  });
  it('level 3 keeps each draw’s category and as many background proposals, as compose_training_data', () => {
    const props = [[0, 2, 1, 2, 0], [3, 0, 0, 3], [1, 1, 0]];
    const b = simcalBatch(props, [2, 3, 2], new Rng(4));
    // positives: draw 0 proposals 1 and 3 (class 2), draw 1 proposals 0 and 3 (class 3), draw 2 none
    expect(Array.from(b.labels)).toEqual([0, 0, 0, 0, 2, 2, 3, 3]);
    expect(Array.from(b.draw.slice(4))).toEqual([0, 0, 1, 1]);
    expect(Array.from(b.proposal.slice(4))).toEqual([1, 3, 0, 3]);
    // 4 of the batch's 5 background proposals, each once
    const bg = Array.from({ length: 4 }, (_, i) => `${b.draw[i]}:${b.proposal[i]}`);
    expect(new Set(bg).size).toBe(4);
    bg.forEach((key) => {
      const [d, p] = key.split(':').map(Number);
      expect(props[d][p]).toBe(0);
    });
    // end to end with the sampler's draws
    const s = simcalSampler(cats, 3, { seed: 2 });
    const d = s.draw(0, 12);
    const labelsOf = (img: number): number[] => cats[img].map((c) => c);
    const batch = simcalBatch(Array.from(d.indices, labelsOf), d.categories!, new Rng(9));
    batch.labels.forEach((y, r) => expect(labelsOf(d.indices[batch.draw[r]])[batch.proposal[r]]).toBe(y));
    expect(() => simcalBatch([[0]], [0], new Rng(0))).toThrow(/foreground/);
  });
  it('combination: classes under the threshold take the calibrated probabilities', () => {
    const z = [0.5, 1, -1], q = [2, 0, 0.3];
    const out = simcalCombine(cpu(z, [1, 3]), cpu(q, [1, 3]), [1000, 20], 300).cpu;
    const p = softmaxRow(z), pc = softmaxRow(q);
    expect(relErr(Array.from(out), [p[0], p[1], pc[2]])).toBeLessThan(1e-12);
  });
});

describe('DisAlign box head', () => {
  it('parameters named as cvpods, and the initial head reproduces the logits', () => {
    const head = new DisAlignBoxHead(6, 3, { device: 'cpu' });
    expect(head.namedParameters().map(([n]) => n).sort()).toEqual(['confidence_layer.bias', 'confidence_layer.weight', 'logit_bias', 'logit_scale']);
    const z = cpu(randomArray(5 * 4, -3, 3), [5, 4]);
    const out = head.forward(cpu(randomArray(5 * 6), [5, 6]), z);
    expect(relErr(out.cpu, z.cpu)).toBeLessThan(1e-15);
  });
  it('ẑ = σ(x)(α ⊙ z + β) + (1 − σ(x)) z on the foreground, background column untouched', () => {
    const N = 3, D = 2, C = 2;
    const head = new DisAlignBoxHead(D, C, { device: 'cpu' });
    set(head.confidence_layer.weight, [0.5, -1]);
    set(head.confidence_layer.bias!, [0.2]);
    set(head.logit_scale, [2, 0.5]);
    set(head.logit_bias, [-1, 3]);
    const x = [1, 0, 0, 1, 2, 2], z = [0.1, 0.2, 0.3, 1, -1, 2, -0.5, 0.5, 0];
    const out = head.forward(cpu(x, [N, D]), cpu(z, [N, C + 1])).cpu;
    const ref: number[] = [];
    for (let n = 0; n < N; n++) {
      const s = sig(0.5 * x[n * 2] - x[n * 2 + 1] + 0.2);
      ref.push(z[n * 3]);
      [2, 0.5].forEach((a, j) => ref.push(s * (a * z[n * 3 + 1 + j] + [-1, 3][j]) + (1 - s) * z[n * 3 + 1 + j]));
    }
    expect(relErr(Array.from(out), ref)).toBeLessThan(1e-12);
  });
  it('gradient check of the head and of the G-RW loss', async () => {
    await gradcheck(([x, z, v, b, a, bt]) => disalignBoxLogits(x, z, v, b, a, bt), [inp([3, 4]), inp([3, 3]), inp([1, 4]), inp([1]), inp([2]), inp([2])]);
    const w = grwBoxWeights([100, 4]);
    await gradcheck(([z]) => grwBoxLoss(z, [0, 2, 1, 2], w), [inp([4, 3], -2, 2)]);
  });
  it('G-RW: (1/r)^ρ normalised to C over the foreground, background 1; weighted CE as torch', () => {
    const w = grwBoxWeights([90, 10], 1);
    // r = [0.9, 0.1]: 1/r = [1.11, 10] → normalised to sum 2
    expect(w[0]).toBe(1);
    expect(w[1]).toBeCloseTo((2 * (1 / 0.9)) / (1 / 0.9 + 10), 12);
    expect(w[2]).toBeCloseTo((2 * 10) / (1 / 0.9 + 10), 12);
    const z = [0.2, 1, -1, /**/ 1.5, 0, 0.5];
    const labels = [2, 0];
    const expected = (w[2] * -Math.log(softmaxRow(z.slice(0, 3))[2]) + w[0] * -Math.log(softmaxRow(z.slice(3))[0])) / (w[2] + w[0]);
    // the weights enter as an f32 constant tensor: agreement to f32 rounding
    expect(Math.abs(grwBoxLoss(cpu(z, [2, 3]), labels, w).cpu[0] - expected)).toBeLessThan(1e-6);
  });
});

describe('DisAlign stage 2 on a frozen detector', () => {
  it('learns on cached features + frozen logits and lifts the tail class’s recall', async () => {
    // background 300, head class 1: 300, tail class 2: 12 proposals; x = onehot(label)·2 + noise;
    // the frozen logits are biased against the tail: z = x + [0, +1.5, −2.5]
    const rng = new Rng(8);
    const counts = [300, 300, 12];
    const labels: number[] = counts.flatMap((n, c) => new Array<number>(n).fill(c));
    const N = labels.length, D = 3;
    const x = new Float32Array(N * D), z = new Float32Array(N * 3);
    const bias = [0, 1.5, -2.5];
    labels.forEach((y, i) => {
      for (let d = 0; d < D; d++) x[i * D + d] = (d === y ? 2 : 0) + 1.2 * (rng.uniform() * 2 - 1);
      for (let k = 0; k < 3; k++) z[i * 3 + k] = x[i * D + k] + bias[k];
    });
    const recall = (scores: ArrayLike<number>, c: number): number => {
      let hit = 0, n = 0;
      labels.forEach((y, i) => {
        if (y !== c) return;
        n++;
        const r = [0, 1, 2].map((k) => scores[i * 3 + k]);
        if (r.indexOf(Math.max(...r)) === c) hit++;
      });
      return hit / n;
    };
    const before = recall(z, 2);
    const xs = cpu(x, [N, D]), zs = cpu(z, [N, 3]);
    const { head, epochLosses } = await trainDisAlignBoxHead(xs, zs, labels, [300, 12], { minIterations: 300, batchSize: 128, lr: 0.1, seed: 1 });
    const after = head.forward(xs, zs).cpu;
    expect(epochLosses[epochLosses.length - 1]).toBeLessThan(epochLosses[0]);
    expect(recall(after, 2)).toBeGreaterThan(before + 0.2);
    // the background column is the frozen one
    for (let i = 0; i < N; i++) expect(after[i * 3]).toBe(zs.cpu[i * 3]);
    await expect(trainDisAlignBoxHead(xs, cpu(z.slice(0, 6), [2, 3]), labels, [300, 12])).rejects.toThrow(/same N/);
  });
});

describe('post-hoc box calibration and the cosine classifier', () => {
  it('τ-norm: τ = 0 is the plain classifier; the background row and the bias stay as trained', () => {
    const fc = new Linear(3, 3, { device: 'cpu' });
    const x = cpu(randomArray(2 * 3), [2, 3]);
    expect(relErr(tauNormBoxLogits(x, fc, 0).cpu, fc.forward(x).cpu)).toBeLessThan(1e-12);
    const W = Array.from(fc.weight.cpu), b = Array.from(fc.bias!.cpu), xv = Array.from(x.cpu);
    const out = tauNormBoxLogits(x, fc, 1).cpu;
    for (let n = 0; n < 2; n++) for (let k = 0; k < 3; k++) {
      const wk = W.slice(k * 3, k * 3 + 3);
      const norm = k === 0 ? 1 : Math.hypot(...wk);
      const ref = wk.reduce((a, w, d) => a + (w / norm) * xv[n * 3 + d], 0) + b[k];
      expect(Math.abs(out[n * 3 + k] - ref)).toBeLessThan(1e-12);
    }
  });
  it('logit adjustment subtracts τ log π from the foreground only', () => {
    const z = [1, 2, 3];
    const out = logitAdjustBoxLogits(cpu(z, [1, 3]), [30, 10], 0.5).cpu;
    expect(relErr(Array.from(out), [1, 2 - 0.5 * Math.log(0.75), 3 - 0.5 * Math.log(0.25)])).toBeLessThan(1e-7); // the prior is an f32 constant
    expect(() => logitAdjustBoxLogits(cpu(z, [1, 3]), [30, 0])).toThrow(/no training instances/);
  });
  it('cosine classifier: s·cos(x, w_k) with cvpods names and scale 20', async () => {
    const c = new CosineBoxClassifier(3, 4, { device: 'cpu' });
    expect(c.namedParameters().map(([n]) => n).sort()).toEqual(['scale', 'weight']);
    expect((c.scale as Tensor).cpu[0]).toBe(20);
    const x = randomArray(2 * 3);
    const out = c.forward(cpu(x, [2, 3])).cpu;
    const W = Array.from(c.weight.cpu);
    for (let n = 0; n < 2; n++) for (let k = 0; k < 4; k++) {
      const xn = Array.from(x.slice(n * 3, n * 3 + 3)), wk = W.slice(k * 3, k * 3 + 3);
      const cos = xn.reduce((a, v, d) => a + v * wk[d], 0) / (Math.hypot(...xn) * Math.hypot(...wk));
      expect(Math.abs(out[n * 4 + k] - 20 * cos)).toBeLessThan(1e-10);
    }
  });
  it('methods by name', () => {
    expect(detectionLtMethod('bags')).toBe('bags');
    expect(() => detectionLtMethod('nope')).toThrow(/expected one of/);
  });
  it('bad shapes name the op', () => {
    expect(() => eqlBoxLoss(cpu([1, 2], [1, 2]), [0], [0.1, 0.2])).toThrow(/eqlBoxLoss/);
    expect(() => bagsLoss(cpu([1, 2], [1, 2]), [0], bagsGroups([1]), new Rng(0))).toThrow(/bagsLoss/);
    void fixed;
  });
});

describe('parity with the official code (torch fixture: scripts/make-detection-longtail-fixtures.py)', () => {
  const { N, C, D } = fx;
  const z = (): Tensor => cpu(fx.eql.z, [N, C + 1]);
  it('EQL as eql.detectron2 eql_loss (background last there)', () => {
    expect(Math.abs(eqlBoxLoss(z(), fx.eql.labels, fx.eql.freq, fx.eql.lam).cpu[0] - fx.eql.loss)).toBeLessThan(1e-10 * Math.abs(fx.eql.loss) + 1e-12);
  });
  it('sigmoid focal as torchvision.ops.sigmoid_focal_loss / #foreground', () => {
    expect(Math.abs(sigmoidFocalBoxLoss(z(), fx.eql.labels).cpu[0] - fx.focal.loss)).toBeLessThan(1e-10);
  });
  it('BAGS groups, loss and _merge_score as GSBBoxHeadWith0', () => {
    const g = bagsGroups(fx.bags.counts);
    expect(g.label2binlabel.map((m) => Array.from(m))).toEqual(fx.bags.label2binlabel);
    expect(g.predSlice).toEqual(fx.bags.pred_slice);
    const raw = cpu(fx.bags.raw, [N, g.numOutputs]);
    expect(Math.abs(bagsLoss(raw, fx.bags.labels, g, new Rng(0), 1000).cpu[0] - fx.bags.loss)).toBeLessThan(1e-10);
    expect(relErr(bagsScores(raw, g).cpu, fx.bags.scores)).toBeLessThan(1e-12);
  });
  it('DisAlign head as cvpods DisAlignFastRCNNOutputLayers, G-RW CE as DisAlign’s GRWFastRCNNOutputs (ρ 0.8)', () => {
    const d = fx.disalign;
    const head = new DisAlignBoxHead(D, C, { device: 'cpu' });
    set(head.confidence_layer.weight, d.v);
    set(head.confidence_layer.bias!, d.b);
    set(head.logit_scale, d.alpha);
    set(head.logit_bias, d.beta);
    const out = head.forward(cpu(d.x, [N, D]), z());
    expect(relErr(out.cpu, d.logits)).toBeLessThan(1e-12);
    const w = grwBoxWeights(fx.bags.counts);
    expect(relErr(w, d.grw_weights)).toBeLessThan(1e-12);
    // the weights enter as f32 constants
    expect(Math.abs(grwBoxLoss(cpu(d.logits, [N, C + 1]), fx.eql.labels, w).cpu[0] - d.grw_loss)).toBeLessThan(1e-6);
  });
  it('the same on the WebGPU backend (f32)', async () => {
    if (!hasWebGPU()) return; // no adapter: the CPU tests above stand
    const gpu = (v: ArrayLike<number>, shape: number[]): Tensor => tensor(v, shape, { device: 'webgpu' });
    const zg = gpu(fx.eql.z, [N, C + 1]);
    const rel = (a: number, b: number): number => Math.abs(a - b) / Math.abs(b);
    expect(rel((await eqlBoxLoss(zg, fx.eql.labels, fx.eql.freq, fx.eql.lam).data())[0], fx.eql.loss)).toBeLessThan(1e-5);
    expect(rel((await sigmoidFocalBoxLoss(zg, fx.eql.labels).data())[0], fx.focal.loss)).toBeLessThan(1e-5);
    const g = bagsGroups(fx.bags.counts);
    const raw = gpu(fx.bags.raw, [N, g.numOutputs]);
    expect(rel((await bagsLoss(raw, fx.bags.labels, g, new Rng(0), 1000).data())[0], fx.bags.loss)).toBeLessThan(1e-5);
    expect(relErr(await bagsScores(raw, g).data(), fx.bags.scores)).toBeLessThan(1e-5);
    const d = fx.disalign;
    const head = new DisAlignBoxHead(D, C, { device: 'webgpu' });
    set(head.confidence_layer.weight, d.v);
    set(head.confidence_layer.bias!, d.b);
    set(head.logit_scale, d.alpha);
    set(head.logit_bias, d.beta);
    expect(relErr(await head.forward(gpu(d.x, [N, D]), zg).data(), d.logits)).toBeLessThan(1e-5);
    expect(rel((await grwBoxLoss(gpu(d.logits, [N, C + 1]), fx.eql.labels, grwBoxWeights(fx.bags.counts)).data())[0], d.grw_loss)).toBeLessThan(1e-5);
  });
});
