// The official protocols the pipeline follows (issue 17, item 1), pinned by hand computations.
import { describe, expect, it } from 'vitest';
import { tensor } from '../../index.node.js';
import { CausalNormHead, CosineHead, tdeMomentum } from '../../longtail/heads.js';
import { labelTensor, lossByName } from '../../longtail/runner.js';
import { ldamMargins } from '../../longtail/weights.js';
import { heldOutIndices, resolveHead, TDE_ALPHA } from '../../tasks/lib/pipeline.js';
import { ncm, selectTau, TAU_GRID, TauNormHead } from '../../longtail/calibration.js';
import { Linear } from '../../nn/layers.js';
import { randomArray } from '../helpers.js';

describe('LDAM runs on LDAM-DRW\u2019s NormedLinear with s = 30', () => {
  it('--loss ldam picks the normed head and refuses the others with a clear message', () => {
    expect(resolveHead('ldam', undefined)).toBe('normed');
    expect(resolveHead('ldam', 'normed')).toBe('normed');
    expect(() => resolveHead('ldam', 'linear')).toThrow("--loss ldam runs on LDAM-DRW's NormedLinear head (raw cosines, scaled by s = 30 in the loss); --head linear would give unnormalised logits ×30 (losses of 100 and more). Leave --head out or pass --head normed");
    expect(() => resolveHead('ldam', 'cosine')).toThrow(/--head cosine would give cosines already ×16, so logits ×480/);
    expect(resolveHead('ce', undefined)).toBe('linear');
    expect(resolveHead('ce', 'cosine')).toBe('cosine');
  });

  it('the loss is CE(30·(cos − Δ_y), y) on the raw cosines of the normed head, Δ_j = 0.5·(n_min/n_j)^(1/4)', async () => {
    const N = 5, D = 7, C = 4;
    const counts = [500, 100, 20, 3];
    const head = new CosineHead(D, C, { scale: 1, layout: 'columns', device: 'cpu' });
    const x = randomArray(N * D, -1, 1);
    const y = Int32Array.from([0, 3, 2, 1, 3]);
    const cos = await head.forward(tensor(x, [N, D], { device: 'cpu' })).data();
    for (const v of cos) expect(Math.abs(v)).toBeLessThanOrEqual(1 + 1e-6);
    const loss = await lossByName('ldam', { classCounts: counts })(head.forward(tensor(x, [N, D], { device: 'cpu' })), labelTensor(y, 'cpu'), 0).item();
    const delta = ldamMargins(counts, 0.5);
    expect(delta[3]).toBeCloseTo(0.5, 12);
    expect(delta[0]).toBeCloseTo(0.5 * (3 / 500) ** 0.25, 12);
    let total = 0;
    for (let i = 0; i < N; i++) {
      const z = Array.from({ length: C }, (_, j) => 30 * (cos[i * C + j] - (j === y[i] ? delta[j] : 0)));
      const m = Math.max(...z);
      total += m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0)) - z[y[i]];
    }
    expect(loss).toBeCloseTo(total / N, 4);
    // bounded by the scale: at most 30·(2 + 0.5) + log C, never the 100–200 of s·(unnormalised logits)
    expect(loss).toBeLessThan(30 * 2.5 + Math.log(C));
  });
});

describe('NCM defaults to the official cl2n features and squared-L2 distance', () => {
  it('x̃ = (x − x̄)/‖x − x̄‖, e_j = mean x̃ of class j (not re-normalised), score −‖x̃ − e_j‖²', async () => {
    const D = 3, C = 2;
    const train = [1, 0, 0, 3, 0, 0, 0, 2, 0, 0, 4, 1];
    const labels = [0, 0, 1, 1];
    const test = [2, 1, 0];
    const model = ncm(tensor(train, [4, D], { device: 'cpu' }), labels, C);
    const mean = [1, 1.5, 0.25];
    const t = (v: number[]) => {
      const c = v.map((x, d) => x - mean[d]);
      const n = Math.hypot(...c);
      return c.map((x) => x / n);
    };
    const rows = [0, 1, 2, 3].map((i) => t(train.slice(i * D, i * D + D)));
    const e = [0, 1].map((j) => [0, 1, 2].map((d) => rows.filter((_, i) => labels[i] === j).reduce((a, r) => a + r[d], 0) / 2));
    expect(Math.hypot(...e[0])).toBeLessThan(0.999); // the class means are not unit vectors
    const x = t(test);
    const expected = e.map((ej) => -ej.reduce((a, v, d) => a + (x[d] - v) ** 2, 0));
    const got = await model.logits(tensor(test, [1, D], { device: 'cpu' })).data();
    expect(got[0]).toBeCloseTo(expected[0], 5);
    expect(got[1]).toBeCloseTo(expected[1], 5);
    // the cosine variant stays available
    const cos = await ncm(tensor(train, [4, D], { device: 'cpu' }), labels, C, { metric: 'cos' }).logits(tensor(test, [1, D], { device: 'cpu' })).data();
    expect(cos[0]).toBeCloseTo(x.reduce((a, v, d) => a + v * e[0][d], 0) / Math.hypot(...e[0]), 5);
  });
});

