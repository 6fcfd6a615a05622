import { describe, expect, it } from 'vitest';
import {
  CONV_TILES, GEMM_TILES, OpError, conv2d, conv2dKeepColumns, conv2dGeometry, conv2dInputGrad, conv2dWeightGrad, hasWebGPU, tensor, type ConvOptions, type ConvTuning,
} from '../../kernels/index.js';
import { compare, pair, randomArray } from '../helpers.js';

const TOL = 1e-4;

interface Case extends ConvOptions {
  x: [number, number, number, number];
  /** output channels */
  co: number;
  k: [number, number];
  bias?: boolean;
}

const size = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

type Pass = 'forward' | 'dgrad' | 'wgrad';
const ALL: Pass[] = ['forward', 'dgrad', 'wgrad'];

/** The passes on WebGPU against the float64 reference: ||gpu − ref|| / ||ref|| each must stay under TOL. */
async function expectClose(name: string, c: Case, tuning: ConvTuning = {}, passes: Pass[] = ALL): Promise<void> {
  const opts: ConvOptions = { stride: c.stride, padding: c.padding, dilation: c.dilation, groups: c.groups };
  const wShape = [c.co, c.x[1] / (c.groups ?? 1), ...c.k];
  const g = conv2dGeometry('test', c.x, wShape, opts);
  const yShape = [g.N, g.Co, g.OH, g.OW];
  const [gx, cx] = pair(randomArray(size(c.x)), c.x);
  const [gw, cw] = pair(randomArray(size(wShape)), wShape);
  const [gb, cb] = c.bias ? pair(randomArray(c.co), [c.co]) : [null, null];
  const [gdy, cdy] = pair(randomArray(size(yShape)), yShape);
  const run: Record<Pass, () => Promise<number>> = {
    forward: () => compare(conv2d(gx, gw, gb, opts, tuning), conv2d(cx, cw, cb, opts)),
    dgrad: () => compare(conv2dInputGrad(gdy, gw, c.x, opts, tuning), conv2dInputGrad(cdy, cw, c.x, opts)),
    wgrad: () => compare(conv2dWeightGrad(gdy, gx, wShape, opts, tuning), conv2dWeightGrad(cdy, cx, wShape, opts)),
  };
  for (const pass of passes) expect(await run[pass](), `${name}: ${pass}`).toBeLessThan(TOL);
}

const CASES: Record<string, Case> = {
  '3x3 stride 1 padding 1 with bias': { x: [2, 8, 10, 12], co: 12, k: [3, 3], padding: 1, bias: true },
  '3x3 stride 2 padding 1, odd input 13x11': { x: [2, 5, 13, 11], co: 6, k: [3, 3], stride: 2, padding: 1, bias: true },
  'dilation 2, padding 2': { x: [1, 4, 9, 10], co: 5, k: [3, 3], padding: 2, dilation: 2 },
  'stride and dilation mixed per axis, no padding': { x: [2, 3, 12, 9], co: 4, k: [3, 2], stride: [2, 1], dilation: [1, 3] },
  'ResNeXt grouped 3x3: 32 groups, C = 64': { x: [2, 64, 9, 7], co: 64, k: [3, 3], padding: 1, groups: 32 },
  'grouped with 16 channels per group, stride 2': { x: [1, 32, 8, 8], co: 48, k: [3, 3], stride: 2, padding: 1, groups: 2, bias: true },
  'depthwise 3x3 (groups = C)': { x: [2, 12, 11, 13], co: 12, k: [3, 3], padding: 1, groups: 12, bias: true },
  'depthwise with channel multiplier 2, 5x5': { x: [1, 6, 10, 10], co: 12, k: [5, 5], padding: 2, groups: 6 },
  '1x1 pointwise (plain matmul), HW a multiple of 4': { x: [3, 16, 8, 6], co: 24, k: [1, 1], bias: true },
  '1x1 pointwise, odd HW and channels': { x: [2, 7, 5, 3], co: 9, k: [1, 1] },
  '1x1 pointwise grouped': { x: [2, 8, 4, 5], co: 12, k: [1, 1], groups: 4 },
  '1x1 stride 2 (ResNet downsample)': { x: [2, 16, 9, 8], co: 32, k: [1, 1], stride: 2 },
  '7x7 stride 2 padding 3 (ResNet stem)': { x: [1, 3, 30, 26], co: 16, k: [7, 7], stride: 2, padding: 3 },
  'batch 1, C_in = 1, C_out = 1': { x: [1, 1, 7, 6], co: 1, k: [3, 3], padding: 1, bias: true },
  'non-square kernel 1x5 and 5x1 padding': { x: [2, 4, 6, 9], co: 3, k: [1, 5], padding: [0, 2] },
  'non-square kernel 5x3, asymmetric stride': { x: [1, 3, 11, 8], co: 7, k: [5, 3], stride: [1, 2], padding: [1, 0] },
  'stride 3 with dilation 2 (taps every third row)': { x: [1, 3, 11, 10], co: 4, k: [3, 3], stride: 3, dilation: 2, padding: 2 },
  'kernel 2 with stride 3: rows no tap reaches': { x: [2, 3, 8, 9], co: 4, k: [2, 2], stride: 3 },
  'kernel equal to the padded input': { x: [2, 3, 3, 4], co: 2, k: [5, 4], padding: [1, 0] },
  'wider layer: 36 -> 40 channels (the 64-row CPU tiling)': { x: [1, 36, 6, 7], co: 40, k: [3, 3], padding: 1, bias: true },
  'CIFAR ResNet 3x3, 16 channels, 32x32': { x: [2, 16, 32, 32], co: 16, k: [3, 3], padding: 1 },
};

