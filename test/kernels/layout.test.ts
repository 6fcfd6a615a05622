import { describe, expect, it } from 'vitest';
import { permute, transpose, slice, narrow, concat, split, pad, expand, broadcastTo, tensor, OpError, type DType, type Tensor } from '../../kernels/index.js';
import { compare, pair, randomArray, randomInts } from '../helpers.js';

const DTYPES: DType[] = ['f32', 'i32', 'u32'];
const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);

/** Random values of a dtype on both backends. */
function input(shape: number[], dtype: DType): [Tensor, Tensor] {
  const n = size(shape);
  const values = dtype === 'f32' ? randomArray(n, -5, 5) : dtype === 'i32' ? randomInts(n, -1000, 1000) : randomInts(n, 0, 4_000_000);
  return pair(values, shape, dtype);
}

/** GPU result equals the CPU reference exactly (layout ops only move values). */
async function same(g: Tensor, c: Tensor): Promise<void> {
  expect(g.shape).toEqual(c.shape);
  expect(g.dtype).toBe(c.dtype);
  expect(await compare(g, c)).toBe(0);
}

const values = async (t: Tensor): Promise<number[]> => Array.from(await t.data());

describe('permute / transpose', () => {
  it('gives known values for a small case', async () => {
    const x = tensor([0, 1, 2, 3, 4, 5], [2, 3]);
    expect(await values(transpose(x))).toEqual([0, 3, 1, 4, 2, 5]);
    const y = tensor(Array.from({ length: 24 }, (_, i) => i), [2, 3, 4]);
    const p = permute(y, [2, 0, 1]);
    expect(p.shape).toEqual([4, 2, 3]);
    // p[k, i, j] = y[i, j, k] = 12i + 4j + k
    expect(await values(p)).toEqual([0, 4, 8, 12, 16, 20, 1, 5, 9, 13, 17, 21, 2, 6, 10, 14, 18, 22, 3, 7, 11, 15, 19, 23]);
  });

  // shapes cover both GPU paths: tiled (both swapped extents >= 8) and strided, odd sizes, size-1 dims, rank 1..5
  const cases: [number[], number[]][] = [
    [[7], [0]], [[1, 1], [1, 0]], [[5, 3], [1, 0]], [[33, 17], [1, 0]], [[3, 65, 40], [0, 2, 1]], [[9, 1, 31], [2, 1, 0]],
    [[2, 3, 4, 5], [3, 1, 0, 2]], [[4, 9, 10, 3], [0, 3, 1, 2]], [[2, 12, 9, 1], [0, 2, 1, 3]], [[3, 2, 5, 1, 4], [4, 0, 3, 2, 1]],
    [[2, 3, 2, 9, 11], [1, 0, 2, 4, 3]], [[2, 16, 3, 16], [3, 1, 2, 0]], [[1, 40, 1, 9], [3, 2, 1, 0]], [[9, 3, 10], [2, 1, 0]],
    [[2, 11, 3, 12], [3, 2, 0, 1]],
  ];
  for (const dtype of DTYPES) {
    it(`matches the CPU reference (${dtype})`, async () => {
      for (const [shape, perm] of cases) {
        const [g, c] = input(shape, dtype);
        await same(permute(g, perm), permute(c, perm));
      }
    });
  }

  it('transposes large batched matrices through the tile at sizes that are not tile multiples', async () => {
    const [g, c] = input([3, 70, 45], 'f32');
    await same(transpose(g), transpose(c));
    await same(transpose(g, 0, 2), transpose(c, 0, 2));
    await same(transpose(g, -3, 1), transpose(c, -3, 1));
  });

  it('accepts negative perm entries and rejects bad ones', () => {
    const x = tensor(randomArray(6), [2, 3]);
    expect(permute(x, [-1, 0]).shape).toEqual([3, 2]);
    expect(() => permute(x, [0, 0])).toThrow(/permute: perm \[0, 0\] is not a permutation of the dims of \[2, 3\]/);
    expect(() => permute(x, [0])).toThrow(/permute: perm \[0\] needs 2 entries for shape \[2, 3\]/);
    expect(() => permute(x, [0, 2])).toThrow(OpError);
    expect(() => transpose(tensor([1, 2], [2]))).toThrow(/transpose: axis -2 is out of range for a tensor of rank 1/);
  });
});

