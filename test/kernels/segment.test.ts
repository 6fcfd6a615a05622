import { describe, expect, it } from 'vitest';
import {
  buildCSR, segmentSum, segmentSumBackward, segmentMax, segmentMaxBackward, segmentSoftmax, segmentSoftmaxBackward,
  gather, scatterAdd, tensor, hasWebGPU, OpError, type Tensor,
} from '../../kernels/index.js';
import { compare, pair, randomArray, randomInts } from '../helpers.js';

const values = async (t: Tensor): Promise<number[]> => Array.from(await t.data());
const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);
const idsBelow = (n: number, S: number): Int32Array => randomInts(n, 0, S).map((v) => Math.min(v, S - 1));

/** Random CSR offsets for nnz rows in S segments, with empty segments. */
function randomOffsets(nnz: number, S: number): Int32Array {
  const cuts = idsBelow(S - 1, nnz + 1).sort();
  return Int32Array.from([0, ...cuts, nnz]);
}

// [nnz, S, trailing dims]: size-1, odd sizes, empty segments, more segments than rows
const CASES: [number, number, number[]][] = [[1, 1, []], [7, 3, [1]], [13, 5, [3]], [40, 17, [2, 3]], [5, 9, [4]], [300, 7, [5]], [0, 2, [3]]];

describe('buildCSR', () => {
  it('gives known values: stable order within a segment', async () => {
    const { offsets, perm } = buildCSR(tensor([2, 0, 2, 1, 0, 2], [6], { dtype: 'i32' }), 4);
    expect(await values(offsets)).toEqual([0, 2, 3, 6, 6]);
    expect(await values(perm)).toEqual([1, 4, 3, 0, 2, 5]);
  });

  it('matches the CPU counting sort at odd sizes, and is stable and deterministic', async () => {
    for (const [n, S] of [[1, 1], [9, 4], [257, 3], [1000, 600], [3000, 50], [5, 100000]]) {
      const [g, c] = pair(idsBelow(n, S), [n], 'i32');
      const gc = buildCSR(g, S), cc = buildCSR(c, S);
      expect(await values(gc.offsets)).toEqual(await values(cc.offsets));
      expect(await values(gc.perm)).toEqual(await values(cc.perm));
      expect(await values(buildCSR(g, S).perm)).toEqual(await values(gc.perm));
    }
  });

  it('out-of-range ids: the CPU throws naming the row, the GPU drops them after offsets[S]', async () => {
    const [g, c] = pair([1, 5, -1, 0], [4], 'i32');
    expect(() => buildCSR(c, 3)).toThrow(/buildCSR: segment id 5 of row 1 is out of range for 3 segments/);
    expect(() => buildCSR(tensor([0], [1]), 3)).toThrow(/buildCSR: index must be i32/);
    if (!hasWebGPU()) return;
    const { offsets, perm } = buildCSR(g, 3);
    expect(await values(offsets)).toEqual([0, 1, 2, 2]);
    expect((await values(perm)).slice(0, 2)).toEqual([3, 0]);
  });
});