describe('conv2d', () => {
  it('runs on WebGPU when required', () => {
    if (process.env.REQUIRE_WEBGPU === '1') expect(hasWebGPU()).toBe(true);
  });

  it('the CPU reference computes known values and output sizes as PyTorch', async () => {
    // x = 0..15 on a 4x4 plane; w = [[1, 0], [0, −1]]: y = x[h, w] − x[h+1, w+1] = −5
    const x = tensor(Array.from({ length: 16 }, (_, i) => i), [1, 1, 4, 4], { device: 'cpu' });
    const w = tensor([1, 0, 0, -1], [1, 1, 2, 2], { device: 'cpu' });
    expect(await conv2d(x, w, tensor([0.5], [1], { device: 'cpu' })).toArray()).toEqual([[[[-4.5, -4.5, -4.5], [-4.5, -4.5, -4.5], [-4.5, -4.5, -4.5]]]]);
    // padding 1, stride 2: windows start at −1, 1, 3; taps outside the input count as 0
    expect(await conv2d(x, w, null, { stride: 2, padding: 1 }).toArray()).toEqual([[[[0, -2, 0], [-8, -5, 7], [0, 13, 15]]]]);
    // torch: (H + 2p − d(k − 1) − 1) / s + 1 → 112x112 for the ResNet stem on 224x224
    const g = conv2dGeometry('conv2d', [8, 3, 224, 224], [64, 3, 7, 7], { stride: 2, padding: 3 });
    expect([g.OH, g.OW]).toEqual([112, 112]);
    expect(conv2dGeometry('conv2d', [1, 4, 13, 11], [4, 2, 3, 3], { stride: 2, dilation: 2, groups: 2 })).toMatchObject({ OH: 5, OW: 4, Cig: 2, Cog: 2 });
  });

  // both strategies on any adapter: implicit GEMM (GPUs' default) and explicit im2col + matmul
  // (CPU adapters' default when the unfolded input fits)
  for (const [name, c] of Object.entries(CASES)) {
    it(`${name}: forward, dgrad and wgrad match the reference`, async () => {
      for (const strategy of ['implicit', 'explicit'] as const) await expectClose(`${name} (${strategy})`, c, { strategy });
    });
  }

  // Each new pipeline costs lavapipe seconds to compile, so the cases below reuse the vec4 layouts
  // compiled above. The CPU-adapter tilings run in the cases above (on lavapipe); these are the
  // GPU ones, forward only (the passes share gemmWGSL's tiling, which test/kernels/matmul.test.ts
  // checks for every tile class), plus wgrad's K split with tk = 16 below: m16 stands for the 4x4
  // tilings with tk = 16 (shortM, m32, medium), large for the 8x8 one.
  const GPU_TILES = { m16: CONV_TILES.m16, large: GEMM_TILES.large };
  for (const [name, tile] of Object.entries(GPU_TILES)) {
    it(`the ${name} tiling is correct on partial tiles`, async () => {
      await expectClose(`${name}`, { x: [2, 6, 7, 9], co: 20, k: [3, 3], stride: [1, 2], padding: 1, bias: true }, { tile }, ['forward']);
    });
  }

  it('wgrad splits a long K into partial sums and adds them up', async () => {
    for (const splitK of [16, 100, 1000]) {
      await expectClose(`3x3 splitK ${splitK}`, { x: [2, 8, 10, 12], co: 12, k: [3, 3], padding: 1 }, { splitK }, ['wgrad']);
      await expectClose(`1x1 splitK ${splitK}`, { x: [3, 16, 8, 6], co: 24, k: [1, 1] }, { splitK }, ['wgrad']);
    }
    await expectClose('m16 tiling, splitK 40', { x: [2, 8, 10, 12], co: 12, k: [3, 3], padding: 1 }, { splitK: 40, tile: CONV_TILES.m16 }, ['wgrad']);
  });

  it('the explicit path hands its unfolded input to wgrad, which reuses it', async () => {
    if (!hasWebGPU()) return;
    const opts: ConvOptions = { stride: 2, padding: 1, groups: 2 };
    const xs = [2, 4, 7, 6], ws = [6, 2, 3, 3];
    const [gx, cx] = pair(randomArray(size(xs)), xs);
    const [gw, cw] = pair(randomArray(size(ws)), ws);
    const implicit = conv2dKeepColumns(gx, gw, null, opts, { strategy: 'implicit' });
    expect(implicit.columns).toBeNull();
    const { y, columns } = conv2dKeepColumns(gx, gw, null, opts, { strategy: 'explicit' });
    expect(columns!.shape).toEqual([2, 2, 18, 12]);
    expect(await compare(y, conv2d(cx, cw, null, opts))).toBeLessThan(TOL);
    const [gdy, cdy] = pair(randomArray(size(y.shape)), [...y.shape]);
    expect(await compare(conv2dWeightGrad(gdy, gx, ws, opts, {}, columns), conv2dWeightGrad(cdy, cx, ws, opts))).toBeLessThan(TOL);
    expect(() => conv2dWeightGrad(gdy, gx, ws, opts, {}, columns!.reshape([4, 18, 12]))).toThrow(/conv2dWeightGrad: columns must be \[2, 2, 18, 12\] .*got \[4, 18, 12\]/);
  });

  it('the explicit path runs a batch in chunks of images (3x3, 7x7 and 1x1), uneven and of one, and keeps no columns then', async () => {
    // 5 images in chunks of at most 2 (2, 2, 1) and of 1: x0 offsets into x and dx,
    // the chunks' outputs written back by rows, wgrad's partial sums added in order
    for (const explicitChunk of [2, 1]) {
      await expectClose(`grouped 3x3 stride 2, chunks of ${explicitChunk}`, { x: [5, 4, 7, 6], co: 6, k: [3, 3], stride: 2, padding: 1, groups: 2, bias: true }, { strategy: 'explicit', explicitChunk });
    }
    await expectClose('7x7 stem, 3 images in chunks of 2', { x: [3, 3, 13, 11], co: 5, k: [7, 7], stride: 2, padding: 3 }, { strategy: 'explicit', explicitChunk: 2 });
    // pointwise: the columns are x's rows themselves, and dgrad's are copied into dx's rows
    await expectClose('1x1 grouped, 5 images in chunks of 2', { x: [5, 8, 5, 3], co: 6, k: [1, 1], groups: 2, bias: true }, { strategy: 'explicit', explicitChunk: 2 });
    if (!hasWebGPU()) return;
    const [gx] = pair(randomArray(5 * 4 * 7 * 6), [5, 4, 7, 6]);
    const [gw] = pair(randomArray(6 * 2 * 9), [6, 2, 3, 3]);
    const { y, columns } = conv2dKeepColumns(gx, gw, null, { padding: 1, groups: 2 }, { strategy: 'explicit', explicitChunk: 2 });
    expect(y.shape).toEqual([5, 6, 7, 6]);
    expect(columns).toBeNull();
  });

  it('splits wide GEMMs over several dispatches', async () => {
    await expectClose('3x3 in chunks of 64 columns', { x: [2, 8, 13, 11], co: 6, k: [3, 3], stride: 2, padding: 1, bias: true }, { columnsPerDispatch: 64 });
    await expectClose('1x1 in chunks of 64 columns', { x: [1, 16, 20, 10], co: 24, k: [1, 1], bias: true }, { columnsPerDispatch: 64 });
  });

  it('handles an empty batch: empty outputs and a zero weight gradient', async () => {
    const [x] = pair([], [0, 3, 5, 5]);
    const [w] = pair(randomArray(2 * 3 * 9), [2, 3, 3, 3]);
    const [dy] = pair([], [0, 2, 3, 3]);
    expect(conv2d(x, w, null).shape).toEqual([0, 2, 3, 3]);
    expect(conv2dInputGrad(dy, w, [0, 3, 5, 5]).shape).toEqual([0, 3, 5, 5]);
    expect(Array.from(await conv2dWeightGrad(dy, x, [2, 3, 3, 3]).data())).toEqual(new Array(54).fill(0));
  });

  it('bad inputs throw errors that name the op and the shapes', () => {
    const [x] = pair(randomArray(2 * 4 * 5 * 5), [2, 4, 5, 5]);
    const w = (s: number[]) => pair(randomArray(size(s)), s)[0];
    const bad = (f: () => unknown, msg: RegExp) => {
      expect(f).toThrow(OpError);
      expect(f).toThrow(msg);
    };
    bad(() => conv2d(x, w([3, 3, 3, 3]), null), /conv2d: weight expects 3 input channels .*input \[2, 4, 5, 5\], weight \[3, 3, 3, 3\]/);
    bad(() => conv2d(x, w([6, 2, 3, 3]), null, { groups: 3 }), /conv2d: groups \(3\) must divide the input channels \(4\) and the output channels \(6\).*\[2, 4, 5, 5\]/);
    bad(() => conv2d(x, w([3, 2, 3, 3]), null, { groups: 2 }), /conv2d: groups \(2\) must divide .* output channels \(3\)/);
    bad(() => conv2d(x, w([3, 4, 7, 3]), null, { padding: 0 }), /conv2d: kernel 7x3 .* larger than the padded input 5x5; input \[2, 4, 5, 5\], weight \[3, 4, 7, 3\]/);
    bad(() => conv2d(x, w([3, 4, 3, 3]), null, { dilation: 3 }), /conv2d: kernel 3x3 \(dilation \[3, 3\], effective 7x7\) is larger than the padded input/);
    bad(() => conv2d(x, w([3, 4, 3, 3]), w([4])), /conv2d: bias must be \[3\], got \[4\]/);
    bad(() => conv2d(x.reshape([8, 5, 5]), w([3, 4, 3, 3]), null), /conv2d: expects an input \[N, C, H, W\], got input \[8, 5, 5\]/);
    bad(() => conv2d(x, w([3, 4, 3, 3]), null, { stride: 0 }), /conv2d: stride and dilation must be positive/);
    bad(() => conv2dInputGrad(w([2, 3, 4, 4]), w([3, 4, 3, 3]), x.shape), /conv2dInputGrad: dy must be \[2, 3, 3, 3\] for input \[2, 4, 5, 5\]/);
    bad(() => conv2dWeightGrad(w([2, 3, 3, 3]), x, [3, 4, 3, 3], { padding: 1 }), /conv2dWeightGrad: dy must be \[2, 3, 5, 5\]/);
    bad(() => conv2d(x, tensor(randomArray(27), [1, 3, 3, 3], { dtype: 'i32', device: x.device }), null, { groups: 1 }), /conv2d: weight expects 3 input channels/);
    bad(() => conv2d(x, tensor(new Int32Array(36), [1, 4, 3, 3], { dtype: 'i32', device: x.device }), null), /conv2d: needs f32 tensors, got weight i32 \[1, 4, 3, 3\]/);
  });
});
