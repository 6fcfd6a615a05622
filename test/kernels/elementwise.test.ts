import { describe, expect, it } from 'vitest';
import { UNARY_OPS, BINARY_OPS, COMPARE_OPS, unary, binary, compare as cmp, where, cast, hasWebGPU, OpError, tensor } from '../../kernels/index.js';
import { compare, pair, randomArray, randomInts } from '../helpers.js';

// [6, 4] and [3, 1, 8]: sizes that are multiples of 4 take the vec4 kernels
const SHAPES = [[1], [7], [3, 5], [2, 1, 9], [257, 33], [6, 4], [3, 1, 8]];
const domain: Record<string, [number, number]> = { log: [0.1, 4], sqrt: [0.1, 4], rsqrt: [0.1, 4], reciprocal: [0.5, 3] };

describe('elementwise', () => {
  it('runs on WebGPU when required', () => {
    if (process.env.REQUIRE_WEBGPU === '1') expect(hasWebGPU()).toBe(true);
  });

  for (const op of UNARY_OPS) {
    it(`unary ${op} matches the CPU reference`, async () => {
      for (const shape of SHAPES) {
        const n = shape.reduce((a, b) => a * b, 1);
        const [lo, hi] = domain[op] ?? [-4, 4];
        const [g, c] = pair(randomArray(n, lo, hi), shape);
        const params: [number, number] = op === 'pow' ? [3, 0] : op === 'clamp' ? [-0.5, 0.7] : [1.5, -0.25];
        expect(await compare(unary(op, g, ...params), unary(op, c, ...params))).toBeLessThan(2e-6);
      }
    });
  }

  it('pow handles negative bases with integer exponents and x^0', async () => {
    const [g] = pair([-2, -1.5, 0, 3], [4]);
    expect(Array.from(await unary('pow', g, 2).data())).toEqual([4, 2.25, 0, 9]);
    expect(Array.from(await unary('pow', g, 3).data())).toEqual([-8, -3.375, 0, 27]);
    expect(Array.from(await unary('pow', g, 0).data())).toEqual([1, 1, 1, 1]);
  });

  it('sigmoid and tanh stay finite at extreme inputs', async () => {
    const [g] = pair([-1000, -30, 30, 1000], [4]);
    const s = Array.from(await unary('sigmoid', g).data());
    const t = Array.from(await unary('tanh', g).data());
    expect(s.every(Number.isFinite) && t.every(Number.isFinite)).toBe(true);
    expect(t).toEqual([-1, -1, 1, 1]);
  });

  const pairs: [number[], number[]][] = [
    [[5], [5]], [[1], [6]], [[4, 1], [1, 3]], [[2, 3, 4], [4]], [[2, 1, 5], [3, 1]], [[1, 1], [1, 1]], [[33, 1, 17], [1, 9, 1]],
    // innermost dims that are multiples of 4 (the vec4 kernels): same layout, a per-row scalar, a
    // per-channel scalar, a row broadcast over two leading dims, and a scalar
    [[6, 8], [6, 8]], [[3, 8], [3, 1]], [[2, 5, 8], [5, 1]], [[4, 8], [2, 1, 8]], [[3, 4], [1]], [[1], [2, 12]],
  ];
  for (const op of BINARY_OPS) {
    it(`binary ${op} broadcasts like NumPy`, async () => {
      for (const [sa, sb] of pairs) {
        const na = sa.reduce((a, b) => a * b, 1), nb = sb.reduce((a, b) => a * b, 1);
        const [ga, ca] = pair(randomArray(na, -3, 3), sa);
        const [gb, cb] = pair(op === 'div' ? randomArray(nb, 0.5, 2) : randomArray(nb, -3, 3), sb);
        expect(await compare(binary(op, ga, gb), binary(op, ca, cb))).toBeLessThan(1e-6);
      }
    });
  }

  it('integer arithmetic stays integer', async () => {
    const [ga, ca] = pair(randomInts(40, -100, 100), [5, 8], 'i32');
    const [gb, cb] = pair(randomInts(8, 1, 9), [8], 'i32');
    for (const op of BINARY_OPS) {
      const g = binary(op, ga, gb);
      expect(g.dtype).toBe('i32');
      expect(Array.from(await g.data())).toEqual(Array.from(await binary(op, ca, cb).data()));
    }
  });

  it('comparisons return 0/1 masks, where selects', async () => {
    const [ga, ca] = pair(randomInts(32, -3, 3), [4, 8], 'i32');
    const [gb, cb] = pair(randomInts(8, -3, 3), [8], 'i32');
    for (const op of COMPARE_OPS) expect(await compare(cmp(op, ga, gb), cmp(op, ca, cb))).toBe(0);
    const [gx, cx] = pair(randomArray(32), [4, 8]);
    const [gy, cy] = pair(randomArray(4), [4, 1]);
    const gm = cmp('gt', ga, gb), cm = cmp('gt', ca, cb);
    expect(await compare(where(gm, gx, gy), where(cm, cx, cy))).toBe(0);
  });

  it('cast converts dtypes', async () => {
    const [g] = pair([-1.7, 0.2, 2.9], [3]);
    expect(Array.from(await cast(g, 'i32').data())).toEqual([-1, 0, 2]);
    expect(Array.from(await cast(cast(g, 'i32'), 'f32').data())).toEqual([-1, 0, 2]);
  });

  it('rejects bad input with the op name and shapes', () => {
    const a = tensor(randomArray(6), [2, 3]);
    const b = tensor(randomArray(4), [4]);
    expect(() => binary('add', a, b)).toThrow(OpError);
    expect(() => binary('add', a, b)).toThrow(/add: shapes \[2, 3\] and \[4\] do not broadcast/);
    const i = tensor([1, 2, 3], [3], { dtype: 'i32' });
    expect(() => binary('mul', a, i)).toThrow(/mul: dtype mismatch/);
    expect(() => unary('exp', i)).toThrow(/exp: needs an f32 tensor/);
  });
});
