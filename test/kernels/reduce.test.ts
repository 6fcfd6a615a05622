import { describe, expect, it } from 'vitest';
import { reduce, sum, mean, max, min, argmax, argmin, hasWebGPU, tensor, OpError, type ReduceOp } from '../../kernels/index.js';
import { compare, pair, randomArray, randomInts } from '../helpers.js';

const OPS: ReduceOp[] = ['sum', 'mean', 'max', 'min'];
const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);
/** Every subset of the axes of a rank-r tensor. */
const subsets = (r: number): number[][] => Array.from({ length: 2 ** r }, (_, m) => [...Array(r).keys()].filter((d) => m & (1 << d)));

describe('reduce', () => {
  it('runs on WebGPU when required', () => {
    if (process.env.REQUIRE_WEBGPU === '1') expect(hasWebGPU()).toBe(true);
  });

  it('matches the CPU reference over every axis subset of rank-4 tensors, keepdims both ways', async () => {
    for (const shape of [[3, 1, 5, 7], [2, 9, 1, 33]]) {
      const [g, c] = pair(randomArray(size(shape), -4, 4), shape);
      for (const axes of subsets(4)) {
        for (const keepdims of [false, true]) {
          for (const op of OPS) {
            const out = reduce(op, g, axes, keepdims);
            const ref = reduce(op, c, axes, keepdims);
            expect(out.shape).toEqual(keepdims ? shape.map((s, d) => (axes.includes(d) ? 1 : s)) : shape.filter((_, d) => !axes.includes(d)));
            const err = await compare(out, ref);
            expect(err, `${op} ${shape} axes [${axes}] keepdims ${keepdims}`).toBeLessThan(op === 'max' || op === 'min' ? 1e-7 : 2e-6);
          }
        }
      }
    }
  });

  it('takes negative axes and undefined as all axes', async () => {
    const [g, c] = pair(randomArray(60), [3, 4, 5]);
    expect(await compare(sum(g, [-1, 0]), sum(c, [2, 0]))).toBeLessThan(2e-6);
    const all = sum(g);
    expect(all.shape).toEqual([]);
    expect(await compare(all, sum(c, [0, 1, 2]))).toBeLessThan(2e-6);
    expect(sum(g, undefined, true).shape).toEqual([1, 1, 1]);
  });

  it('handles long rows and columns that take several passes', async () => {
    // [outer, R, inner]: long rows (R > 8192 per chunk), wide columns (inner > 64), long thin
    // columns, and two or three separate reduced blocks (reduced one after the other)
    const cases: [number[], number[]][] = [
      [[2, 20011], [1]], [[300, 65], [0]], [[5003, 3], [0]], [[3, 1500, 2], [1]], [[7, 131, 9, 5], [1, 3]], [[3, 4, 5, 6, 7], [0, 2, 4]], [[9, 2, 700, 3], [0, 2]],
      // multiples of 4 (the vec4 f32 sums): rows over several passes, wide and long columns, a
      // row made of two merged reduced dims, and two column stages one after the other
      [[2, 131072], [1]], [[300, 64], [0]], [[5000, 8], [0]], [[3, 40, 12], [1]], [[6, 16, 1, 8], [1, 3]], [[4, 8, 5, 12], [0, 2]],
    ];
    for (const [shape, axes] of cases) {
      const [g, c] = pair(randomArray(size(shape), -2, 2), shape);
      for (const op of OPS) expect(await compare(reduce(op, g, axes), reduce(op, c, axes)), `${op} ${shape} [${axes}]`).toBeLessThan(op === 'max' || op === 'min' ? 1e-7 : 2e-6);
      for (const op of [argmax, argmin]) expect(await compare(op(g, axes[0]), op(c, axes[0])), `${op.name} ${shape} ${axes[0]}`).toBe(0);
    }
  });

  it('sums 1e6 values to within 1e-6 relative (pairwise, not a running f32 sum)', async () => {
    const [g, c] = pair(randomArray(1_000_000, 0, 1), [1_000_000]);
    const got = (await sum(g).data())[0];
    const want = (await sum(c).data())[0];
    expect(Math.abs(got - want) / want).toBeLessThan(1e-6);
    // the same along axis 0 of a column layout
    const [g2, c2] = pair(randomArray(600_000, 0, 1), [200_000, 3]);
    expect(await compare(sum(g2, 0), sum(c2, 0))).toBeLessThan(1e-6);
  });

  it('argmax/argmin match the CPU reference along every axis, keepdims both ways', async () => {
    const shape = [3, 1, 5, 7];
    const [g, c] = pair(randomArray(size(shape)), shape);
    for (let axis = -4; axis < 4; axis++) {
      for (const keepdims of [false, true]) {
        for (const op of [argmax, argmin]) {
          const out = op(g, axis, keepdims);
          expect(out.dtype).toBe('i32');
          expect(await compare(out, op(c, axis, keepdims)), `${op.name} axis ${axis}`).toBe(0);
        }
      }
    }
  });

  it('argmax/argmin return the first index on ties, also across passes', async () => {
    const [g] = pair([1, 3, 3, 0, 3], [5]);
    expect(await argmax(g, 0).item()).toBe(1);
    expect(await argmin(pair([2, 0, 1, 0], [4])[0], 0).item()).toBe(1);
    // 20000 values in {0, 1, 2}: the first 2 and the first 0 win, whichever chunk holds them
    const vals = randomInts(3 * 20000, 0, 3);
    const [gi, ci] = pair(vals, [3, 20000]);
    const [gf, cf] = pair(vals, [3, 20000], 'i32');
    for (const [x, ref] of [[gi, ci], [gf, cf]]) {
      const am = Array.from(await argmax(x, 1).data());
      expect(am).toEqual(Array.from(await argmax(ref, 1).data()));
      expect(am).toEqual([0, 1, 2].map((r) => Array.from(vals.subarray(r * 20000, (r + 1) * 20000)).indexOf(2)));
      expect(Array.from(await argmin(x, 1).data())).toEqual([0, 1, 2].map((r) => Array.from(vals.subarray(r * 20000, (r + 1) * 20000)).indexOf(0)));
    }
  });

  it('propagates NaN through max/min/sum; argmax/argmin pick the first NaN; -inf survives', async () => {
    const [g] = pair([1, NaN, 5, NaN, -2, -Infinity, -Infinity, -Infinity], [2, 4]);
    const mx = Array.from(await max(g, 1).data());
    expect(mx[0]).toBeNaN();
    expect(mx[1]).toBe(-2);
    expect(Array.from(await min(g, 1).data())).toEqual([NaN, -Infinity]);
    expect((await sum(g, 1).data())[0]).toBeNaN();
    expect(Array.from(await argmax(g, 1).data())).toEqual([1, 0]);
    expect(Array.from(await argmin(g, 1).data())).toEqual([1, 1]);
    const [ninf] = pair([-Infinity, -Infinity, -Infinity], [3]);
    expect(await max(ninf).item()).toBe(-Infinity);
    expect(await argmax(ninf, 0).item()).toBe(0);
  });

  it('reduces i32 tensors (sum, max, min, argmax)', async () => {
    const shape = [4, 9, 5];
    const [g, c] = pair(randomInts(size(shape), -1000, 1000), shape, 'i32');
    for (const axes of [undefined, 0, 1, [0, 2], 2]) {
      for (const op of ['sum', 'max', 'min'] as const) {
        const out = reduce(op, g, axes);
        expect(out.dtype).toBe('i32');
        expect(Array.from(await out.data())).toEqual(Array.from(await reduce(op, c, axes).data()));
      }
    }
    expect(Array.from(await argmax(g, 1).data())).toEqual(Array.from(await argmax(c, 1).data()));
  });

  it('handles empty tensors, empty axes and scalars', async () => {
    const [e] = pair([], [3, 0, 2]);
    expect(Array.from(await sum(e, 1).data())).toEqual([0, 0, 0, 0, 0, 0]);
    expect(sum(e, 1).shape).toEqual([3, 2]);
    expect(Array.from(await mean(e, [0, 1]).data())).toEqual([NaN, NaN]);
    expect(max(e, [0, 2]).shape).toEqual([0]); // nothing left to compute: no error
    expect(() => max(e, 1)).toThrow(/max: cannot reduce over an empty axis \(shape \[3, 0, 2\]/);
    expect(() => argmax(e, 1)).toThrow(/argmax: cannot reduce over an empty axis/);
    expect(() => min(e)).toThrow(OpError);
    const [g, c] = pair(randomArray(6), [2, 3]);
    expect(await compare(sum(g, []), c)).toBe(0); // no axes: a copy
    const [s] = pair([4.5], []);
    expect(await sum(s).item()).toBe(4.5);
    expect(await max(s, 0).item()).toBe(4.5);
    expect(await argmax(s, 0).item()).toBe(0);
  });

  it('rejects bad axes and dtypes with the op name and the shape', () => {
    const x = tensor(randomArray(24), [2, 3, 4]);
    expect(() => sum(x, 3)).toThrow(/sum: axis 3 is out of range for a tensor of rank 3/);
    expect(() => max(x, [-4])).toThrow(/max: axis -4 is out of range/);
    expect(() => sum(x, [1, -2])).toThrow(/sum: axis -2 is given twice in \[1, -2\] for a tensor of shape \[2, 3, 4\]/);
    expect(() => argmax(x, 5)).toThrow(/argmax: axis 5 is out of range/);
    expect(() => argmin(x, 0.5)).toThrow(OpError);
    const i = tensor([1, 2, 3], [3], { dtype: 'i32' });
    expect(() => mean(i)).toThrow(/mean: needs an f32 tensor, got i32 \[3\]/);
    expect(() => reduce('prod' as ReduceOp, x)).toThrow(/reduce: unknown op 'prod'/);
  });
});
