import { describe, expect, it } from 'vitest';
import { sort, argsort, topk, radixSortPairs, exclusiveScanU32, tensor, hasWebGPU, OpError, type Tensor } from '../../kernels/index.js';
import { pair, randomArray, randomInts } from '../helpers.js';

const values = async (t: Tensor): Promise<number[]> => Array.from(await t.data());
const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);

/** Values with many ties (small integer range), NaNs, ±0 and ±inf sprinkled in. */
function tricky(n: number): Float32Array {
  const a = Float32Array.from(randomInts(n, -4, 4));
  const r = randomArray(n, 0, 1);
  for (let i = 0; i < n; i++) {
    if (r[i] < 0.05) a[i] = NaN;
    else if (r[i] < 0.08) a[i] = -0;
    else if (r[i] < 0.1) a[i] = Infinity;
    else if (r[i] < 0.12) a[i] = -Infinity;
    else if (r[i] > 0.7) a[i] += r[i];
  }
  return a;
}

async function same(gpu: { values: Tensor; indices: Tensor }, cpu: { values: Tensor; indices: Tensor }): Promise<void> {
  expect(gpu.values.shape).toEqual(cpu.values.shape);
  expect(await values(gpu.indices)).toEqual(await values(cpu.indices));
  const gv = await values(gpu.values), cv = (await values(cpu.values)).map(Math.fround);
  expect(gv.map((v) => (Object.is(v, -0) ? 0 : v))).toEqual(cv.map((v) => (Object.is(v, -0) ? 0 : v)));
}

// [shape, axis]: size-1 dims, odd sizes, rows longer than one block (256), rows of length 1
const CASES: [number[], number][] = [
  [[1], 0], [[7], 0], [[3, 1], 1], [[1, 1], -1], [[5, 257], 1], [[2, 3, 31], 1], [[4, 6, 1], 0], [[1, 1000], -1], [[9, 2, 5], 2],
];

describe('sort', () => {
  it('gives known values: stable ties, NaN above +inf, -0 = +0', async () => {
    const x = tensor([3, 1, NaN, 1, -Infinity, 0, -0, Infinity, 3], [9]);
    const up = sort(x);
    expect(await values(up.indices)).toEqual([4, 5, 6, 1, 3, 0, 8, 7, 2]);
    expect(await values(up.values)).toEqual([-Infinity, 0, -0, 1, 1, 3, 3, Infinity, NaN]);
    const down = sort(x, { descending: true });
    expect(await values(down.indices)).toEqual([2, 7, 0, 8, 1, 3, 5, 6, 4]);
    expect(await values(argsort(tensor([2, 2, 1, 2], [4]), { descending: true }))).toEqual([0, 1, 3, 2]);
  });

  for (const descending of [false, true]) {
    it(`matches the CPU reference exactly (${descending ? 'descending' : 'ascending'}), ties and NaN included`, async () => {
      for (const [shape, axis] of CASES) {
        const [g, c] = pair(tricky(size(shape)), shape);
        await same(sort(g, { axis, descending }), sort(c, { axis, descending }));
      }
    });
  }

  it('carries a payload', async () => {
    const shape = [3, 40];
    const [g, c] = pair(tricky(120), shape);
    const [gp, cp] = pair(randomInts(120, -1000, 1000), shape, 'i32');
    await same(sort(g, { payload: gp, descending: true }), sort(c, { payload: cp, descending: true }));
  });

  it('sorts long rows (4000 and 20000) exactly like the CPU reference, deterministically', async () => {
    for (const n of [4000, 20001]) {
      const [g, c] = pair(Float32Array.from(randomInts(n, 0, 50)), [n]);
      const first = sort(g, { descending: true });
      await same(first, sort(c, { descending: true }));
      expect(await values(sort(g, { descending: true }).indices)).toEqual(await values(first.indices));
    }
  });

  it('rejects bad input naming the op and shapes', () => {
    expect(() => sort(tensor([1, 2], [2], { dtype: 'i32' }))).toThrow(/sort: needs an f32 tensor, got i32 \[2\]/);
    expect(() => sort(tensor(1, []))).toThrow(OpError);
    expect(() => sort(tensor([1, 2], [2]), { axis: 1 })).toThrow(/sort: axis 1 is out of range/);
    expect(() => sort(tensor([1, 2], [2]), { payload: tensor([1], [1], { dtype: 'i32' }) })).toThrow(/sort: payload must be i32 of shape \[2\]/);
  });
});

describe('topk', () => {
  it('gives known values (largest and smallest, ties to the lower index)', async () => {
    const x = tensor([[1, 5, 5, 2, NaN], [0, 0, 0, 0, 0]], [2, 5]);
    const t = topk(x, 3);
    expect(t.values.shape).toEqual([2, 3]);
    expect(await values(t.indices)).toEqual([4, 1, 2, 0, 1, 2]);
    const s = topk(x, 2, { largest: false });
    expect(await values(s.indices)).toEqual([0, 3, 0, 1]);
    expect(await values(s.values)).toEqual([1, 2, 0, 0]);
  });

  it('matches the CPU reference for k from 0 to n on odd shapes and axes', async () => {
    for (const [shape, axis, k] of [[[7], 0, 3], [[3, 300], 1, 17], [[5, 4, 3], 1, 4], [[2, 9], 0, 1], [[1], 0, 1], [[6, 5], 1, 0], [[1, 5], -1, 5]] as [number[], number, number][]) {
      const [g, c] = pair(tricky(size(shape)), shape);
      for (const largest of [true, false]) await same(topk(g, k, { axis, largest }), topk(c, k, { axis, largest }));
    }
  });

  it('rejects k out of range', () => {
    expect(() => topk(tensor([1, 2, 3], [3]), 4)).toThrow(/topk: k = 4 must be an integer in \[0, 3\]/);
  });
});

describe('radix sort primitives', () => {
  it('radixSortPairs is stable and groups rows', async () => {
    const n = 700;
    const keys = Uint32Array.from(randomInts(n, 0, 9));
    const pos = Int32Array.from({ length: n }, (_, i) => i);
    const [gk, ck] = pair(keys, [n], 'u32');
    const [gv, cv] = pair(pos, [n], 'i32');
    const g = radixSortPairs(gk, gv, { keyBits: 4, rows: 7, rowLen: 100 });
    const c = radixSortPairs(ck, cv, { keyBits: 4, rows: 7, rowLen: 100 });
    expect(await values(g.vals)).toEqual(await values(c.vals));
    expect(await values(g.keys)).toEqual(await values(c.keys));
    const v = await values(c.vals);
    for (let i = 1; i < n; i++) {
      const [a, b] = [v[i - 1], v[i]];
      expect(Math.floor(a / 100) < Math.floor(b / 100) || (Math.floor(a / 100) === Math.floor(b / 100) && (keys[a] < keys[b] || (keys[a] === keys[b] && a < b)))).toBe(true);
    }
  });

  it('exclusiveScanU32 gives prefix sums', async () => {
    if (!hasWebGPU()) return;
    for (const T of [1, 5, 256, 1000]) {
      const v = Uint32Array.from(randomInts(T, 0, 100));
      const t = tensor(v, [T], { dtype: 'u32' });
      exclusiveScanU32(t);
      const want: number[] = [];
      let acc = 0;
      for (const x of v) { want.push(acc); acc += x; }
      expect(await values(t)).toEqual(want);
    }
  });
});
