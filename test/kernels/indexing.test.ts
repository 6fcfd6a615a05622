import { describe, expect, it } from 'vitest';
import { gather, scatterAdd, oneHot, tensor, hasWebGPU, OpError, type DType, type Tensor } from '../../kernels/index.js';
import { compare, pair, randomArray, randomInts } from '../helpers.js';

const DTYPES: DType[] = ['f32', 'i32', 'u32'];
const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);

function input(shape: number[], dtype: DType): [Tensor, Tensor] {
  const n = size(shape);
  const values = dtype === 'f32' ? randomArray(n, -5, 5) : dtype === 'i32' ? randomInts(n, -1000, 1000) : randomInts(n, 0, 4_000_000);
  return pair(values, shape, dtype);
}

/** Indices in [0, len) (clamped: the float draw can round up to len). */
const indicesBelow = (n: number, len: number): Int32Array => randomInts(n, 0, len).map((v) => Math.min(v, len - 1));

const values = async (t: Tensor): Promise<number[]> => Array.from(await t.data());

// [x shape, axis, indices shape]: rank 1..5, size-1 dims, odd sizes, scalar indices
const CASES: [number[], number, number[]][] = [
  [[7], 0, [5]], [[7], 0, []], [[4, 5], 0, [3]], [[4, 5], 1, [2, 3]], [[1, 9], 1, [9]], [[3, 1, 6], 1, [4]],
  [[2, 7, 3, 5], 2, [1]], [[2, 7, 3, 5], -1, [6, 2]], [[2, 3, 1, 4, 5], 3, [7]], [[300, 3], 0, [257]],
];

describe('gather', () => {
  it('gives known values', async () => {
    const x = tensor([10, 11, 12, 20, 21, 22], [2, 3]);
    const rows = gather(x, tensor([1, 1, 0], [3], { dtype: 'i32' }), 0);
    expect(rows.shape).toEqual([3, 3]);
    expect(await values(rows)).toEqual([20, 21, 22, 20, 21, 22, 10, 11, 12]);
    const cols = gather(x, tensor([[2], [0]], undefined, { dtype: 'i32' }), 1);
    expect(cols.shape).toEqual([2, 2, 1]);
    expect(await values(cols)).toEqual([12, 10, 22, 20]);
  });

  for (const dtype of DTYPES) {
    it(`matches the CPU reference (${dtype})`, async () => {
      for (const [shape, axis, idxShape] of CASES) {
        const a = axis < 0 ? axis + shape.length : axis;
        const [g, c] = input(shape, dtype);
        const [gi, ci] = pair(indicesBelow(size(idxShape), shape[a]), idxShape, 'i32');
        const out = gather(g, gi, axis);
        expect(out.shape).toEqual([...shape.slice(0, a), ...idxShape, ...shape.slice(a + 1)]);
        expect(await compare(out, gather(c, ci, axis))).toBe(0);
      }
    });
  }

  it('out-of-range indices: the CPU throws naming the index and axis, the GPU writes NaN (f32) or 0 (integers)', async () => {
    const [, cx] = pair(randomArray(6), [2, 3]);
    const [, ci] = pair([0, 3], [2], 'i32');
    expect(() => gather(cx, ci, 1)).toThrow(/gather: index 3 is out of range for axis 1 of length 3 \(shape \[2, 3\]\)/);
    expect(() => gather(cx, tensor([-1], [1], { dtype: 'i32', device: 'cpu' }), 0)).toThrow(/gather: index -1 is out of range for axis 0 of length 2/);
    if (!hasWebGPU()) return;
    const x = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const idx = tensor([2, 3, -1], [3], { dtype: 'i32' });
    expect(await values(gather(x, idx, 1))).toEqual([3, NaN, NaN, 6, NaN, NaN]);
    expect(await values(gather(tensor([1, 2, 3], [3], { dtype: 'i32' }), idx, 0))).toEqual([3, 0, 0]);
    expect(await values(gather(tensor([1, 2, 3], [3], { dtype: 'u32' }), idx, 0))).toEqual([3, 0, 0]);
  });

  it('rejects bad input', () => {
    const x = tensor(randomArray(6), [2, 3]);
    expect(() => gather(x, tensor([0], [1]), 0)).toThrow(/gather: indices must be i32, got f32 \[1\]/);
    expect(() => gather(x, tensor([0], [1], { dtype: 'i32' }), 2)).toThrow(/gather: axis 2 is out of range for a tensor of rank 2/);
  });
});