describe('τ-norm picks τ on validation data over 0…2 in steps of 0.1', () => {
  it('the grid, and the τ with the best class-balanced accuracy, as a brute force over TauNormHead finds', async () => {
    expect(TAU_GRID).toHaveLength(21);
    expect(TAU_GRID[0]).toBe(0);
    expect(TAU_GRID[1]).toBe(0.1);
    expect(TAU_GRID[20]).toBe(2);
    // a head whose class-0 weight is long (a head class): small τ favours class 0, large τ the others
    const D = 2, C = 3;
    const fc = new Linear(D, C, { device: 'cpu' });
    const w = [4, 0.2, 0.3, 1, 0.2, -1];
    const { copyInto } = await import('../../nn/init.js');
    copyInto(fc.weight, tensor(w, [C, D], { device: 'cpu' }));
    const M = 30;
    const xs = randomArray(M * D, -1, 1);
    const ys = Int32Array.from({ length: M }, (_, i) => i % C);
    const sel = await selectTau(fc, tensor(xs, [M, D], { device: 'cpu' }), ys);
    const brute: number[] = [];
    for (const tau of TAU_GRID) {
      const z = await new TauNormHead(fc, tau).forward(tensor(xs, [M, D], { device: 'cpu' })).data();
      const right = [0, 0, 0], seen = [0, 0, 0];
      for (let i = 0; i < M; i++) {
        const p = [0, 1, 2].reduce((b, j) => (z[i * C + j] > z[i * C + b] ? j : b), 0);
        seen[ys[i]]++;
        if (p === ys[i]) right[ys[i]]++;
      }
      brute.push((right[0] / seen[0] + right[1] / seen[1] + right[2] / seen[2]) / 3);
    }
    for (let k = 0; k < brute.length; k++) expect(sel.scores[k]).toBeCloseTo(brute[k], 12);
    expect(sel.tau).toBe(TAU_GRID[brute.indexOf(Math.max(...brute))]);
  });

  it('without a validation list: a class-stratified 20% of the training set, seeded', () => {
    const labels = Int32Array.from([...Array(50).fill(0), ...Array(10).fill(1), 2, 2, 3]);
    const idx = heldOutIndices(labels, 4, 7);
    const per = [0, 0, 0, 0];
    for (const i of idx) per[labels[i]]++;
    expect(per).toEqual([10, 2, 1, 0]);
    expect(Array.from(heldOutIndices(labels, 4, 7))).toEqual(Array.from(idx));
    expect(Array.from(heldOutIndices(labels, 4, 8))).not.toEqual(Array.from(idx));
  });
});

describe('TDE', () => {
  it('α defaults per dataset as the official configs', () => {
    expect(TDE_ALPHA).toEqual({ cifar10: 1.0, cifar100: 1.5, 'imagenet-lt': 3.0, 'places-lt': 3.0 });
  });

  it('the moving-average momentum outside CIFAR: μ = 1 − 0.1·min(50·lr, 1), used by the next accumulate', async () => {
    // their run_networks.py: 0.9 while lr ≥ 0.02 (ImageNet-LT's 0.1 gives 0.9), then towards 1 as the lr anneals
    expect(tdeMomentum(0.1)).toBeCloseTo(0.9, 12);
    expect(tdeMomentum(0.02)).toBeCloseTo(0.9, 12);
    expect(tdeMomentum(0.01)).toBeCloseTo(0.95, 12);
    expect(tdeMomentum(0.002)).toBeCloseTo(0.99, 12);
    expect(tdeMomentum(0)).toBe(1);
    expect(() => tdeMomentum(-1)).toThrow(/tdeMomentum: lr must be a non-negative number, got -1/);
    // x̄ ← μ·x̄ + mean(x): [1, 2] then [3, 4] with μ = 0.9, then μ moved to 0.95 for [5, 6] (rows of 1 feature pair)
    const head = new CausalNormHead(2, 3, { device: 'cpu' });
    head.accumulate(tensor([1, 2], [1, 2], { device: 'cpu' }));
    head.accumulate(tensor([3, 4], [1, 2], { device: 'cpu' }));
    head.momentum = tdeMomentum(0.01);
    head.accumulate(tensor([5, 6], [1, 2], { device: 'cpu' }));
    const expected = [0.95 * (0.9 * 1 + 3) + 5, 0.95 * (0.9 * 2 + 4) + 6];
    const got = Array.from(await head.embed_mean.data());
    got.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 5));
  });
});

