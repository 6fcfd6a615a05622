import { describe, expect, it } from 'vitest';
import { arange, hasWebGPU, ones, tensor, type Tensor } from '../../index.node.js';
import { copyInto } from '../../nn/init.js';
import {
  AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, ConvTranspose2d, Dropout, Flatten, Identity, Linear, MaxPool2d, NormedLinear, ReLU, normalize,
} from '../../nn/layers.js';
import { Sequential } from '../../nn/module.js';
import { randomArray, relErr } from '../helpers.js';
import PRIMS from '../fixtures/prims/prims.js';

const gpu = () => (hasWebGPU() ? 'webgpu' : 'cpu') as 'webgpu' | 'cpu';
const values = async (t: Tensor) => Array.from(await t.data());
const set = (t: Tensor, v: ArrayLike<number>) => copyInto(t, tensor(v, [...t.shape], { device: 'cpu' }));
const names = (m: { namedParameters(): [string, Tensor][] }) => m.namedParameters().map(([n, p]) => `${n} ${p.shape.join('x')}`);

/** Direct float64 convolution: out[n, o, y, x] = b[o] + Σ w[o, c, i, j] · in[n, g·cg + c, y·s − p + i·d, x·s − p + j·d]. */
function conv2dReference(
  x: ArrayLike<number>, [N, C, H, W]: number[], w: ArrayLike<number>, [O, CG, KH, KW]: number[], b: ArrayLike<number> | null,
  [sh, sw]: number[], [ph, pw]: number[], [dh, dw]: number[], groups: number,
): { out: Float64Array; shape: number[] } {
  const OH = Math.floor((H + 2 * ph - dh * (KH - 1) - 1) / sh) + 1, OW = Math.floor((W + 2 * pw - dw * (KW - 1) - 1) / sw) + 1;
  const out = new Float64Array(N * O * OH * OW);
  const perGroup = O / groups;
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
    let acc = b ? b[o] : 0;
    const g = Math.floor(o / perGroup);
    for (let c = 0; c < CG; c++) for (let i = 0; i < KH; i++) for (let j = 0; j < KW; j++) {
      const iy = oy * sh - ph + i * dh, ix = ox * sw - pw + j * dw;
      if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
      acc += w[((o * CG + c) * KH + i) * KW + j] * x[((n * C + g * CG + c) * H + iy) * W + ix];
    }
    out[((n * O + o) * OH + oy) * OW + ox] = acc;
  }
  return { out, shape: [N, O, OH, OW] };
}

describe('Linear', () => {
  it('has torch names and shapes, and computes x Wᵀ + b over any leading dims', async () => {
    const fc = new Linear(2, 3, { device: gpu() });
    expect(names(fc)).toEqual(['weight 3x2', 'bias 3']);
    expect(names(new Linear(2, 3, { bias: false }))).toEqual(['weight 3x2']);
    set(fc.weight, [1, 2, 3, 4, 5, 6]);
    set(fc.bias!, [0.5, -1, 2]);
    const x = tensor([[1, -1], [2, 0.5]], undefined, { device: gpu() });
    expect(await fc.forward(x).toArray()).toEqual([[-0.5, -2, 1], [3.5, 7, 15]]);
    expect(await fc.forward(x.reshape([2, 1, 2])).toArray()).toEqual([[[-0.5, -2, 1]], [[3.5, 7, 15]]]);
    expect(await fc.forward(tensor([2, 0.5], [2], { device: gpu() })).toArray()).toEqual([3.5, 7, 15]);
    expect(() => fc.forward(tensor([1, 2, 3], [1, 3], { device: gpu() }))).toThrow(/Linear: expects an input \[\.\.\., 2\], got \[1, 3\]/);
  });

  it('initialises weight and bias from U(−1/√in, 1/√in) as torch', async () => {
    const fc = new Linear(64, 200, { device: gpu() });
    for (const t of [fc.weight, fc.bias!]) {
      const v = await values(t);
      const maxAbs = Math.max(...v.map(Math.abs));
      expect(maxAbs).toBeLessThanOrEqual(1 / 8 + 1e-7);
      expect(maxAbs).toBeGreaterThan(0.12);
    }
  });

  it('chains in a Sequential, matching a hand computation', async () => {
    const a = new Linear(2, 2, { device: gpu() }), b = new Linear(2, 1, { bias: false, device: gpu() });
    set(a.weight, [1, -1, 2, 1]);
    set(a.bias!, [0, -10]);
    set(b.weight, [3, 0.5]);
    const seq = new Sequential(a, new ReLU(), b);
    expect(names(seq)).toEqual(['0.weight 2x2', '0.bias 2', '2.weight 1x2']);
    // x = [4, 1]: a → [3, -1] → relu [3, 0] → b → 9
    expect(await seq.forward(tensor([[4, 1]], undefined, { device: gpu() })).toArray()).toEqual([[9]]);
  });
});

