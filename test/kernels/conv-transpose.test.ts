import { describe, expect, it } from 'vitest';
import { convTranspose2d, convTranspose2dInputGrad, convTranspose2dWeightGrad, convTranspose2dBiasGrad, convTranspose2dGeometry, tensor, OpError, type ConvTransposeOptions } from '../../kernels/index.js';
import { compare, pair, randomArray, relErr } from '../helpers.js';
import PRIMS from '../fixtures/prims/prims.js';

const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);

describe('convTranspose2d', () => {
  it('gives known values: a 1x1 input spreads the kernel; stride 2 tiles it', async () => {
    const w = tensor([1, 2, 3, 4], [1, 1, 2, 2]);
    expect(Array.from(await convTranspose2d(tensor([2], [1, 1, 1, 1]), w, null).data())).toEqual([2, 4, 6, 8]);
    const y = convTranspose2d(tensor([1, 10], [1, 1, 1, 2]), w, tensor([0.5], [1]), { stride: 2 });
    expect(y.shape).toEqual([1, 1, 2, 4]);
    expect(Array.from(await y.data())).toEqual([1.5, 2.5, 10.5, 20.5, 3.5, 4.5, 30.5, 40.5]);
  });

  it('matches torch (F.conv_transpose2d) forward and all three gradients', async () => {
    for (const c of PRIMS.convTranspose2d) {
      const opts: ConvTransposeOptions = {
        stride: c.stride as number | [number, number], padding: c.padding as number | [number, number], outputPadding: c.outputPadding as number | [number, number],
        dilation: c.dilation as number | [number, number], groups: c.groups,
      };
      // the GPU kernels (when present), then the CPU reference
      const xs = pair(c.x, c.xShape), ws = pair(c.w, c.wShape), bs = c.b ? pair(c.b, [c.b.length]) : null, gs = pair(c.upstream, c.outShape);
      for (const dev of [0, 1]) {
        const [x, w, b, g] = [xs[dev], ws[dev], bs ? bs[dev] : null, gs[dev]];
        const y = convTranspose2d(x, w, b, opts);
        expect(y.shape).toEqual(c.outShape);
        expect(relErr(await y.data(), c.y)).toBeLessThan(1e-5);
        expect(relErr(await convTranspose2dInputGrad(g, w, c.xShape, opts).data(), c.dx)).toBeLessThan(1e-5);
        expect(relErr(await convTranspose2dWeightGrad(g, x, c.wShape, opts).data(), c.dw)).toBeLessThan(1e-5);
        if (c.db) expect(relErr(await convTranspose2dBiasGrad(g).data(), c.db)).toBeLessThan(1e-5);
      }
    }
  });

  it('matches the CPU reference at odd sizes and channel counts of 1', async () => {
    const cases: [number[], number[], ConvTransposeOptions][] = [
      [[1, 1, 1, 1], [1, 1, 1, 1], {}],
      [[2, 3, 5, 7], [3, 5, 3, 3], { stride: 2, padding: 1, outputPadding: 1 }],
      [[1, 6, 4, 3], [6, 1, 2, 4], { stride: [3, 2], groups: 3, padding: [0, 1] }],
      [[1, 2, 3, 3], [2, 1, 2, 2], { dilation: 3, outputPadding: 2 }],
    ];
    for (const [xs, ws, opts] of cases) {
      const geo = convTranspose2dGeometry('test', xs, ws, opts);
      const [gx, cx] = pair(randomArray(size(xs)), xs);
      const [gw, cw] = pair(randomArray(size(ws)), ws);
      const [gb, cb] = pair(randomArray(geo.outShape[1]), [geo.outShape[1]]);
      expect(await compare(convTranspose2d(gx, gw, gb, opts), convTranspose2d(cx, cw, cb, opts))).toBeLessThan(1e-5);
      const [gg, cg] = pair(randomArray(size(geo.outShape)), geo.outShape);
      expect(await compare(convTranspose2dInputGrad(gg, gw, xs, opts), convTranspose2dInputGrad(cg, cw, xs, opts))).toBeLessThan(1e-5);
      expect(await compare(convTranspose2dWeightGrad(gg, gx, ws, opts), convTranspose2dWeightGrad(cg, cx, ws, opts))).toBeLessThan(1e-5);
    }
  });

  it('rejects bad input naming the op and the shapes', () => {
    const x = tensor(randomArray(2 * 3 * 4 * 4), [2, 3, 4, 4], { device: 'cpu' });
    const w = tensor(randomArray(3 * 2 * 9), [3, 2, 3, 3], { device: 'cpu' });
    expect(() => convTranspose2d(x, tensor(randomArray(4 * 2 * 9), [4, 2, 3, 3], { device: 'cpu' }), null)).toThrow(/convTranspose2d: weight expects 4 input channels, input has 3/);
    expect(() => convTranspose2d(x, w, null, { stride: 2, outputPadding: 2 })).toThrow(/convTranspose2d: output_padding \(2,2\) must be smaller than either stride \(2,2\) or dilation \(1,1\)/);
    expect(() => convTranspose2d(x, w, tensor([1, 2, 3], [3], { device: 'cpu' }))).toThrow(/convTranspose2d: bias must be \[2\]/);
    expect(() => convTranspose2d(x, w, null, { padding: 4 })).toThrow(OpError);
  });
});
