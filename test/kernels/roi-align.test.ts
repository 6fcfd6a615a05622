import { describe, expect, it } from 'vitest';
import { hasWebGPU, roiAlign, roiAlignBackward, roiAlignLevel, tensor, zeros, type RoiAlignOptions } from '../../kernels/index.js';
import { roiAlign as roiAlignOp } from '../../autograd/detection-ops.js';
import { gradcheck, inp } from '../autograd/gradcheck.js';
import { compare, pair, randomArray, relErr } from '../helpers.js';
import golden from '../fixtures/detection/roi-align.json';

const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);

/** Random ROIs over an image of w x h (pixels), partly outside, with zero-size and inverted ones. */
function randomRois(K: number, N: number, w: number, h: number): Float32Array {
  const r = new Float32Array(K * 5);
  const u = randomArray(K * 5, 0, 1);
  for (let k = 0; k < K; k++) {
    const x1 = u[k * 5 + 1] * (w + 6) - 4, y1 = u[k * 5 + 2] * (h + 6) - 4;
    r.set([Math.floor(u[k * 5] * N), x1, y1, x1 + u[k * 5 + 3] * w * 0.8, y1 + u[k * 5 + 4] * h * 0.8], k * 5);
  }
  if (K > 2) r.set([0, 3, 2, 3, 2], 5); // zero size
  if (K > 3) r.set([N - 1, 6, 5, 2, 1], 10); // inverted
  return r;
}