describe('Conv2d', () => {
  const cases = [
    { n: 2, c: 4, h: 7, w: 6, o: 6, k: 3 as number | [number, number], stride: 2, padding: 1, dilation: 1, groups: 2, bias: true },
    { n: 1, c: 3, h: 5, w: 5, o: 2, k: [2, 3] as [number, number], stride: 1, padding: [0, 2] as [number, number], dilation: 2, groups: 1, bias: false },
    { n: 3, c: 1, h: 4, w: 9, o: 1, k: 1, stride: [1, 2] as [number, number], padding: 0, dilation: 1, groups: 1, bias: true },
  ];
  for (const cs of cases) {
    it(`forward matches a direct convolution: ${JSON.stringify(cs)}`, async () => {
      const conv = new Conv2d(cs.c, cs.o, cs.k, { stride: cs.stride, padding: cs.padding, dilation: cs.dilation, groups: cs.groups, bias: cs.bias, device: gpu() });
      const pair = (v: number | [number, number]) => (typeof v === 'number' ? [v, v] : v);
      expect(conv.weight.shape).toEqual([cs.o, cs.c / cs.groups, ...pair(cs.k)]);
      expect(conv.bias?.shape ?? null).toEqual(cs.bias ? [cs.o] : null);
      const xs = randomArray(cs.n * cs.c * cs.h * cs.w);
      const ref = conv2dReference(xs, [cs.n, cs.c, cs.h, cs.w], await conv.weight.data(), conv.weight.shape as number[], conv.bias ? await conv.bias.data() : null,
        pair(cs.stride), pair(cs.padding), pair(cs.dilation), cs.groups);
      const y = conv.forward(tensor(xs, [cs.n, cs.c, cs.h, cs.w], { device: gpu() }));
      expect(y.shape).toEqual(ref.shape);
      expect(relErr(await y.data(), ref.out)).toBeLessThan(1e-5);
    });
  }

  it('checks its configuration and input', () => {
    expect(() => new Conv2d(3, 4, 3, { groups: 2 })).toThrow(/divisible by groups/);
    expect(() => new Conv2d(3, 4, 3).forward(tensor(new Float32Array(2 * 4 * 5 * 5), [2, 4, 5, 5]))).toThrow(/Conv2d: expects an input \[N, 3, H, W\], got \[2, 4, 5, 5\]/);
  });
});

