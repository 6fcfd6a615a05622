import { describe, expect, it } from 'vitest';
import { softmax, logSoftmax, softmaxBackward, logSoftmaxBackward, softmaxKL, hasWebGPU, tensor, OpError, type KLTarget } from '../../kernels/index.js';
import { compare, pair, randomArray, randomInts, relErr } from '../helpers.js';

const ROWS = [1, 7, 64];
const COLS = [1, 3, 257, 1000, 4099];
const LN3 = Math.log(3);

/** Rows of a random distribution with some exact zeros (0 log 0 must be 0). */
function randomProbs(N: number, C: number): Float32Array {
  const p = randomArray(N * C, -0.3, 1).map((v) => Math.max(v, 0));
  for (let i = 0; i < N; i++) {
    const row = p.subarray(i * C, (i + 1) * C);
    const s = row.reduce((a, b) => a + b, 0);
    if (s === 0) row[0] = 1;
    else row.forEach((v, c) => (row[c] = v / s));
  }
  return p;
}

describe('softmax', () => {
  it('runs on WebGPU when required', () => {
    if (process.env.REQUIRE_WEBGPU === '1') expect(hasWebGPU()).toBe(true);
  });

  it('softmax and logSoftmax match the float64 reference for rows of length 1..4099', async () => {
    for (const N of ROWS) {
      for (const C of COLS) {
        const [g, c] = pair(randomArray(N * C, -8, 8), [N, C]);
        expect(await compare(softmax(g), softmax(c)), `softmax ${N}x${C}`).toBeLessThan(2e-6);
        expect(await compare(logSoftmax(g), logSoftmax(c)), `logSoftmax ${N}x${C}`).toBeLessThan(2e-6);
      }
    }
    const [g, c] = pair(randomArray(2 * 3 * 5, -3, 3), [2, 3, 5]);
    expect(await compare(softmax(g), softmax(c))).toBeLessThan(2e-6);
  });

  it('rows sum to 1 and stay finite for logits of ±1e4 and -inf entries', async () => {
    const C = 1000;
    const vals = randomArray(3 * C, -1e4, 1e4);
    vals[C + 5] = -Infinity; // a masked entry
    const [g, c] = pair(vals, [3, C]);
    const y = await softmax(g).data();
    const ly = await logSoftmax(g).data();
    expect(y.every(Number.isFinite)).toBe(true);
    expect(Array.from(ly).filter((_, i) => i !== C + 5).every(Number.isFinite)).toBe(true);
    expect(y[C + 5]).toBe(0);
    expect(ly[C + 5]).toBe(-Infinity);
    for (let r = 0; r < 3; r++) expect(Array.from(y.subarray(r * C, (r + 1) * C)).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    expect(await compare(softmax(g), softmax(c))).toBeLessThan(2e-6);
    const lref = await logSoftmax(c).data();
    expect(relErr(Array.from(ly).filter((_, i) => i !== C + 5), Array.from(lref).filter((_, i) => i !== C + 5))).toBeLessThan(2e-6);
  });

  it('softmaxBackward and logSoftmaxBackward match the float64 reference', async () => {
    for (const [N, C] of [[1, 1], [7, 3], [64, 257], [3, 4099]]) {
      // both backends get the same forward outputs (rounded to f32), so only the backward is compared
      const x = tensor(randomArray(N * C, -5, 5), [N, C], { device: 'cpu' });
      const [gy, cy] = pair(Float32Array.from(softmax(x).cpu), [N, C]);
      const [gly, cly] = pair(Float32Array.from(logSoftmax(x).cpu), [N, C]);
      const [gd, cd] = pair(randomArray(N * C), [N, C]);
      expect(await compare(softmaxBackward(gy, gd), softmaxBackward(cy, cd)), `softmax ${N}x${C}`).toBeLessThan(2e-6);
      expect(await compare(logSoftmaxBackward(gly, gd), logSoftmaxBackward(cly, cd)), `logSoftmax ${N}x${C}`).toBeLessThan(2e-6);
    }
  });

  it('the backward references equal central finite differences (float64)', () => {
    const [N, C] = [2, 5];
    const x = Array.from(randomArray(N * C, -2, 2));
    const dy = tensor(randomArray(N * C), [N, C], { device: 'cpu' });
    for (const [fwd, bwd] of [[softmax, softmaxBackward], [logSoftmax, logSoftmaxBackward]] as const) {
      // f(x) = Σ dy ⊙ fwd(x); its gradient is bwd(fwd(x), dy)
      const f = (v: number[]): number => {
        const y = Array.from(fwd(tensor(v, [N, C], { device: 'cpu' })).cpu);
        return y.reduce((a, yi, i) => a + yi * dy.cpu[i], 0);
      };
      const analytic = bwd(fwd(tensor(x, [N, C], { device: 'cpu' })), dy).cpu;
      const h = 1e-5;
      const numeric = x.map((_, i) => {
        const up = [...x], down = [...x];
        up[i] += h;
        down[i] -= h;
        return (f(up) - f(down)) / (2 * h);
      });
      expect(relErr(Array.from(analytic), numeric), fwd.name).toBeLessThan(1e-8);
    }
  });

  it('rejects bad input', () => {
    const i = tensor([1, 2], [2], { dtype: 'i32' });
    expect(() => softmax(i)).toThrow(/softmax: needs an f32 tensor, got i32 \[2\]/);
    expect(() => logSoftmax(tensor(3))).toThrow(/logSoftmax: needs a tensor of rank >= 1/);
    const y = tensor(randomArray(6), [2, 3]);
    expect(() => softmaxBackward(y, tensor(randomArray(6), [3, 2]))).toThrow(/softmaxBackward: y \[2, 3\] and dy \[3, 2\] differ in shape/);
    expect(() => logSoftmaxBackward(y, tensor([1, 2, 3, 4, 5, 6], [2, 3], { dtype: 'i32' }))).toThrow(/logSoftmaxBackward: dy must be f32/);
  });
});

describe('softmaxKL', () => {
  it('hand-computed cases on both backends', async () => {
    for (const dev of hasWebGPU() ? (['webgpu', 'cpu'] as const) : (['cpu'] as const)) {
      const opts = { device: dev };
      const z = tensor([0, LN3, 0, LN3, 0, LN3, 0, LN3], [4, 2], opts); // softmax = [1/4, 3/4] per row
      // labels [1, 0, -1, 1] with w = [1, 1]: KL = −ln q_y; the ignored row is all zeros
      let r = softmaxKL(z, { labels: tensor([1, 0, -1, 1], [4], { ...opts, dtype: 'i32' }), weights: tensor([1, 1], [2], opts) });
      expect(Array.from(await r.loss.data()).map((v) => +v.toFixed(6))).toEqual([-Math.log(3 / 4), -Math.log(1 / 4), 0, -Math.log(3 / 4)].map((v) => +v.toFixed(6)));
      expect(Array.from(await r.grad.data()).map((v) => +v.toFixed(6))).toEqual([0.25, -0.25, -0.75, 0.75, 0, 0, 0.25, -0.25]);
      // w = [2, 0.5]: p_r = w_y δ_y, KL = w log w − w log q_y, grad = w q − w δ_y
      r = softmaxKL(z, { labels: tensor([1, 0, -1, 1], [4], { ...opts, dtype: 'i32' }), weights: tensor([2, 0.5], [2], opts) });
      const l1 = 0.5 * Math.log(0.5) - 0.5 * Math.log(0.75), l0 = 2 * Math.log(2) - 2 * Math.log(0.25);
      expect(relErr(await r.loss.data(), [l1, l0, 0, l1])).toBeLessThan(1e-6);
      expect(relErr(await r.grad.data(), [0.125, -0.125, -1.5, 1.5, 0, 0, 0.125, -0.125])).toBeLessThan(1e-6);
      // probs: p = [1/2, 1/2] → KL = ½ ln(½ / ¼) + ½ ln(½ / ¾), grad = q − p; p = [0, 1] equals label 1
      r = softmaxKL(z, { probs: tensor([0.5, 0.5, 0, 1, 0.5, 0.5, 1, 0], [4, 2], opts) });
      const lh = 0.5 * Math.log(2) + 0.5 * Math.log(2 / 3);
      expect(relErr(await r.loss.data(), [lh, -Math.log(0.75), lh, -Math.log(0.25)])).toBeLessThan(1e-6);
      expect(relErr(await r.grad.data(), [-0.25, 0.25, 0.25, -0.25, -0.25, 0.25, -0.75, 0.75])).toBeLessThan(1e-6);
      // no weights: w = 1
      r = softmaxKL(z, { labels: tensor([1, 1, 0, -5], [4], { ...opts, dtype: 'i32' }) });
      expect(relErr(await r.loss.data(), [-Math.log(0.75), -Math.log(0.75), -Math.log(0.25), 0])).toBeLessThan(1e-6);
    }
  });

  it('matches the float64 reference for labels, weighted labels and probs at many shapes', async () => {
    for (const N of ROWS) {
      for (const C of COLS) {
        const [gz, cz] = pair(randomArray(N * C, -6, 6), [N, C]);
        const labels = randomInts(N, -1, C); // includes ignored rows (-1)
        const [gl, cl] = pair(labels, [N], 'i32');
        const [gw, cw] = pair(randomArray(C, 0, 3), [C]);
        const [gp, cp] = pair(randomProbs(N, C), [N, C]);
        const targets: [string, KLTarget, KLTarget][] = [
          ['labels', { labels: gl }, { labels: cl }],
          ['weighted', { labels: gl, weights: gw }, { labels: cl, weights: cw }],
          ['probs', { probs: gp }, { probs: cp }],
        ];
        for (const [name, tg, tc] of targets) {
          const got = softmaxKL(gz, tg), ref = softmaxKL(cz, tc);
          expect(await compare(got.loss, ref.loss), `${name} loss ${N}x${C}`).toBeLessThan(1e-5);
          expect(await compare(got.grad, ref.grad), `${name} grad ${N}x${C}`).toBeLessThan(2e-6);
        }
      }
    }
  });

  it('stays finite and accurate for logits of ±1e4', async () => {
    const [N, C] = [4, 300];
    const [gz, cz] = pair(randomArray(N * C, -1e4, 1e4), [N, C]);
    const [gp, cp] = pair(randomProbs(N, C), [N, C]);
    const got = softmaxKL(gz, { probs: gp }), ref = softmaxKL(cz, { probs: cp });
    expect((await got.loss.data()).every(Number.isFinite)).toBe(true);
    expect((await got.grad.data()).every(Number.isFinite)).toBe(true);
    expect(await compare(got.loss, ref.loss)).toBeLessThan(1e-5);
    expect(await compare(got.grad, ref.grad)).toBeLessThan(2e-6);
  });

  it('the gradient equals central finite differences of the float64 loss', () => {
    const [N, C] = [3, 5];
    const z = Array.from(randomArray(N * C, -3, 3));
    const cpu = { device: 'cpu' as const };
    const targets: KLTarget[] = [
      { probs: tensor(randomProbs(N, C), [N, C], cpu) },
      { labels: tensor([4, -1, 0], [N], { ...cpu, dtype: 'i32' }), weights: tensor(randomArray(C, 0.2, 3), [C], cpu) },
    ];
    for (const target of targets) {
      const total = (v: number[]): number => Array.from(softmaxKL(tensor(v, [N, C], cpu), target).loss.cpu).reduce((a, b) => a + b, 0);
      const analytic = softmaxKL(tensor(z, [N, C], cpu), target).grad.cpu;
      const h = 1e-5;
      const numeric = z.map((_, i) => {
        const up = [...z], down = [...z];
        up[i] += h;
        down[i] -= h;
        return (total(up) - total(down)) / (2 * h);
      });
      expect(relErr(Array.from(analytic), numeric)).toBeLessThan(1e-8);
    }
  });

  it('labels >= C: ignored on the GPU without touching other rows, an error on the CPU reference', async () => {
    const [gz, cz] = pair(randomArray(3 * 4, -2, 2), [3, 4]);
    expect(() => softmaxKL(cz, { labels: tensor([0, 4, 1], [3], { dtype: 'i32', device: 'cpu' }) })).toThrow(/softmaxKL: label 4 of row 1 is out of range for 4 classes/);
    if (!hasWebGPU()) return;
    const [gl] = pair([0, 4, 1], [3], 'i32');
    const got = softmaxKL(gz, { labels: gl, weights: tensor([1, 2, 3, 4], [4]) });
    const ref = softmaxKL(cz, { labels: tensor([0, -1, 1], [3], { dtype: 'i32', device: 'cpu' }), weights: tensor([1, 2, 3, 4], [4], { device: 'cpu' }) });
    expect(await compare(got.loss, ref.loss)).toBeLessThan(1e-6);
    expect(await compare(got.grad, ref.grad)).toBeLessThan(1e-6);
    expect(Array.from((await got.grad.data()).subarray(4, 8))).toEqual([0, 0, 0, 0]);
  });

  it('rejects bad input with the op name and shapes', () => {
    const z = tensor(randomArray(6), [2, 3]);
    const labels = tensor([0, 1], [2], { dtype: 'i32' });
    expect(() => softmaxKL(z, { probs: tensor(randomArray(6), [3, 2]) })).toThrow(/softmaxKL: probs \[3, 2\] must match logits \[2, 3\]/);
    expect(() => softmaxKL(z, { probs: tensor([1, 0, 0, 1, 0, 0], [2, 3], { dtype: 'i32' }) })).toThrow(/softmaxKL: probs must be f32/);
    expect(() => softmaxKL(z, { labels: tensor([0, 1], [2]) })).toThrow(/softmaxKL: labels must be i32, got f32 \[2\]/);
    expect(() => softmaxKL(z, { labels: tensor([0, 1, 1], [3], { dtype: 'i32' }) })).toThrow(/softmaxKL: labels must have shape \[2\] for logits \[2, 3\], got \[3\]/);
    expect(() => softmaxKL(z, { labels, weights: tensor([1, 1], [2]) })).toThrow(/softmaxKL: weights must have shape \[3\] for logits \[2, 3\], got \[2\]/);
    expect(() => softmaxKL(z, { labels, weights: tensor([1, 1, 1], [3], { dtype: 'i32' }) })).toThrow(/softmaxKL: weights must be f32/);
    expect(() => softmaxKL(tensor([1, 2, 3], [3], { dtype: 'i32' }).reshape([1, 3]), { labels })).toThrow(/softmaxKL: logits must be f32/);
    expect(() => softmaxKL(tensor(randomArray(6), [6]), { labels })).toThrow(/softmaxKL: logits must have shape \[N, C\]/);
    expect(() => softmaxKL(z, { labels })).not.toThrow(OpError);
  });
});
