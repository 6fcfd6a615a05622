import { describe, expect, it } from 'vitest';
import { hasWebGPU, tensor, type Tensor } from '../../index.node.js';
import { OP_GROUPS } from '../../autograd/table.js';
import { noGrad } from '../../autograd/tape.js';
import * as nn from '../../autograd/nn-ops.js';
import { gradcheck, inp, fixed } from './gradcheck.js';
import { randomArray, relErr } from '../helpers.js';

// every entry nn-ops.ts registers (group 'nn') must have a case below
const nnEntries = () => [...OP_GROUPS].filter(([, g]) => g === 'nn').map(([k]) => k);

const covered = new Set<string>();
const gc = (entry: string, name: string, f: Parameters<typeof gradcheck>[0], inputs: Parameters<typeof gradcheck>[1]) => {
  covered.add(entry);
  it(`${name}: backward matches finite differences and the GPU matches the CPU`, async () => {
    await gradcheck(f, inputs);
  });
};

/** Running statistics on the device of x, fresh for every call (gradcheck runs f many times). */
const runningFor = (x: Tensor, C: number): [Tensor, Tensor] => [
  tensor(new Float32Array(C), [C], { device: x.device }),
  tensor(new Float32Array(C).fill(1), [C], { device: x.device }),
];

describe('network-layer ops', () => {
  gc('batchNorm', 'batchNorm2d training with affine parameters', ([x, w, b]) => nn.batchNorm2d(x, w, b, ...runningFor(x, 3), { training: true }), [inp([2, 3, 3, 5], -2, 2), inp([3], 0.5, 1.5), inp([3])]);
  gc('batchNorm', 'batchNorm2d training without affine parameters or running stats, N = 1', ([x]) => nn.batchNorm2d(x, null, null, null, null, { training: true }), [inp([1, 2, 3, 3], -2, 2)]);
  gc('batchNorm', 'batchNorm2d eval with running statistics', ([x, w, b]) => {
    const mean = tensor([0.2, -0.1], [2], { device: x.device }), variance = tensor([0.5, 2], [2], { device: x.device });
    return nn.batchNorm2d(x, w, b, mean, variance, { training: false, eps: 1e-3 });
  }, [inp([2, 2, 3, 1]), inp([2], 0.5, 1.5), inp([2])]);
  gc('batchNorm', 'batchNorm over features [N, C] with weight only', ([x, w]) => nn.batchNorm(x, w, null, null, null, { training: true }), [inp([5, 4], -2, 2), inp([4], 0.5, 1.5)]);
  gc('batchNorm', 'batchNorm with a frozen (non-differentiated) weight', ([x, w]) => nn.batchNorm(x, w, null, null, null, { training: true }), [inp([4, 3, 2], -2, 2), fixed([3], 0.5, 1.5)]);

  gc('maxPool2d', 'maxPool2d with padding and ceil mode', ([x]) => nn.maxPool2d(x, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }), [inp([2, 2, 6, 5])]);
  gc('maxPool2d', 'maxPool2d with dilation, overlapping windows, [C, H, W]', ([x]) => nn.maxPool2d(x, { kernelSize: 2, stride: 1, dilation: [2, 1] }), [inp([2, 5, 4])]);
  gc('avgPool2d', 'avgPool2d with padding, ceil mode, count_include_pad', ([x]) => nn.avgPool2d(x, { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }), [inp([1, 2, 6, 5])]);
  gc('avgPool2d', 'avgPool2d excluding padding from the divisor', ([x]) => nn.avgPool2d(x, { kernelSize: [2, 3], stride: [1, 2], padding: [1, 1], countIncludePad: false }), [inp([2, 1, 4, 5])]);
  gc('adaptiveAvgPool2d', 'adaptiveAvgPool2d with overlapping bins', ([x]) => nn.adaptiveAvgPool2d(x, [3, 2]), [inp([2, 2, 5, 3])]);
  gc('dropout', 'dropout with a seed', ([x]) => nn.dropout(x, 0.3, { training: true, seed: 42 }), [inp([3, 7])]);
  gc('upsampleBilinear', 'upsampleBilinear to a size', ([x]) => nn.upsampleBilinear(x, { size: [5, 7] }), [inp([1, 2, 3, 3])]);
  gc('upsampleBilinear', 'upsampleBilinear by a scale factor with align_corners, downsampling one dim', ([x]) => nn.upsampleBilinear(x, { scaleFactor: [2, 0.6], alignCorners: true }), [inp([2, 3, 5])]);

  it('every network-layer entry of the op table has a gradient check', () => {
    expect(nnEntries().length).toBeGreaterThan(0);
    expect(nnEntries().filter((k) => !covered.has(k))).toEqual([]);
  });

  it('batchNorm2d training moves the running statistics in place; eval then normalises with them', async () => {
    const device = hasWebGPU() ? 'webgpu' : 'cpu';
    const shape = [4, 3, 2, 3];
    const values = randomArray(72, -1, 3);
    const results: Float64Array[][] = [];
    for (const dev of [device, 'cpu'] as const) {
      const x = tensor(values, shape, { device: dev });
      const [mean, variance] = runningFor(x, 3);
      nn.batchNorm2d(x, null, null, mean, variance, { training: true, momentum: 0.5 });
      const evalOut = noGrad(() => nn.batchNorm2d(x, null, null, mean, variance, { training: false }));
      results.push([Float64Array.from(await mean.data()), Float64Array.from(await variance.data()), Float64Array.from(await evalOut.data())]);
    }
    const [gpu, cpu] = results;
    for (let k = 0; k < 3; k++) expect(relErr(gpu[k], cpu[k])).toBeLessThan(1e-5);
    // channel 0 by hand: mean ← 0.5·0 + 0.5·μ, var ← 0.5·1 + 0.5·σ²·M/(M−1)
    const ch0 = [0, 1, 2, 3].flatMap((n) => Array.from(values.slice(n * 18, n * 18 + 6)));
    const mu = ch0.reduce((a, v) => a + v, 0) / 24;
    const unbiased = ch0.reduce((a, v) => a + (v - mu) ** 2, 0) / 23;
    expect(cpu[0][0]).toBeCloseTo(0.5 * mu, 10);
    expect(cpu[1][0]).toBeCloseTo(0.5 + 0.5 * unbiased, 10);
    expect(cpu[2][0]).toBeCloseTo((values[0] - cpu[0][0]) / Math.sqrt(cpu[1][0] + 1e-5), 10);
  });

  it('dropout is the identity in eval mode and at p = 0, and the backward reuses the forward mask', async () => {
    const x = tensor(randomArray(50), [5, 10]).requireGrad();
    expect(nn.dropout(x, 0.5, { training: false })).toBe(x);
    expect(nn.dropout(x, 0, { training: true })).toBe(x);
    const y = nn.dropout(x, 0.5, { training: true });
    y.backward(tensor(new Float32Array(50).fill(1), [5, 10]));
    const kept = Array.from(await y.data(), (v) => v !== 0);
    expect(Array.from(await x.grad!.data(), (v) => v !== 0)).toEqual(kept);
  });

  it('rejects bad input with the op name and shapes', () => {
    const x = tensor(new Float32Array(24), [2, 3, 2, 2]);
    const c2 = tensor([1, 1], [2]);
    expect(() => nn.batchNorm2d(tensor(new Float32Array(6), [2, 3]), null, null, null, null, { training: true })).toThrow(/batchNorm2d: expects an input \[N, C, H, W\], got \[2, 3\]/);
    expect(() => nn.batchNorm2d(x, c2, null, null, null, { training: true })).toThrow(/batchNorm: weight must be an f32 vector of 3 values \(one per channel of input \[2, 3, 2, 2\]\), got f32 \[2\]/);
    expect(() => nn.batchNorm2d(x, null, null, c2, c2, { training: false })).toThrow(/batchNorm: running mean must be an f32 vector of 3 values/);
    expect(() => nn.batchNorm2d(x, null, null, c2, null, { training: false })).toThrow(/batchNorm: give both running mean and running var, or neither/);
    expect(() => nn.batchNorm2d(tensor([1, 2, 3], [1, 3, 1, 1]), null, null, null, null, { training: true })).toThrow(/batchNorm: expected more than 1 value per channel when training, got input \[1, 3, 1, 1\]/);
    expect(() => nn.maxPool2d(x, { kernelSize: 3 })).toThrow(/maxPool2d: kernel \[3, 3\]/);
    expect(() => nn.dropout(x, -0.1, { training: false })).toThrow(/dropout: probability must be in \[0, 1\], got -0.1/);
    expect(() => nn.upsampleBilinear(x, { size: [0, 3] })).toThrow(/upsampleBilinear: output size 0x3/);
  });
});