describe('roi align', () => {
  const x = golden.x, xs = golden.xShape;
  const K = golden.rois.length / 5;
  for (const c of golden.cases) {
    const opts: RoiAlignOptions = { outputSize: c.outputSize as [number, number], spatialScale: c.spatialScale, samplingRatio: c.samplingRatio, aligned: c.aligned };
    it(`matches torchvision: aligned ${c.aligned}, samplingRatio ${c.samplingRatio}, scale ${c.spatialScale}, output ${c.outputSize}`, async () => {
      const [gx, cx] = pair(x, xs);
      const [gr, cr] = pair(golden.rois, [K, 5]);
      const cpu = await roiAlign(cx, cr, opts).data();
      expect(relErr(cpu, c.out)).toBeLessThan(1e-12);
      expect(relErr(await roiAlign(gx, gr, opts).data(), c.out)).toBeLessThan(1e-5);
    });
  }

  for (const c of golden.gradCases) {
    it(`the input gradient matches torchvision: aligned ${c.aligned}, samplingRatio ${c.samplingRatio}`, async () => {
      const opts: RoiAlignOptions = { outputSize: c.outputSize as [number, number], spatialScale: c.spatialScale, samplingRatio: c.samplingRatio, aligned: c.aligned };
      const [gg, cg] = pair(c.weights, [K, xs[1], ...c.outputSize]);
      const [gr, cr] = pair(golden.rois, [K, 5]);
      expect(relErr(await roiAlignBackward(cg, cr, xs, opts).data(), c.grad)).toBeLessThan(1e-12);
      expect(relErr(await roiAlignBackward(gg, gr, xs, opts).data(), c.grad)).toBeLessThan(1e-5);
    });
  }

  const shapes: [number[], number, RoiAlignOptions][] = [
    [[1, 1, 5, 7], 3, { outputSize: 2 }],
    [[2, 3, 9, 13], 11, { outputSize: [3, 5], spatialScale: 0.5, samplingRatio: 2 }],
    [[2, 3, 9, 13], 11, { outputSize: [3, 5], spatialScale: 0.5, aligned: true }],
    [[3, 2, 17, 6], 7, { outputSize: [7, 1], spatialScale: 1, samplingRatio: 3, aligned: true }],
    [[1, 5, 1, 1], 4, { outputSize: [2, 3] }],
    [[2, 1, 12, 10], 1, { outputSize: 7, spatialScale: 0.25, samplingRatio: 0 }],
  ];
  for (const [shape, K2, opts] of shapes) {
    it(`${JSON.stringify(shape)} x ${K2} rois ${JSON.stringify(opts)}: GPU matches the CPU, forward and backward`, async () => {
      const [N, , H, W] = shape;
      const scale = opts.spatialScale ?? 1;
      const [gx, cx] = pair(randomArray(size(shape)), shape);
      const [gr, cr] = pair(randomRois(K2, N, W / scale, H / scale), [K2, 5]);
      const cy = roiAlign(cx, cr, opts);
      expect(await compare(roiAlign(gx, gr, opts), cy)).toBeLessThan(1e-5);
      const [gg, cg] = pair(randomArray(cy.size), [...cy.shape]);
      expect(await compare(roiAlignBackward(gg, gr, shape, opts), roiAlignBackward(cg, cr, shape, opts))).toBeLessThan(1e-5);
    });
  }

  it('the GPU backward is bit-identical when rerun', async () => {
    if (!hasWebGPU()) return;
    const shape = [2, 4, 11, 9];
    const [gx] = pair(randomArray(size(shape)), shape);
    const [gr] = pair(randomRois(20, 2, 9, 11), [20, 5]);
    const g = tensor(randomArray(20 * 4 * 9), [20, 4, 3, 3]);
    const opts = { outputSize: 3, aligned: true };
    const a = await roiAlignBackward(g, gr, gx.shape, opts).data();
    const b = await roiAlignBackward(g, gr, gx.shape, opts).data();
    expect(Array.from(b)).toEqual(Array.from(a));
  });

  it('a level selection writes only its rows and gathers only from them', async () => {
    const shape = [1, 2, 6, 8];
    const rois = randomRois(6, 1, 8, 6);
    const lv = [0, 1, 1, 0, 1, 0];
    for (const dev of ['cpu', 'webgpu'] as const) {
      if (dev === 'webgpu' && !hasWebGPU()) continue;
      const xT = tensor(randomArray(size(shape)), shape, { device: dev });
      const r = tensor(rois, [6, 5], { device: dev });
      const levels = tensor(lv, [6], { dtype: 'i32', device: dev });
      const out = zeros([6, 2, 2, 2], { device: dev });
      roiAlignLevel(xT, r, { outputSize: 2 }, { levels, level: 1 }, out);
      const full = await roiAlign(xT, r, { outputSize: 2 }).data();
      const got = await out.data();
      for (let k = 0; k < 6; k++) {
        for (let j = 0; j < 8; j++) expect(got[k * 8 + j]).toBeCloseTo(lv[k] === 1 ? full[k * 8 + j] : 0, 5);
      }
      // backward of the level-1 rows only = full backward with the other rows' gradient zeroed
      const gv = randomArray(48);
      const masked = gv.map((v, i) => (lv[Math.floor(i / 8)] === 1 ? v : 0));
      const a = await roiAlignBackward(tensor(gv, [6, 2, 2, 2], { device: dev }), r, shape, { outputSize: 2 }, { levels, level: 1 }).data();
      const b = await roiAlignBackward(tensor(masked, [6, 2, 2, 2], { device: dev }), r, shape, { outputSize: 2 }).data();
      expect(relErr(a, b)).toBeLessThan(1e-6);
    }
  });

  it('has a gradient that passes finite differences (with respect to the features only)', async () => {
    const rois = [0, 0.7, 1.3, 5.2, 4.9, 1, -1.5, 2.25, 3.5, 7.75, 0, 2, 2, 2, 2, 1, 4.5, 0.5, 9.5, 6.5];
    for (const opts of [{ outputSize: [2, 3] as [number, number], samplingRatio: 2 }, { outputSize: 2, aligned: true }, { outputSize: [3, 2] as [number, number], spatialScale: 0.5 }]) {
      await gradcheck(([xT, r]) => roiAlignOp(xT, r, opts), [inp([2, 2, 6, 7]), { values: rois, shape: [4, 5], grad: false }], { tol: 1e-6 });
    }
  });

  it('handles no ROIs and rejects bad input with the op name and shapes', async () => {
    const [gx] = pair(randomArray(2 * 3 * 4), [1, 2, 3, 4]);
    const none = tensor(new Float32Array(0), [0, 5], { device: gx.device });
    expect(roiAlign(gx, none, { outputSize: 2 }).shape).toEqual([0, 2, 2, 2]);
    const dx = await roiAlignBackward(tensor(new Float32Array(0), [0, 2, 2, 2], { device: gx.device }), none, [1, 2, 3, 4], { outputSize: 2 }).data();
    expect(Array.from(dx)).toEqual(new Array(24).fill(0));
    const bad = tensor(new Float32Array(8), [2, 4], { device: gx.device });
    expect(() => roiAlign(gx, bad, { outputSize: 2 })).toThrow(/roiAlign: rois must be f32 \[K, 5\] \(batch index, x1, y1, x2, y2\), got f32 \[2, 4\]/);
    expect(() => roiAlign(tensor(new Float32Array(4), [2, 2], { device: gx.device }), none, { outputSize: 2 })).toThrow(/roiAlign: expects an f32 input \[N, C, H, W\], got f32 \[2, 2\]/);
    expect(() => roiAlign(gx, none, { outputSize: 0 })).toThrow(/roiAlign: outputSize must be positive integers, got \[0, 0\]/);
    const cx = tensor(randomArray(24), [1, 2, 3, 4], { device: 'cpu' });
    expect(() => roiAlign(cx, tensor([1, 0, 0, 2, 2], [1, 5], { device: 'cpu' }), { outputSize: 2 })).toThrow(/roiAlign: roi 0 has batch index 1, outside \[0, 1\)/);
    expect(() => roiAlignBackward(tensor(new Float32Array(8), [1, 2, 2, 2], { device: gx.device }), none, [1, 2, 3, 4], { outputSize: 2 })).toThrow(/roiAlignBackward: gradient f32 \[1, 2, 2, 2\] does not have the output shape \[0, 2, 2, 2\]/);
  });
});
