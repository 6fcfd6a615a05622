import { describe, expect, it } from 'vitest';
import { tensor, upsampleBilinear, upsampleBilinearBackward, upsampleGeometry, upsampleNearest, upsampleNearestBackward, nearestGeometry, type UpsampleOptions } from '../../kernels/index.js';
import { compare, pair, randomArray, relErr } from '../helpers.js';
import PRIMS from '../fixtures/prims/prims.js';

const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);
const round = (a: ArrayLike<number>): number[] => Array.from(a, (v) => Math.round(v * 1e5) / 1e5);

describe('bilinear upsampling', () => {
  // x(h, w) = 1 + w + 2h is linear, so bilinear interpolation returns it at the source coordinates
  const linear = (rows: number[], cols: number[]): number[] => rows.flatMap((h) => cols.map((w) => 1 + w + 2 * h));

  it('upsamples 2x2 to 4x4 by hand with align_corners false', async () => {
    const [x] = pair([1, 2, 3, 4], [1, 1, 2, 2]);
    // src = max((dst + 0.5)/2 − 0.5, 0), capped at the last row: 0, 0.25, 0.75, 1
    const coords = [0, 0.25, 0.75, 1];
    expect(round(await upsampleBilinear(x, { size: [4, 4] }).data())).toEqual(round(linear(coords, coords)));
    expect(round(await upsampleBilinear(x, { scaleFactor: 2 }).data())).toEqual(round(linear(coords, coords)));
  });

  it('upsamples 2x2 to 4x4 by hand with align_corners true', async () => {
    const [x] = pair([1, 2, 3, 4], [1, 1, 2, 2]);
    const coords = [0, 1 / 3, 2 / 3, 1];
    expect(round(await upsampleBilinear(x, { size: [4, 4], alignCorners: true }).data())).toEqual(round(linear(coords, coords)));
  });

  it('sizes the output by ⌊in · scale⌋ and uses 1/scale for the coordinates', async () => {
    const [x] = pair([0, 1, 2], [1, 1, 3]);
    const y = upsampleBilinear(x, { scaleFactor: [1, 1.5] });
    expect(y.shape).toEqual([1, 1, 4]);
    // ratio 1/1.5: src = max((dst + 0.5)/1.5 − 0.5, 0) = 0, 0.5, 1.1667, 1.8333 (not in/out = 0.75)
    expect(round(await y.data())).toEqual(round([0, 0.5, 7 / 6, 11 / 6]));
    const g = upsampleGeometry('test', x, { scaleFactor: 2.5 });
    expect([g.OH, g.OW]).toEqual([2, 7]);
  });

  const cases: [number[], UpsampleOptions][] = [
    [[1, 1, 2, 2], { size: [4, 4] }],
    [[2, 3, 5, 7], { scaleFactor: 2 }],
    [[2, 3, 5, 7], { scaleFactor: 2, alignCorners: true }],
    [[1, 2, 3, 4], { size: [11, 9] }],
    [[1, 2, 3, 4], { size: [11, 9], alignCorners: true }],
    [[2, 1, 9, 8], { size: [4, 3] }],
    [[2, 1, 9, 8], { size: [4, 3], alignCorners: true }],
    [[3, 5, 6], { size: [5, 13] }],
    [[1, 1, 1, 1], { size: [3, 5] }],
    [[1, 2, 4, 6], { size: [1, 1], alignCorners: true }],
    [[1, 2, 6, 5], { scaleFactor: [1.7, 3.3] }],
    [[1, 1, 7, 9], { size: [7, 40] }],
    [[1, 1, 3, 4], { size: [24, 32] }],
  ];
  for (const [shape, opts] of cases) {
    it(`${JSON.stringify(shape)} ${JSON.stringify(opts)}: GPU matches the CPU, forward and backward`, async () => {
      const [gx, cx] = pair(randomArray(size(shape)), shape);
      const cy = upsampleBilinear(cx, opts);
      expect(await compare(upsampleBilinear(gx, opts), cy)).toBeLessThan(1e-5);
      const [gg, cg] = pair(randomArray(cy.size), [...cy.shape]);
      const geometry = upsampleGeometry('test', cx, opts);
      expect(await compare(upsampleBilinearBackward(gg, shape, geometry), upsampleBilinearBackward(cg, shape, geometry))).toBeLessThan(1e-5);
    });
  }

  it('the backward distributes each output gradient with weights that sum to 1', async () => {
    for (const alignCorners of [false, true]) {
      const [x] = pair(randomArray(2 * 3 * 5), [2, 3, 5]);
      const geometry = upsampleGeometry('test', x, { size: [7, 12], alignCorners });
      const [g] = pair(new Float32Array(2 * 7 * 12).fill(1), [2, 7, 12]);
      const dx = await upsampleBilinearBackward(g, x.shape, geometry).data();
      expect(Array.from(dx).reduce((a, v) => a + v, 0)).toBeCloseTo(2 * 7 * 12, 3);
    }
  });

  it('rejects bad input with the op name and shapes', () => {
    const x = tensor(new Float32Array(4), [2, 2]);
    const x4 = tensor(new Float32Array(4), [1, 1, 2, 2]);
    expect(() => upsampleBilinear(x, { size: [4, 4] })).toThrow(/upsampleBilinear: expects an input \[N, C, H, W\] or \[C, H, W\], got \[2, 2\]/);
    expect(() => upsampleBilinear(x4, { size: [4, 4], scaleFactor: 2 })).toThrow(/upsampleBilinear: give exactly one of size and scaleFactor/);
    expect(() => upsampleBilinear(x4, {})).toThrow(/upsampleBilinear: give exactly one/);
    expect(() => upsampleBilinear(x4, { scaleFactor: 0.2 })).toThrow(/upsampleBilinear: output size 0x0 for input \[1, 1, 2, 2\]/);
    expect(() => upsampleBilinearBackward(x4, [1, 1, 1, 1], upsampleGeometry('test', x4, { size: [3, 3] }))).toThrow(/upsampleBilinearBackward: gradient \[1, 1, 2, 2\] does not have the output shape \[1, 1, 3, 3\]/);
  });
});

