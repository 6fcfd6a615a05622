import { describe, expect, it } from 'vitest';
import { tensor, hasWebGPU, scope, raw } from '../../index.node.js';
import { OP_GROUPS } from '../../autograd/table.js';
import { segmentSum, segmentMax, segmentSoftmax } from '../../autograd/segment-ops.js';
import { gather, mul, sum } from '../../autograd/ops.js';
import { gradcheck, inp, ints } from './gradcheck.js';
import { randomArray, randomInts, relErr } from '../helpers.js';

// every entry segment-ops.ts registers (group 'segment') must have a case below
const covered = new Set<string>();
const gc = (entry: string, name: string, f: Parameters<typeof gradcheck>[0], inputs: Parameters<typeof gradcheck>[1]) => {
  covered.add(entry);
  it(`${name}: backward matches finite differences and the GPU matches the CPU`, async () => {
    await gradcheck(f, inputs);
  });
};

// 9 rows in 5 segments, one empty; a permutation of the rows
const OFF = [0, 2, 2, 5, 8, 9];
const PERM = [4, 0, 7, 2, 8, 1, 6, 3, 5];

describe('segment ops', () => {
  gc('segmentSum', 'segmentSum [9, 3] over 5 segments', ([v, o]) => segmentSum(v, o), [inp([9, 3]), ints(OFF, [6])]);
  gc('segmentSum', 'segmentSum with perm, trailing dims [2, 1]', ([v, o, p]) => segmentSum(v, o, p), [inp([9, 2, 1]), ints(OFF, [6]), ints(PERM, [9])]);
  gc('segmentSum', 'segmentSum, one row, one segment', ([v, o]) => segmentSum(v, o), [inp([1]), ints([0, 1], [2])]);
  gc('segmentMax', 'segmentMax [9, 4] with an empty segment', ([v, o]) => segmentMax(v, o), [inp([9, 4]), ints(OFF, [6])]);
  gc('segmentMax', 'segmentMax with perm', ([v, o, p]) => segmentMax(v, o, p), [inp([9, 3]), ints(OFF, [6]), ints(PERM, [9])]);
  gc('segmentSoftmax', 'segmentSoftmax [9, 3]', ([v, o]) => segmentSoftmax(v, o), [inp([9, 3], -2, 2), ints(OFF, [6])]);
  gc('segmentSoftmax', 'segmentSoftmax [7], segments of 1 and 6 rows', ([v, o]) => segmentSoftmax(v, o), [inp([7], -2, 2), ints([0, 1, 7], [3])]);
  // gather's backward now runs through buildCSR + segment sum
  gc('gather', 'gather along axis 1 with repeated indices', ([x, i]) => gather(x, i, 1), [inp([3, 5, 2]), ints([4, 0, 4, 4, 1, 0, 2], [7])]);

  it('every segment entry of the op table has a gradient check', () => {
    expect([...OP_GROUPS].filter(([k, g]) => g === 'segment' && !covered.has(k)).map(([k]) => k)).toEqual([]);
    expect(OP_GROUPS.get('segmentSum')).toBe('segment');
  });

  it("gather's gradient equals the scatterAdd reference and is bit-identical across runs", async () => {
    const n = 4000, len = 37, F = 5;
    const xv = randomArray(len * F), idx = randomInts(n, 0, len).map((v) => Math.min(v, len - 1)), w = randomArray(n * F);
    const grad = async (device: 'cpu' | 'webgpu'): Promise<Float32Array | Float64Array> => {
      const x = tensor(xv, [len, F], { device }).requireGrad();
      scope(() => sum(mul(gather(x, tensor(idx, [n], { dtype: 'i32', device }), 0), tensor(w, [n, F], { device }))).backward());
      const d = (await x.grad!.data()) as Float32Array | Float64Array;
      x.dispose();
      return d;
    };
    const ref = raw.scatterAdd(tensor(new Float32Array(len * F), [len, F], { device: 'cpu' }), tensor(idx, [n], { dtype: 'i32', device: 'cpu' }), tensor(w, [n, F], { device: 'cpu' }), 0);
    const cpu = await grad('cpu');
    expect(relErr(cpu, ref.cpu)).toBeLessThan(1e-12);
    if (!hasWebGPU()) return;
    const first = await grad('webgpu');
    expect(relErr(first, ref.cpu)).toBeLessThan(1e-6);
    for (let r = 0; r < 2; r++) expect(new Uint32Array((await grad('webgpu')).buffer)).toEqual(new Uint32Array(first.buffer));
  });
});
