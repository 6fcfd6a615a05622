import { describe, expect, it } from 'vitest';
import { batchNormApply, batchNormBackward, batchNormStats, runtime, tensor, type Tensor } from '../../kernels/index.js';
import { compare, pair, randomArray, relErr } from '../helpers.js';

const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);

/** Float64 mean and biased variance of each channel, straight from the definition. */
function channelStats(values: ArrayLike<number>, shape: number[]): { mean: number[]; var: number[] } {
  const [N, C] = shape;
  const S = size(shape.slice(2));
  const mean: number[] = [], variance: number[] = [];
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let k = 0; k < S; k++) s += values[(n * C + c) * S + k];
    const m = s / (N * S);
    let q = 0;
    for (let n = 0; n < N; n++) for (let k = 0; k < S; k++) q += (values[(n * C + c) * S + k] - m) ** 2;
    mean.push(m);
    variance.push(q / (N * S));
  }
  return { mean, var: variance };
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));

describe('batch norm kernels', () => {
  // N = 1, C = 1, odd spatial sizes (M = 2 is left out: its dx is 0 up to rounding), rank 2, and channels of more than one chunk (4096 elements)
  const SHAPES = [[1, 1, 1, 3], [2, 3, 5, 7], [1, 1, 3, 3], [6, 5], [3, 2, 1, 1], [2, 3, 50, 51], [1, 4, 3, 5, 7], [2, 3, 4, 5], [3, 2, 8], [2, 1, 96, 96]]; // the last three: spatial sizes that are multiples of 4 (vec4 kernels), the last over two vec4 chunks

  for (const shape of SHAPES) {
    it(`statistics, normalisation and backward of ${JSON.stringify(shape)} match the CPU`, async () => {
      const C = shape[1];
      const values = randomArray(size(shape), -2, 3);
      const [gx, cx] = pair(values, shape);
      const gs = batchNormStats(gx), cs = batchNormStats(cx);
      const exact = channelStats(values, shape);
      expect(relErr(cs.mean.cpu, exact.mean)).toBeLessThan(1e-12);
      expect(relErr(cs.var.cpu, exact.var)).toBeLessThan(1e-12);
      // the mean can be near 0: measure its error against the data's scale (|x| <= 3)
      expect(maxAbsDiff(await gs.mean.data(), cs.mean.cpu)).toBeLessThan(3e-6);
      expect(await compare(gs.var, cs.var)).toBeLessThan(1e-5);
      const [gw, cw] = pair(randomArray(C, 0.5, 1.5), [C]);
      const [gb, cb] = pair(randomArray(C), [C]);
      for (const [w, b] of [[true, true], [false, false], [true, false]]) {
        const gy = batchNormApply(gx, gs.mean, gs.var, w ? gw : null, b ? gb : null, 1e-5);
        const cy = batchNormApply(cx, cs.mean, cs.var, w ? cw : null, b ? cb : null, 1e-5);
        expect(await compare(gy, cy), `weight ${w} bias ${b}`).toBeLessThan(1e-5);
      }
      const [gg, cg] = pair(randomArray(size(shape)), shape);
      for (const training of [true, false]) {
        for (const weight of [true, false]) {
          const opts = { training, paramGrads: true };
          const gr = batchNormBackward(gg, gx, gs.mean, gs.var, weight ? gw : null, 1e-5, opts);
          const cr = batchNormBackward(cg, cx, cs.mean, cs.var, weight ? cw : null, 1e-5, opts);
          const what = `training ${training}, weight ${weight}`;
          expect(await compare(gr.dx, cr.dx), `dx, ${what}`).toBeLessThan(1e-4);
          expect(await compare(gr.dweight!, cr.dweight!), `dweight, ${what}`).toBeLessThan(1e-5);
          expect(await compare(gr.dbias!, cr.dbias!), `dbias, ${what}`).toBeLessThan(1e-5);
        }
      }
    });
  }

  it('normalises by hand: x = [1, 2, 3, 4] in one channel, and moves the running statistics', async () => {
    const [x] = pair([1, 2, 3, 4], [4, 1]);
    const [rm] = pair([0], [1]);
    const [rv] = pair([1], [1]);
    const s = batchNormStats(x, { mean: rm, var: rv, momentum: 0.1 });
    expect(await s.mean.item()).toBe(2.5);
    expect(await s.var.item()).toBe(1.25);
    // running: 0.9·0 + 0.1·2.5 and 0.9·1 + 0.1·(5/3), the unbiased variance
    expect(await rm.item()).toBeCloseTo(0.25, 6);
    expect(await rv.item()).toBeCloseTo(0.9 + 0.5 / 3, 6);
    const y = Array.from(await batchNormApply(x, s.mean, s.var, null, null, 0).data());
    const r = 1 / Math.sqrt(1.25);
    y.forEach((v, i) => expect(v).toBeCloseTo((i + 1 - 2.5) * r, 6));
  });

  it('updates the running statistics in place on the device without reading back', async () => {
    const shape = [3, 4, 5, 6];
    const values = randomArray(size(shape), -1, 2);
    const [gx, cx] = pair(values, shape);
    const init = randomArray(4, 0, 1), initVar = randomArray(4, 0.5, 1.5);
    const [grm, crm] = pair(init, [4]);
    const [grv, crv] = pair(initVar, [4]);
    runtime().flush();
    const before = runtime().submits;
    for (let step = 0; step < 3; step++) {
      batchNormStats(gx, { mean: grm, var: grv, momentum: 0.3 });
      batchNormStats(cx, { mean: crm, var: crv, momentum: 0.3 });
    }
    expect(runtime().submits).toBe(before);
    expect(await compare(grm, crm)).toBeLessThan(1e-6);
    expect(await compare(grv, crv)).toBeLessThan(1e-5);
  });

  it('keeps the variance accurate over 10^6 elements per channel far from zero', async () => {
    const shape = [4, 1, 500, 500];
    const values = randomArray(size(shape), 999, 1001);
    const [gx] = pair(values, shape);
    const exact = channelStats(values, shape);
    const s = batchNormStats(gx);
    expect(relErr(await s.mean.data(), exact.mean)).toBeLessThan(1e-6);
    // E[x²] − E[x]² in f32 would lose every digit here (x² ≈ 10^6, var ≈ 1/3)
    expect(relErr(await s.var.data(), exact.var)).toBeLessThan(1e-4);
  });

  it('rejects bad input with the op name and shapes', () => {
    const x = tensor(new Float32Array(2 * 3 * 2 * 2), [2, 3, 2, 2]);
    const c3 = tensor(new Float32Array(3), [3]);
    const c4 = tensor(new Float32Array(4), [4]);
    const bad: [() => Tensor | object, RegExp][] = [
      [() => batchNormStats(tensor([1, 2, 3], [3])), /batchNormStats: expects an input \[N, C, \.\.\.\] of rank >= 2, got \[3\]/],
      [() => batchNormApply(x, c3, c3, c4, null, 1e-5), /batchNorm: weight must be an f32 vector of 3 values \(one per channel of input \[2, 3, 2, 2\]\), got f32 \[4\]/],
      [() => batchNormStats(x, { mean: c4, var: c3, momentum: 0.1 }), /batchNormStats: running mean must be .* got f32 \[4\]/],
      [() => batchNormStats(tensor([1, 2], [1, 2]), { mean: c3, var: c3, momentum: 0.1 }), /batchNormStats: running mean/],
      [() => batchNormStats(tensor([1, 2, 3], [1, 3]), { mean: c3, var: c3, momentum: 0.1 }), /more than 1 value per channel, got input \[1, 3\]/],
      [() => batchNormBackward(c3.reshape([1, 3]), x, c3, c3, null, 1e-5, { training: true, paramGrads: false }), /batchNormBackward: gradient \[1, 3\] does not match input \[2, 3, 2, 2\]/],
    ];
    for (const [f, re] of bad) expect(f).toThrow(re);
  });
});