describe('segment reductions', () => {
  it('give known values', async () => {
    const v = tensor([1, 5, 3, 3, -2, 7], [6, 1]);
    const off = tensor([0, 2, 2, 6], [4], { dtype: 'i32' });
    expect(await values(segmentSum(v, off))).toEqual([6, 0, 11]);
    const m = segmentMax(v, off);
    expect(await values(m.values)).toEqual([5, 0, 7]);
    expect(await values(m.argmax)).toEqual([1, -1, 5]);
    const ties = segmentMax(tensor([3, 3, 1], [3]), tensor([0, 3], [2], { dtype: 'i32' }));
    expect(await values(ties.argmax)).toEqual([0]);
    const sm = await values(segmentSoftmax(tensor([0, Math.log(3), 5], [3]), tensor([0, 2, 3], [3], { dtype: 'i32' })));
    expect(sm[0]).toBeCloseTo(0.25, 6);
    expect(sm[1]).toBeCloseTo(0.75, 6);
    expect(sm[2]).toBeCloseTo(1, 6);
    const perm = tensor([2, 0, 1], [3], { dtype: 'i32' });
    expect(await values(segmentSum(tensor([1, 10, 100], [3]), tensor([0, 1, 3], [3], { dtype: 'i32' }), { perm }))).toEqual([100, 11]);
  });

  it('match the CPU reference (sum, max, softmax and their backwards), with and without perm', async () => {
    for (const [nnz, S, trail] of CASES) {
      const shape = [nnz, ...trail];
      const [gv, cv] = pair(randomArray(size(shape), -3, 3), shape);
      const [go, co] = pair(randomOffsets(nnz, S), [S + 1], 'i32');
      const permArr = Int32Array.from({ length: nnz }, (_, i) => i);
      for (let i = nnz - 1; i > 0; i--) { const j = idsBelow(1, i + 1)[0]; [permArr[i], permArr[j]] = [permArr[j], permArr[i]]; }
      const [gp, cp] = pair(permArr, [nnz], 'i32');
      const segShape = [S, ...trail];
      const [gg, cg] = pair(randomArray(size(segShape)), segShape);
      for (const usePerm of [false, true]) {
        const go2 = usePerm ? { perm: gp } : {}, co2 = usePerm ? { perm: cp } : {};
        expect(await compare(segmentSum(gv, go, go2), segmentSum(cv, co, co2))).toBeLessThan(1e-6);
        const gm = segmentMax(gv, go, go2), cm = segmentMax(cv, co, co2);
        expect(await compare(gm.values, cm.values)).toBe(0);
        expect(await values(gm.argmax)).toEqual(await values(cm.argmax));
        expect(await compare(segmentSumBackward(gg, go, nnz, go2), segmentSumBackward(cg, co, nnz, co2))).toBe(0);
        expect(await compare(segmentMaxBackward(gg, gm.argmax, nnz), segmentMaxBackward(cg, cm.argmax, nnz))).toBe(0);
      }
      const gy = segmentSoftmax(gv, go), cy = segmentSoftmax(cv, co);
      expect(await compare(gy, cy)).toBeLessThan(1e-6);
      const [gd, cd] = pair(randomArray(size(shape)), shape);
      expect(await compare(segmentSoftmaxBackward(gy, gd, go), segmentSoftmaxBackward(cy, cd, co))).toBeLessThan(1e-5);
    }
  });

  it('segmentMax propagates NaN (the first NaN wins)', async () => {
    const m = segmentMax(tensor([1, NaN, 5, NaN], [4]), tensor([0, 4], [2], { dtype: 'i32' }));
    expect(await values(m.argmax)).toEqual([1]);
    expect(Number.isNaN((await values(m.values))[0])).toBe(true);
  });

  it('are bit-identical across runs', async () => {
    const [gv] = pair(randomArray(5000 * 3), [5000, 3]);
    const [gi] = pair(idsBelow(5000, 7), [5000], 'i32');
    const { offsets, perm } = buildCSR(gi, 7);
    const first = new Uint32Array((await segmentSum(gv, offsets, { perm }).data()).buffer);
    for (let r = 0; r < 3; r++) expect(new Uint32Array((await segmentSum(gv, offsets, { perm }).data()).buffer)).toEqual(first);
  });

  it('reject bad input naming the op and shapes; the CPU checks offsets and perm', () => {
    const v = tensor(randomArray(6), [3, 2], { device: 'cpu' });
    expect(() => segmentSum(v, tensor([0, 3], [2]))).toThrow(/segmentSum: offsets must be i32 \[S\+1\], got f32 \[2\]/);
    expect(() => segmentSum(v, tensor([0, 2, 1], [3], { dtype: 'i32', device: 'cpu' }))).toThrow(/segmentSum: offsets must be non-decreasing/);
    expect(() => segmentSum(v, tensor([0, 4], [2], { dtype: 'i32', device: 'cpu' }))).toThrow(/segmentSum: offsets must lie in \[0, 3\]/);
    expect(() => segmentMax(v, tensor([0, 3], [2], { dtype: 'i32', device: 'cpu' }), { perm: tensor([0, 1], [2], { dtype: 'i32', device: 'cpu' }) })).toThrow(/segmentMax: perm must be i32 \[3\]/);
    expect(() => segmentSum(tensor([1], [1], { dtype: 'i32' }), tensor([0, 1], [2], { dtype: 'i32' }))).toThrow(OpError);
  });
});

describe('gather backward by CSR', () => {
  it('scatterAdd keeps its results (all dtypes) and gather’s adjoint identity', async () => {
    const x = randomArray(5 * 4), y = randomArray(5 * 9);
    const idx = tensor(idsBelow(9, 4), [9], { dtype: 'i32' });
    const gx = await values(gather(tensor(x, [5, 4]), idx, 1));
    const sy = await values(scatterAdd(tensor(new Float32Array(20), [5, 4]), idx, tensor(y, [5, 9]), 1));
    const lhs = gx.reduce((s, v, i) => s + v * y[i], 0);
    const rhs = sy.reduce((s, v, i) => s + v * x[i], 0);
    expect(Math.abs(lhs - rhs)).toBeLessThan(1e-4 * (1 + Math.abs(lhs)));
  });
});