describe('BatchNorm2d', () => {
  it('has torch names, normalises with batch statistics while training and moves the running statistics', async () => {
    const bn = new BatchNorm2d(2, { device: gpu() });
    expect(names(bn)).toEqual(['weight 2', 'bias 2']);
    expect([...bn.stateDict().entries()].map(([k, t]) => `${k} ${t.dtype}[${t.shape.join('x')}]`)).toEqual([
      'weight f32[2]', 'bias f32[2]', 'running_mean f32[2]', 'running_var f32[2]', 'num_batches_tracked i32[]',
    ]);
    set(bn.weight!, [2, 1]);
    set(bn.bias!, [0, 5]);
    const xs = randomArray(3 * 2 * 2 * 2, -2, 3);
    const x = tensor(xs, [3, 2, 2, 2], { device: gpu() });
    const y = await values(bn.forward(x));
    const chan = (c: number) => [0, 1, 2].flatMap((n) => [0, 1, 2, 3].map((i) => (n * 2 + c) * 4 + i));
    for (const c of [0, 1]) {
      const v = chan(c).map((i) => xs[i]);
      const mean = v.reduce((a, b) => a + b) / v.length;
      const varB = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length;
      const expected = v.map((t) => ((t - mean) / Math.sqrt(varB + 1e-5)) * [2, 1][c] + [0, 5][c]);
      expect(relErr(chan(c).map((i) => y[i]), expected)).toBeLessThan(1e-5);
      expect((await values(bn.running_mean!))[c]).toBeCloseTo(0.1 * mean, 5);
      expect((await values(bn.running_var!))[c]).toBeCloseTo(0.9 + 0.1 * varB * (v.length / (v.length - 1)), 5);
    }
    expect(await bn.num_batches_tracked!.item()).toBe(1);
    bn.forward(x);
    expect(await bn.num_batches_tracked!.item()).toBe(2);

    // eval: the running statistics, and the counter stands still
    bn.eval();
    const rm = await values(bn.running_mean!), rv = await values(bn.running_var!);
    const ye = await values(bn.forward(x));
    const expectedEval = xs.map((t, i) => {
      const c = Math.floor(i / 4) % 2;
      return ((t - rm[c]) / Math.sqrt(rv[c] + 1e-5)) * [2, 1][c] + [0, 5][c];
    });
    expect(relErr(ye, expectedEval)).toBeLessThan(1e-5);
    expect(await bn.num_batches_tracked!.item()).toBe(2);
  });

  it('without running statistics always uses the batch and keeps no buffers', async () => {
    const bn = new BatchNorm2d(3, { trackRunningStats: false, affine: false, device: gpu() });
    expect(bn.stateDict().size).toBe(0);
    bn.eval();
    const y = await values(bn.forward(tensor(randomArray(2 * 3 * 3 * 3), [2, 3, 3, 3], { device: gpu() })));
    const c0 = [0, 1].flatMap((n) => Array.from({ length: 9 }, (_, i) => y[n * 27 + i]));
    expect(Math.abs(c0.reduce((a, b) => a + b) / c0.length)).toBeLessThan(1e-5);
  });
});

describe('pooling, dropout and shape layers', () => {
  it('MaxPool2d, AvgPool2d and AdaptiveAvgPool2d match hand computations', async () => {
    const x = arange(0, 25, 1, { dtype: 'f32', device: gpu() }).reshape([1, 1, 5, 5]);
    // x[h, w] = 5h + w: each 3x3/2 window (padding 1) peaks at its bottom-right element inside the input
    expect(await new MaxPool2d(3, { stride: 2, padding: 1 }).forward(x).toArray()).toEqual([[[[6, 8, 9], [16, 18, 19], [21, 23, 24]]]]);
    const x4 = arange(0, 16, 1, { dtype: 'f32', device: gpu() }).reshape([1, 1, 4, 4]);
    expect(await new AvgPool2d(2).forward(x4).toArray()).toEqual([[[[2.5, 4.5], [10.5, 12.5]]]]);
    expect(await new AdaptiveAvgPool2d(1).forward(x4).toArray()).toEqual([[[[7.5]]]]);
    expect(new AdaptiveAvgPool2d([2, 3]).forward(x).shape).toEqual([1, 1, 2, 3]);
  });

  it('Dropout drops and rescales while training and is the identity in eval', async () => {
    const drop = new Dropout(0.25);
    const x = ones([4000], { device: gpu() });
    const y = await values(drop.forward(x));
    const zeros = y.filter((v) => v === 0).length;
    expect(y.every((v) => v === 0 || Math.abs(v - 4 / 3) < 1e-6)).toBe(true);
    expect(zeros).toBeGreaterThan(850);
    expect(zeros).toBeLessThan(1150);
    drop.eval();
    expect((await values(drop.forward(x))).every((v) => v === 1)).toBe(true);
    expect(() => new Dropout(1.5)).toThrow(/Dropout/);
  });

  it('Flatten, Identity and ReLU', async () => {
    const x = tensor(randomArray(2 * 3 * 4 * 5), [2, 3, 4, 5], { device: gpu() });
    expect(new Flatten().forward(x).shape).toEqual([2, 60]);
    expect(new Flatten(1, 2).forward(x).shape).toEqual([2, 12, 5]);
    expect(new Flatten(0).forward(x).shape).toEqual([120]);
    expect(new Identity().forward(x)).toBe(x);
    expect(await new ReLU().forward(tensor([-1, 0.5, 2], [3], { device: gpu() })).toArray()).toEqual([0, 0.5, 2]);
  });
});

