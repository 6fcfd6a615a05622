// The official protocols the pipeline follows (issue 17, item 1), pinned by hand computations.
import { describe, expect, it } from 'vitest';
import { tensor } from '../../index.node.js';
import { CosineHead } from '../../longtail/heads.js';
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
});
