import { describe, expect, it } from 'vitest';
import {
  adaptiveAvgPool2d, adaptiveAvgPool2dBackward, avgPool2d, avgPool2dBackward, maxPool2d, maxPool2dBackward,
  OpError, poolGeometry, poolOutputSize, tensor, type AvgPool2dOptions, type MaxPool2dOptions,
} from '../../kernels/index.js';
import { compare, pair, randomArray } from '../helpers.js';

const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);

describe('pooling', () => {
  it('computes output sizes as PyTorch (floor, ceil, the last-window rule, dilation)', () => {
    // [in, k, s, p, d, ceil] → out, values from torch.nn.MaxPool2d
    const cases: [number, number, number, number, number, boolean, number][] = [
      [5, 2, 2, 0, 1, false, 2],
      [5, 2, 2, 0, 1, true, 3],
      [6, 3, 2, 1, 1, false, 3],
      [6, 3, 2, 1, 1, true, 4],
      // ceil would give 3, but the third window would start in the right padding
      [5, 3, 3, 1, 1, true, 2],
      [4, 1, 2, 0, 1, true, 2],
      [7, 3, 1, 0, 2, false, 3],
      [112, 3, 2, 1, 1, false, 56],
      // ceil mode keeps one window that is larger than the input
      [2, 3, 3, 0, 1, true, 1],
    ];
    for (const [n, k, s, p, d, ceil, out] of cases) expect(poolOutputSize(n, k, s, p, d, ceil), `${[n, k, s, p, d, ceil]}`).toBe(out);
  });

  it('max pools a 4x4 plane by hand, with the first maximum on ties', async () => {
    const [x] = pair(Array.from({ length: 16 }, (_, i) => i + 1), [1, 1, 4, 4]);
    const { out, indices } = maxPool2d(x, { kernelSize: 2 });
    expect(await out.toArray()).toEqual([[[[6, 8], [14, 16]]]]);
    expect(await indices.toArray()).toEqual([[[[5, 7], [13, 15]]]]);
    const [ties] = pair([3, 3, 3, 3, 1, 3], [1, 2, 3]);
    const t = maxPool2d(ties, { kernelSize: [2, 2], stride: 1 });
    expect(Array.from(await t.indices.data())).toEqual([0, 1]);
  });

  it('max pool backward sums the gradient of every window whose maximum an element is', async () => {
    const [x] = pair([0, 1, 0, 2, 9, 3, 0, 4, 0], [1, 1, 3, 3]);
    const { indices } = maxPool2d(x, { kernelSize: 2, stride: 1 });
    const geometry = poolGeometry('test', x, { kernelSize: 2, stride: 1 });
    const [g] = pair([1, 2, 3, 4], [1, 1, 2, 2]);
    expect(Array.from(await maxPool2dBackward(g, indices, x.shape, geometry).data())).toEqual([0, 0, 0, 0, 10, 0, 0, 0, 0]);
  });

  it('average pools with and without padding in the divisor, and in ceil mode', async () => {
    const [ones] = pair(new Array(9).fill(1), [1, 1, 3, 3]);
    const inc = await avgPool2d(ones, { kernelSize: 3, stride: 1, padding: 1 }).data();
    expect(Array.from(inc, (v) => Math.round(v * 9))).toEqual([4, 6, 4, 6, 9, 6, 4, 6, 4]);
    const exc = await avgPool2d(ones, { kernelSize: 3, stride: 1, padding: 1, countIncludePad: false }).data();
    expect(Array.from(exc)).toEqual(new Array(9).fill(1));
    const [row] = pair([1, 2, 3, 4, 5], [1, 1, 5]);
    // windows [0,2) [2,4) [4,5): the last one is clipped to the input and divides by 1
    expect(Array.from(await avgPool2d(row, { kernelSize: [1, 2], ceilMode: true }).data())).toEqual([1.5, 3.5, 5]);
    // padding 1: windows [-1,1) [1,3) [3,5); a fourth would start in the right padding
    expect(Array.from(await avgPool2d(row, { kernelSize: [1, 2], padding: [0, 1], ceilMode: true }).data())).toEqual([0.5, 2.5, 4.5]);
    expect(Array.from(await avgPool2d(row, { kernelSize: [1, 2], padding: [0, 1], ceilMode: true, countIncludePad: false }).data())).toEqual([1, 2.5, 4.5]);
  });

  it('adaptive average pools with overlapping PyTorch bins', async () => {
    const [row] = pair([1, 2, 3, 4, 5], [1, 1, 5]);
    // bins [0,2) [1,4) [3,5)
    expect(Array.from(await adaptiveAvgPool2d(row, [1, 3]).data())).toEqual([1.5, 3, 4.5]);
    const [g] = pair([2, 3, 4], [1, 1, 3]);
    expect(Array.from(await adaptiveAvgPool2dBackward(g, row.shape).data())).toEqual([1, 2, 1, 3, 2]);
  });

  const maxCases: [number[], MaxPool2dOptions][] = [
    [[1, 1, 5, 5], { kernelSize: 2 }],
    [[2, 3, 7, 9], { kernelSize: 3, stride: 2, padding: 1 }],
    [[1, 2, 9, 7], { kernelSize: [3, 2], stride: [2, 1], padding: [1, 0], dilation: [2, 3] }],
    [[3, 1, 6, 11], { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }],
    [[2, 5, 13], { kernelSize: 2, stride: 3, ceilMode: true }],
    [[1, 1, 1, 1], { kernelSize: 1 }],
    [[2, 2, 33, 35], { kernelSize: 3, stride: 1, padding: 1 }],
  ];
  for (const [shape, opts] of maxCases) {
    it(`max pool ${JSON.stringify(shape)} ${JSON.stringify(opts)}: GPU matches the CPU, forward and backward`, async () => {
      const [gx, cx] = pair(randomArray(size(shape)), shape);
      const gr = maxPool2d(gx, opts), cr = maxPool2d(cx, opts);
      expect(await compare(gr.out, cr.out)).toBe(0);
      expect(Array.from(await gr.indices.data())).toEqual(Array.from(await cr.indices.data()));
      const [gg, cg] = pair(randomArray(cr.out.size), [...cr.out.shape]);
      const geometry = poolGeometry('test', cx, opts);
      expect(await compare(maxPool2dBackward(gg, gr.indices, shape, geometry), maxPool2dBackward(cg, cr.indices, shape, geometry))).toBeLessThan(1e-6);
    });
  }

  const avgCases: [number[], AvgPool2dOptions][] = [
    [[1, 1, 5, 5], { kernelSize: 2 }],
    [[2, 3, 7, 9], { kernelSize: 3, stride: 2, padding: 1 }],
    [[2, 3, 7, 9], { kernelSize: 3, stride: 2, padding: 1, countIncludePad: false }],
    [[3, 1, 6, 11], { kernelSize: [3, 4], stride: [2, 3], padding: [1, 2], ceilMode: true }],
    [[3, 1, 6, 11], { kernelSize: [3, 4], stride: [2, 3], padding: [1, 2], ceilMode: true, countIncludePad: false }],
    [[2, 5, 13], { kernelSize: 2, stride: 3, ceilMode: true }],
    [[2, 2, 33, 35], { kernelSize: 5, stride: 1, padding: 2 }],
  ];
  for (const [shape, opts] of avgCases) {
    it(`avg pool ${JSON.stringify(shape)} ${JSON.stringify(opts)}: GPU matches the CPU, forward and backward`, async () => {
      const [gx, cx] = pair(randomArray(size(shape)), shape);
      const cy = avgPool2d(cx, opts);
      expect(await compare(avgPool2d(gx, opts), cy)).toBeLessThan(1e-6);
      const [gg, cg] = pair(randomArray(cy.size), [...cy.shape]);
      const geometry = poolGeometry('test', cx, opts);
      expect(await compare(avgPool2dBackward(gg, shape, geometry), avgPool2dBackward(cg, shape, geometry))).toBeLessThan(1e-6);
    });
  }

  const adaptiveCases: [number[], [number, number]][] = [
    [[1, 1, 5, 5], [3, 3]],
    [[2, 3, 7, 9], [1, 1]],
    [[2, 3, 7, 9], [4, 5]],
    [[1, 2, 3, 4], [7, 6]],
    [[3, 13, 10], [13, 3]],
  ];
  for (const [shape, out] of adaptiveCases) {
    it(`adaptive avg pool ${JSON.stringify(shape)} → ${out}: GPU matches the CPU, forward and backward`, async () => {
      const [gx, cx] = pair(randomArray(size(shape)), shape);
      const cy = adaptiveAvgPool2d(cx, out);
      expect(cy.shape).toEqual([...shape.slice(0, -2), ...out]);
      expect(await compare(adaptiveAvgPool2d(gx, out), cy)).toBeLessThan(1e-6);
      const [gg, cg] = pair(randomArray(cy.size), [...cy.shape]);
      expect(await compare(adaptiveAvgPool2dBackward(gg, shape), adaptiveAvgPool2dBackward(cg, shape))).toBeLessThan(1e-6);
    });
  }

  it('rejects bad input with the op name and shapes', () => {
    const x4 = tensor(new Float32Array(2 * 3 * 4 * 4), [2, 3, 4, 4]);
    const x2 = tensor(new Float32Array(16), [4, 4]);
    expect(() => maxPool2d(x2, { kernelSize: 2 })).toThrow(/maxPool2d: expects an input \[N, C, H, W\] or \[C, H, W\], got \[4, 4\]/);
    expect(() => avgPool2d(x2, { kernelSize: 2 })).toThrow(OpError);
    expect(() => adaptiveAvgPool2d(x2, [2, 2])).toThrow(/adaptiveAvgPool2d: .*\[4, 4\]/);
    expect(() => maxPool2d(x4, { kernelSize: 5 })).toThrow(/maxPool2d: kernel \[5, 5\] .* does not fit the input \[2, 3, 4, 4\]: output size 0x0/);
    expect(() => avgPool2d(x4, { kernelSize: 3, padding: 2 })).toThrow(/avgPool2d: padding \[2, 2\] exceeds half the effective kernel size 3/);
    expect(() => maxPool2d(x4, { kernelSize: 2, stride: 0 })).toThrow(/maxPool2d: .*positive/);
    expect(() => adaptiveAvgPool2d(x4, [0, 2])).toThrow(/adaptiveAvgPool2d: output size must be positive integers, got 0x2/);
  });
});
