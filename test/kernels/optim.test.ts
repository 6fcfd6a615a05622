import { describe, expect, it } from 'vitest';
import { adamwUpdate, hasWebGPU, OpError, sgdUpdate, tensor, zeros, type AdamWHyper, type SGDHyper, type Tensor } from '../../kernels/index.js';
import { compare, pair, randomArray } from '../helpers.js';

// odd sizes, a size-1 dim, and one that spans many workgroups with a partial last one
// [4] and [3, 1, 12]: sizes that are multiples of 4 take the vec4 kernels
const SHAPES = [[1], [7], [3, 1, 5], [257, 33], [4], [3, 1, 12]];
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

/** Runs `steps` updates with fresh random gradients on both backends and returns the worst relative error. */
async function runBoth(shape: number[], steps: number, update: (p: Tensor, g: Tensor, state: Tensor[], step: number) => void, nState: number): Promise<number> {
  const n = size(shape);
  const [pg, pc] = pair(randomArray(n), shape);
  const sg = Array.from({ length: nState }, () => zeros(shape, { device: pg.device }));
  const sc = Array.from({ length: nState }, () => zeros(shape, { device: 'cpu' }));
  for (let step = 1; step <= steps; step++) {
    const [gg, gc] = pair(randomArray(n, -2, 2), shape);
    update(pg, gg, sg, step);
    update(pc, gc, sc, step);
  }
  let worst = await compare(pg, pc);
  for (let i = 0; i < nState; i++) worst = Math.max(worst, await compare(sg[i], sc[i]));
  return worst;
}

describe('fused optimizer kernels', () => {
  it('runs on WebGPU when required', () => {
    if (process.env.REQUIRE_WEBGPU === '1') expect(hasWebGPU()).toBe(true);
  });

  const sgdCases: [string, SGDHyper][] = [
    ['plain', { lr: 0.1, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false }],
    ['momentum, dampening, weight decay', { lr: 0.05, momentum: 0.9, dampening: 0.3, weightDecay: 5e-4, nesterov: false }],
    ['nesterov with weight decay', { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 2e-4, nesterov: true }],
  ];
  for (const [name, h] of sgdCases) {
    it(`sgd (${name}) matches the CPU reference`, async () => {
      for (const shape of SHAPES) {
        const err = await runBoth(shape, 4, (p, g, [buf], step) => sgdUpdate(p, g, h.momentum ? buf : null, h, step === 1), h.momentum ? 1 : 0);
        expect(err, `shape ${shape}`).toBeLessThan(1e-6);
      }
    });
  }

  for (const amsgrad of [false, true]) {
    it(`adamw${amsgrad ? ' with amsgrad' : ''} matches the CPU reference`, async () => {
      const h: AdamWHyper = { lr: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05 };
      for (const shape of SHAPES) {
        const err = await runBoth(shape, 4, (p, g, [m, v, vmax], step) => adamwUpdate(p, g, { expAvg: m, expAvgSq: v, maxExpAvgSq: amsgrad ? vmax : null }, h, step), 3);
        expect(err, `shape ${shape}`).toBeLessThan(2e-6);
      }
    });
  }

  it('sgd initialises the momentum buffer to the first gradient, whatever it held', async () => {
    const [p] = pair([1, 2, 3], [3]);
    const [g] = pair([0.5, -1, 2], [3]);
    const buf = tensor([9, 9, 9], [3], { device: p.device });
    sgdUpdate(p, g, buf, { lr: 0.1, momentum: 0.9, dampening: 0.5, weightDecay: 0, nesterov: false }, true);
    expect(Array.from(await buf.data())).toEqual([0.5, -1, 2]);
    expect(await compare(p, tensor([0.95, 2.1, 2.8], [3], { device: 'cpu' }))).toBeLessThan(1e-7);
  });

  it('rejects mismatched shapes, dtypes, aliased storage and a missing momentum buffer', () => {
    const [p] = pair(randomArray(6), [2, 3]);
    const h: SGDHyper = { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false };
    expect(() => sgdUpdate(p, zeros([3, 2], { device: p.device }), zeros([2, 3], { device: p.device }), h, true)).toThrow(/sgd: grad has shape \[3, 2\], the parameter \[2, 3\]/);
    expect(() => sgdUpdate(p, zeros([2, 3], { device: p.device, dtype: 'i32' }), zeros([2, 3], { device: p.device }), h, true)).toThrow(/grad must be f32/);
    expect(() => sgdUpdate(p, zeros([2, 3], { device: p.device }), null, h, true)).toThrow(OpError);
    if (p.device === 'webgpu') expect(() => sgdUpdate(p, p.reshape([2, 3]), zeros([2, 3], { device: p.device }), h, true)).toThrow(/shares its storage/);
    const m = zeros([2, 3], { device: p.device });
    expect(() => adamwUpdate(p, zeros([2, 3], { device: p.device }), { expAvg: m, expAvgSq: zeros([6], { device: p.device }), maxExpAvgSq: null }, { lr: 1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0 }, 1)).toThrow(/adamw: exp_avg_sq has shape \[6\]/);
    expect(() => adamwUpdate(p, zeros([2, 3], { device: p.device }), { expAvg: m, expAvgSq: zeros([2, 3], { device: p.device }), maxExpAvgSq: null }, { lr: 1, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0 }, 0)).toThrow(/step must be an integer >= 1/);
  });
});