describe('cRT and LWS as classifier-balancing', () => {
  it('class-aware sampler: a reshuffled class cycle, 4 images a visit, each class cycling through its own images; max n_j · C draws', async () => {
    const { ClassAwareSampler, createSampler } = await import('../../longtail/samplers.js');
    const labels = Int32Array.from([...Array(9).fill(0), ...Array(3).fill(1), 2, 2, ...Array(5).fill(3)]);
    const s = createSampler('class-aware', labels, { seed: 3 }) as InstanceType<typeof ClassAwareSampler>;
    const e0 = s.indices(0);
    expect(e0.length).toBe(9 * 4);
    const visits: number[] = [];
    for (let k = 0; k < e0.length; k += 4) {
      const cls = new Set(Array.from(e0.subarray(k, k + 4), (i) => labels[i]));
      expect(cls.size).toBe(1); // a visit takes 4 images of one class
      visits.push(labels[e0[k]]);
    }
    // the classes come in cycles: each run of 4 visits covers every class once
    for (let k = 0; k + 4 <= visits.length; k += 4) expect(new Set(visits.slice(k, k + 4)).size).toBe(4);
    // within a class, images come in cycles of its own: class 3 (5 images) → the first 5 draws are all 5 images
    const drawsOf3 = [...s.indices(0), ...s.indices(1)].filter((i) => labels[i] === 3);
    expect(new Set(drawsOf3.slice(0, 5)).size).toBe(5);
    expect(new Set(drawsOf3.slice(5, 10)).size).toBe(5);
    // a function of (seed, epoch), also asked out of order
    const again = createSampler('class-aware', labels, { seed: 3 });
    expect(Array.from(again.indices(1))).toEqual(Array.from(s.indices(1)));
    expect(Array.from(again.indices(0))).toEqual(Array.from(e0));
    expect(Array.from(createSampler('class-aware', labels, { seed: 4 }).indices(0))).not.toEqual(Array.from(e0));
  });

  it('the scheduler steps at the start of each epoch: the last epoch trains at lr 0', async () => {
    const { stage2Lr } = await import('../../longtail/stage2.js');
    expect(stage2Lr(0.2, 10, 0, true)).toBeCloseTo(0.1 * (1 + Math.cos(Math.PI / 10)), 12);
    expect(stage2Lr(0.2, 10, 9, true)).toBe(0);
    expect(stage2Lr(0.2, 10, 0, false)).toBe(0.2);
    expect(stage2Lr(0.2, 10, 9, false)).toBeGreaterThan(0);
  });

  it('cRT drops the last partial batch, and its seed decides both its sampler and its initial weights', async () => {
    const { trainCrt } = await import('../../longtail/calibration.js');
    const N = 26, D = 3, C = 3;
    const x = tensor(randomArray(N * D, -1, 1), [N, D], { device: 'cpu' });
    const labels = Int32Array.from({ length: N }, (_, i) => (i < 16 ? 0 : i < 22 ? 1 : 2));
    const seen: number[] = [];
    const { trainOnCachedFeatures, resolveStage2Options } = await import('../../longtail/stage2.js');
    const { parameter } = await import('../../nn/module.js');
    const { full } = await import('../../kernels/creation.js');
    const { mul, sum } = await import('../../autograd/ops.js');
    const w = parameter(full([1, D], 0.1, { device: 'cpu' }));
    await trainOnCachedFeatures('t', x, labels, C, [['w', w]], (b) => {
      seen.push(b.labelValues.length);
      return sum(mul(b.features, w));
    }, resolveStage2Options('t', {}, { epochs: 1, minIterations: 0, batchSize: 20, lr: 0.1, momentum: 0, weightDecay: 0, sampler: 'class-aware', seed: 0, dropLast: true, lrAtEpochStart: true }));
    // 16 · 3 = 48 draws, batches of 20: two full batches, the 8 left over dropped
    expect(seen).toEqual([20, 20]);
    const a = await trainCrt(x, labels, C, { seed: 5, epochs: 2, batchSize: 8 });
    const b = await trainCrt(x, labels, C, { seed: 5, epochs: 2, batchSize: 8 });
    const c = await trainCrt(x, labels, C, { seed: 6, epochs: 2, batchSize: 8 });
    const wa = Array.from(await a.head.fc.weight.data()), wb = Array.from(await b.head.fc.weight.data()), wc = Array.from(await c.head.fc.weight.data());
    expect(wb).toEqual(wa);
    expect(wc).not.toEqual(wa);
  });
});

describe('DisAlign logs the G-RW weighted cross-entropy, as cvpods', () => {
  it('disalignLoss = Σ_i w_{y_i}(−log q_{y_i}) / Σ_i w_{y_i} (F.cross_entropy with weight)', async () => {
    const { disalignLoss } = await import('../../longtail/disalign.js');
    const N = 5, C = 4;
    const z = randomArray(N * C, -2, 2);
    const y = Int32Array.from([0, 3, 1, 3, 2]);
    const w = [0.2, 0.7, 1.3, 1.8];
    const loss = await disalignLoss(tensor(z, [N, C], { device: 'cpu' }), labelTensor(y, 'cpu'), y, w).item();
    let num = 0, den = 0;
    for (let i = 0; i < N; i++) {
      const row = Array.from(z.slice(i * C, i * C + C));
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
      num += w[y[i]] * (lse - row[y[i]]);
      den += w[y[i]];
    }
    expect(loss).toBeCloseTo(num / den, 5);
  });
});