describe('nearest upsampling', () => {
  const optsOf = (c: { size: number[] | null; scaleFactor: number | null }): UpsampleOptions => (c.size ? { size: [c.size[0], c.size[1]] } : { scaleFactor: c.scaleFactor! });

  it('gives known values: 2x repeats, and a non-integer size takes floor(dst * in / out)', async () => {
    const x = tensor([1, 2, 3, 4], [1, 1, 2, 2]);
    expect(Array.from(await upsampleNearest(x, { scaleFactor: 2 }).data())).toEqual([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]);
    // width 3 -> 5: scale 0.6, sources floor(0, 0.6, 1.2, 1.8, 2.4) = 0, 0, 1, 1, 2
    expect(Array.from(await upsampleNearest(tensor([1, 2, 3], [1, 1, 3]), { size: [1, 5] }).data())).toEqual([1, 1, 2, 2, 3]);
  });

  it('matches torch (F.interpolate mode=nearest) forward and backward', async () => {
    for (const c of PRIMS.upsampleNearest) {
      const [x] = pair(c.x, c.shape);
      const y = upsampleNearest(x, optsOf(c));
      expect(y.shape).toEqual(c.outShape);
      expect(Array.from(await y.data())).toEqual(c.y.map(Math.fround));
      const [g] = pair(c.upstream, c.outShape);
      const dx = upsampleNearestBackward(g, c.shape, nearestGeometry('test', x, optsOf(c)));
      expect(relErr(await dx.data(), c.grad)).toBeLessThan(1e-6);
    }
  });

  it('matches the CPU reference at odd sizes, size-1 dims, down- and up-sampling', async () => {
    const cases: [number[], UpsampleOptions][] = [
      [[1, 1, 1, 1], { size: [3, 5] }], [[2, 3, 5, 7], { scaleFactor: 2 }], [[1, 2, 7, 3], { size: [4, 11] }],
      [[3, 4, 5], { scaleFactor: [1.5, 3] }], [[1, 1, 9, 9], { scaleFactor: 0.5 }], [[2, 1, 13, 6], { size: [13, 6] }], [[1, 5, 17, 19], { size: [40, 38] }],
    ];
    for (const [shape, opts] of cases) {
      const [g, c] = pair(randomArray(size(shape)), shape);
      const yg = upsampleNearest(g, opts), yc = upsampleNearest(c, opts);
      expect(await compare(yg, yc)).toBe(0);
      const [dg, dc] = pair(randomArray(yc.size), [...yc.shape]);
      const geo = nearestGeometry('test', c, opts);
      expect(await compare(upsampleNearestBackward(dg, shape, geo), upsampleNearestBackward(dc, shape, geo))).toBeLessThan(1e-6);
    }
  });

  it('rejects bad input', () => {
    const x = tensor(randomArray(4), [1, 1, 2, 2]);
    expect(() => upsampleNearest(x, { size: [4, 4], alignCorners: true })).toThrow(/upsampleNearest: alignCorners applies to linear modes only/);
    expect(() => upsampleNearest(tensor(randomArray(4), [4]), { scaleFactor: 2 })).toThrow(/upsampleNearest: expects an input \[N, C, H, W\] or \[C, H, W\], got \[4\]/);
    expect(() => upsampleNearest(x, { size: [4, 4], scaleFactor: 2 })).toThrow(/give exactly one of size and scaleFactor/);
  });
});