describe('slice / narrow / split', () => {
  it('gives known values', async () => {
    const x = tensor(Array.from({ length: 12 }, (_, i) => i), [3, 4]);
    expect(await values(slice(x, [1, 1], [2, 2]))).toEqual([5, 6, 9, 10]);
    expect(await values(slice(x, [0, 2], [-1, -1]))).toEqual([2, 3, 6, 7, 10, 11]);
    expect(await values(narrow(x, 0, -1, 1))).toEqual([8, 9, 10, 11]);
  });

  const cases: [number[], number[], number[]][] = [
    [[9], [2], [5]], [[9], [0], [-1]], [[5, 7], [1, 2], [3, 4]], [[5, 7], [2, 0], [2, -1]], [[1, 6], [0, 5], [1, 1]],
    [[4, 5, 6], [1, 0, 3], [2, 5, 3]], [[3, 4, 5, 6], [0, 1, 2, 3], [3, 2, 2, 3]], [[2, 3, 1, 4, 5], [1, 1, 0, 0, 2], [1, 2, 1, 4, -1]],
    [[4, 3], [2, 0], [0, 3]],
  ];
  for (const dtype of DTYPES) {
    it(`slice matches the CPU reference (${dtype})`, async () => {
      for (const [shape, begin, sz] of cases) {
        const [g, c] = input(shape, dtype);
        await same(slice(g, begin, sz), slice(c, begin, sz));
      }
    });
  }

  it('split returns the pieces that concat joins back', async () => {
    for (const dtype of DTYPES) {
      const [g, c] = input([4, 11, 3], dtype);
      const gp = split(g, [2, 0, 5, 4], 1), cp = split(c, [2, 0, 5, 4], 1);
      expect(gp.map((t) => t.shape)).toEqual([[4, 2, 3], [4, 0, 3], [4, 5, 3], [4, 4, 3]]);
      for (let i = 0; i < gp.length; i++) await same(gp[i], cp[i]);
      expect(await values(concat(gp, 1))).toEqual(await values(g));
    }
  });

  it('rejects out-of-bounds slices', () => {
    const x = tensor(randomArray(12), [3, 4]);
    expect(() => slice(x, [2, 0], [2, 4])).toThrow(/slice: begin \[2, 0\] size \[2, 4\] is out of bounds for shape \[3, 4\] \(dim 0\)/);
    expect(() => slice(x, [0], [1])).toThrow(/slice: begin \[0\] and size \[1\] need 2 entries/);
    expect(() => slice(x, [0.5, 0], [1, 1])).toThrow(OpError);
    expect(() => narrow(x, 2, 0, 1)).toThrow(/narrow: axis 2 is out of range for a tensor of rank 2/);
    expect(() => narrow(x, 1, 3, 2)).toThrow(/narrow: start 3 length 2 is out of bounds for axis 1 of shape \[3, 4\]/);
    expect(() => split(x, [1, 1], 0)).toThrow(/split: sizes \[1, 1\] do not add up to dim 0 of shape \[3, 4\]/);
  });
});

describe('concat', () => {
  it('gives known values', async () => {
    const a = tensor([1, 2, 3, 4], [2, 2]), b = tensor([5, 6], [2, 1]);
    expect(await values(concat([a, b], 1))).toEqual([1, 2, 5, 3, 4, 6]);
    expect(await values(concat([a, tensor([7, 8], [1, 2])], 0))).toEqual([1, 2, 3, 4, 7, 8]);
  });

  const cases: [number[][], number][] = [
    [[[3], [5], [1]], 0], [[[2, 3], [2, 1], [2, 4]], 1], [[[2, 3], [1, 3]], 0], [[[2, 3, 4], [2, 5, 4]], -2],
    [[[3, 1, 2, 5], [3, 1, 2, 2], [3, 1, 2, 1]], 3], [[[2, 1, 3, 2, 3], [2, 2, 3, 2, 3]], 1], [[[4, 2], [4, 0], [4, 3]], 1],
    [[[1, 7]], 0],
  ];
  for (const dtype of DTYPES) {
    it(`matches the CPU reference (${dtype})`, async () => {
      for (const [shapes, axis] of cases) {
        const ins = shapes.map((s) => input(s, dtype));
        await same(concat(ins.map((p) => p[0]), axis), concat(ins.map((p) => p[1]), axis));
      }
    });
  }

  it('rejects mismatched inputs naming the shapes', () => {
    const a = tensor(randomArray(6), [2, 3]);
    expect(() => concat([a, tensor(randomArray(6), [3, 2])], 0)).toThrow(/concat: shapes \[2, 3\] f32, \[3, 2\] f32 differ outside axis 0/);
    expect(() => concat([a, tensor([1, 2, 3], [1, 3], { dtype: 'i32' })], 0)).toThrow(/concat: dtype mismatch/);
    expect(() => concat([a, tensor(randomArray(2), [2])], 0)).toThrow(OpError);
    expect(() => concat([a], 2)).toThrow(/concat: axis 2 is out of range for a tensor of rank 2/);
    expect(() => concat([], 0)).toThrow(/concat: needs at least one tensor/);
  });
});