describe('scatterAdd', () => {
  it('gives known values, accumulating repeated indices', async () => {
    const base = tensor([1, 1, 1, 1], [4]);
    const out = scatterAdd(base, tensor([3, 0, 3, 3], [4], { dtype: 'i32' }), tensor([1, 2, 3, 4], [4]), 0);
    expect(await values(out)).toEqual([3, 1, 1, 9]);
  });

  for (const dtype of DTYPES) {
    it(`matches the CPU reference (${dtype})`, async () => {
      for (const [shape, axis, idxShape] of CASES) {
        const a = axis < 0 ? axis + shape.length : axis;
        const srcShape = [...shape.slice(0, a), ...idxShape, ...shape.slice(a + 1)];
        const [gb, cb] = input(shape, dtype);
        const [gs, cs] = input(srcShape, dtype);
        // many repeats: half the range so some rows get several contributions and some none
        const [gi, ci] = pair(indicesBelow(size(idxShape), Math.ceil(shape[a] / 2)), idxShape, 'i32');
        const err = await compare(scatterAdd(gb, gi, gs, axis), scatterAdd(cb, ci, cs, axis));
        if (dtype === 'f32') expect(err).toBeLessThan(1e-6);
        else expect(err).toBe(0);
      }
    });
  }

  it('is the adjoint of gather: <gather(x, i), y> = <x, scatterAdd(0, i, y)>', async () => {
    const x = randomArray(5 * 4), y = randomArray(5 * 9);
    const idx = tensor(indicesBelow(9, 4), [9], { dtype: 'i32' });
    const gx = await values(gather(tensor(x, [5, 4]), idx, 1));
    const sy = await values(scatterAdd(tensor(new Float32Array(20), [5, 4]), idx, tensor(y, [5, 9]), 1));
    const lhs = gx.reduce((s, v, i) => s + v * y[i], 0);
    const rhs = sy.reduce((s, v, i) => s + v * x[i], 0);
    expect(Math.abs(lhs - rhs)).toBeLessThan(1e-4 * (1 + Math.abs(lhs)));
  });

  it('is bit-identical across runs (no float atomics)', async () => {
    const [gb] = input([50, 8], 'f32');
    const [gs] = input([3000, 8], 'f32');
    const [gi] = pair(indicesBelow(3000, 50), [3000], 'i32');
    const first = new Uint32Array((await scatterAdd(gb, gi, gs, 0).data()).buffer);
    for (let run = 0; run < 3; run++) {
      expect(new Uint32Array((await scatterAdd(gb, gi, gs, 0).data()).buffer)).toEqual(first);
    }
  });

  it('out-of-range indices: the CPU throws, the GPU drops them', async () => {
    const [gb, cb] = pair([0, 0, 0], [3]);
    const [gi, ci] = pair([1, 5, -2], [3], 'i32');
    const [gs, cs] = pair([1, 2, 4], [3]);
    expect(() => scatterAdd(cb, ci, cs, 0)).toThrow(/scatterAdd: index 5 is out of range for axis 0 of length 3/);
    if (hasWebGPU()) expect(await values(scatterAdd(gb, gi, gs, 0))).toEqual([0, 1, 0]);
  });

  it('rejects bad input naming the shapes', () => {
    const base = tensor(randomArray(6), [2, 3]);
    const idx = tensor([0, 1], [2], { dtype: 'i32' });
    expect(() => scatterAdd(base, idx, tensor(randomArray(6), [2, 3]), 1)).toThrow(/scatterAdd: src \[2, 3\] must have shape \[2, 2\] \(base \[2, 3\], indices \[2\], axis 1\)/);
    expect(() => scatterAdd(base, idx, tensor([1, 2, 3, 4], [2, 2], { dtype: 'i32' }), 1)).toThrow(/scatterAdd: dtype mismatch/);
    expect(() => scatterAdd(base, idx, tensor(randomArray(4), [2, 2]), -3)).toThrow(OpError);
  });
});

describe('oneHot', () => {
  it('gives known values with on/off', async () => {
    const labels = tensor([2, 0], [2], { dtype: 'i32' });
    expect(await values(oneHot(labels, 3))).toEqual([0, 0, 1, 1, 0, 0]);
    expect(await values(oneHot(labels, 3, { on: 0.9, off: 0.05 }))).toEqual([0.05, 0.05, 0.9, 0.9, 0.05, 0.05].map(Math.fround));
  });

  it('matches the CPU reference at several shapes', async () => {
    for (const [shape, classes] of [[[1], 1], [[7], 5], [[3, 4], 10], [[2, 1, 5], 257]] as [number[], number][]) {
      const [g, c] = pair(indicesBelow(size(shape), classes), shape, 'i32');
      const out = oneHot(g, classes, { on: 2, off: -1 });
      expect(out.shape).toEqual([...shape, classes]);
      expect(await compare(out, oneHot(c, classes, { on: 2, off: -1 }))).toBe(0);
    }
  });

  it('out-of-range labels: the CPU throws, the GPU writes a row of off', async () => {
    const [g, c] = pair([1, 4, -1], [3], 'i32');
    expect(() => oneHot(c, 4)).toThrow(/oneHot: label 4 is out of range for 4 classes \(labels \[3\]\)/);
    if (hasWebGPU()) expect(await values(oneHot(g, 4))).toEqual([0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(() => oneHot(tensor([1, 2], [2]), 3)).toThrow(/oneHot: labels must be i32, got f32 \[2\]/);
    expect(() => oneHot(c, 0)).toThrow(/oneHot: numClasses must be a positive integer, got 0/);
  });
});