describe('NormedLinear (LDAM cosine classifier)', () => {
  it('starts with unit-norm columns and outputs cosine similarities', async () => {
    const head = new NormedLinear(5, 4, { device: gpu() });
    expect(names(head)).toEqual(['weight 5x4']);
    const w = await values(head.weight);
    for (let j = 0; j < 4; j++) expect(Math.hypot(...[0, 1, 2, 3, 4].map((i) => w[i * 4 + j]))).toBeCloseTo(1, 5);
    const xs = randomArray(3 * 5);
    const y = await values(head.forward(tensor(xs, [3, 5], { device: gpu() })));
    const expected: number[] = [];
    for (let r = 0; r < 3; r++) {
      const row = Array.from(xs.slice(r * 5, r * 5 + 5));
      for (let j = 0; j < 4; j++) {
        const col = [0, 1, 2, 3, 4].map((i) => w[i * 4 + j]);
        expected.push(row.reduce((a, v, i) => a + v * col[i], 0) / (Math.hypot(...row) * Math.hypot(...col)));
      }
    }
    expect(relErr(y, expected)).toBeLessThan(1e-5);
    expect(relErr(await normalize(tensor([[3, 4], [0, 0]], undefined, { device: gpu() }), 1).data(), [0.6, 0.8, 0, 0])).toBeLessThan(1e-7);
  });
});

describe('ConvTranspose2d', () => {
  it("has torch's names, shapes and default init bounds, and matches torch's conv_transpose2d with the fixture's weights", async () => {
    const c = PRIMS.convTranspose2d[1]; // stride 2, padding 1, output_padding 1, 2 groups, bias
    const [, cin, , ] = c.xShape;
    const [, coutPerGroup, kh, kw] = c.wShape;
    const m = new ConvTranspose2d(cin, coutPerGroup * c.groups, [kh, kw], {
      stride: c.stride as number, padding: c.padding as number, outputPadding: c.outputPadding as number, groups: c.groups, device: gpu(),
    });
    expect(names(m)).toEqual([`weight ${c.wShape.join('x')}`, `bias ${coutPerGroup * c.groups}`]);
    // kaiming_uniform(a=√5) and the bias both have bound 1/√fan_in, fan_in = weight.size(1)·kh·kw (torch)
    const bound = 1 / Math.sqrt(coutPerGroup * kh * kw);
    for (const v of [...await values(m.weight), ...await values(m.bias!)]) expect(Math.abs(v)).toBeLessThanOrEqual(bound + 1e-7);
    set(m.weight, c.w);
    set(m.bias!, c.b!);
    const y = m.forward(tensor(c.x, c.xShape, { device: gpu() }));
    expect(y.shape).toEqual(c.outShape);
    expect(relErr(await y.data(), c.y)).toBeLessThan(1e-5);
  });

  it('checks its configuration and input', () => {
    expect(() => new ConvTranspose2d(3, 4, 2, { groups: 2 })).toThrow(/ConvTranspose2d: in \(3\) and out \(4\) channels must be divisible by groups/);
    expect(() => new ConvTranspose2d(2, 2, 3, { stride: 2, outputPadding: 2 })).toThrow(/ConvTranspose2d: outputPadding \(2,2\) must be smaller than either stride/);
    expect(() => new ConvTranspose2d(3, 4, 2).forward(tensor(new Float32Array(2 * 4 * 5 * 5), [2, 4, 5, 5]))).toThrow(/ConvTranspose2d: expects an input \[N, 3, H, W\], got \[2, 4, 5, 5\]/);
  });
});