describe('pad', () => {
  it('gives known values', async () => {
    const x = tensor([1, 2, 3, 4], [2, 2]);
    expect(await values(pad(x, [[1, 0], [0, 1]], 9))).toEqual([9, 9, 9, 1, 2, 9, 3, 4, 9]);
    expect(await values(pad(tensor([5], [1]), [[2, 1]], -1))).toEqual([-1, -1, 5, -1]);
  });

  const cases: [number[], [number, number][]][] = [
    [[5], [[2, 3]]], [[3, 4], [[0, 0], [1, 2]]], [[3, 4], [[1, 0], [0, 0]]], [[2, 3, 5], [[0, 0], [2, 2], [0, 0]]],
    [[1, 3, 7, 6], [[0, 0], [0, 0], [1, 1], [3, 0]]], [[2, 1, 3, 2, 5], [[1, 0], [0, 2], [0, 0], [1, 1], [0, 3]]], [[4, 4], [[0, 0], [0, 0]]],
    [[2, 0, 3], [[0, 1], [1, 1], [0, 0]]],
  ];
  for (const dtype of DTYPES) {
    it(`matches the CPU reference (${dtype})`, async () => {
      for (const [shape, pads] of cases) {
        const [g, c] = input(shape, dtype);
        const v = dtype === 'f32' ? -1.5 : 7;
        await same(pad(g, pads, v), pad(c, pads, v));
      }
    });
  }

  it('undoes with slice (the pair autograd uses)', async () => {
    const [g] = input([3, 5, 2], 'f32');
    const p = pad(g, [[1, 2], [0, 3], [2, 0]]);
    expect(await values(slice(p, [1, 0, 2], [3, 5, 2]))).toEqual(await values(g));
  });

  it('rejects bad pads', () => {
    const x = tensor(randomArray(6), [2, 3]);
    expect(() => pad(x, [[1, 1]])).toThrow(/pad: needs 2 \[before, after\] pairs for shape \[2, 3\], got 1/);
    expect(() => pad(x, [[1, 1], [-1, 0]])).toThrow(/pad: pads .* must be non-negative integers/);
    expect(() => pad(tensor([1, 2], [2], { dtype: 'i32' }), [[1, 1]], 0.5)).toThrow(/pad: value 0.5 is not an integer for a i32 tensor/);
  });
});

describe('expand / broadcastTo', () => {
  it('gives known values', async () => {
    expect(await values(expand(tensor([1, 2], [2, 1]), [2, 3]))).toEqual([1, 1, 1, 2, 2, 2]);
    expect(await values(broadcastTo(tensor([1, 2, 3], [3]), [2, 3]))).toEqual([1, 2, 3, 1, 2, 3]);
    expect(await values(expand(tensor([4], []), [2, 2]))).toEqual([4, 4, 4, 4]);
  });

  const cases: [number[], number[]][] = [
    [[1], [7]], [[3], [4, 3]], [[5, 1], [5, 6]], [[1, 1], [3, 2]], [[2, 1, 3], [4, 2, 5, 3]], [[1, 4, 1, 1], [2, 4, 3, 5]],
    [[2, 1, 3, 1, 2], [2, 3, 3, 2, 2]], [[3, 1], [-1, 4]], [[2, 3], [2, 3]], [[1, 3], [0, 3]],
  ];
  for (const dtype of DTYPES) {
    it(`matches the CPU reference (${dtype})`, async () => {
      for (const [shape, target] of cases) {
        const [g, c] = input(shape, dtype);
        await same(expand(g, target), expand(c, target));
      }
    });
  }

  it('rejects shapes that do not broadcast', () => {
    const x = tensor(randomArray(6), [2, 3]);
    expect(() => expand(x, [4, 3])).toThrow(/expand: cannot expand \[2, 3\] to \[4, 3\]: dim 0 is 2, not 1 or 4/);
    expect(() => expand(x, [3])).toThrow(/expand: cannot expand \[2, 3\] to the lower rank \[3\]/);
    expect(() => expand(x, [2.5, 3])).toThrow(/expand: invalid shape \[2.5, 3\]/);
  });
});

describe('layout ops', () => {
  it('copies contiguous ranges at an offset (the buffer-copy path) correctly', async () => {
    const [g] = input([6, 5, 4], 'f32');
    // rows 2..4 of a contiguous tensor and a concat along axis 0 are single contiguous ranges
    const s = slice(g, [2, 0, 0], [3, 5, 4]);
    const c = concat([s, g, s], 0);
    const all = await values(g);
    expect(await values(c)).toEqual([...all.slice(40, 100), ...all, ...all.slice(40, 100)]);
  });

  it('reject a disposed input naming the op', () => {
    const x = tensor(randomArray(4), [2, 2]);
    x.dispose();
    expect(() => transpose(x)).toThrow(/transpose: input of shape \[2, 2\] was used after dispose\(\)/);
    expect(() => concat([x], 0)).toThrow(/concat: input of shape \[2, 2\] was used after dispose\(\)/);
  });
});
