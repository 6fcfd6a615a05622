import { describe, expect, it } from 'vitest';
import { tensor } from '../../index.node.js';
import { OP_GROUPS } from '../../autograd/table.js';
import { conv2d, convTranspose2d } from '../../autograd/conv-ops.js';
import { gradcheck, inp, fixed } from './gradcheck.js';

// every entry conv-ops.ts registers (group 'conv') must have a case below
const covered = new Set<string>();
const gc = (entry: string, name: string, f: Parameters<typeof gradcheck>[0], inputs: Parameters<typeof gradcheck>[1]) => {
  covered.add(entry);
  it(`${name}: backward matches finite differences and the GPU matches the CPU`, async () => {
    await gradcheck(f, inputs);
  });
};

describe('conv2d op', () => {
  gc('conv2d', 'conv2d 3x3, stride 2, padding 1, with bias', ([x, w, b]) => conv2d(x, w, b, { stride: 2, padding: 1 }), [inp([2, 3, 6, 5]), inp([4, 3, 3, 3]), inp([4])]);
  gc('conv2d', 'conv2d grouped (2 groups) with dilation 2 and per-axis padding', ([x, w]) => conv2d(x, w, null, { groups: 2, dilation: 2, padding: [2, 1] }), [inp([1, 4, 7, 6]), inp([6, 2, 3, 3])]);
  gc('conv2d', 'conv2d depthwise (groups = C) with bias', ([x, w, b]) => conv2d(x, w, b, { groups: 3, padding: 1 }), [inp([2, 3, 5, 5]), inp([3, 1, 3, 3]), inp([3])]);
  gc('conv2d', 'conv2d 1x1 pointwise with bias', ([x, w, b]) => conv2d(x, w, b), [inp([2, 4, 3, 3]), inp([5, 4, 1, 1]), inp([5])]);
  gc('conv2d', 'conv2d non-square 2x3 kernel, stride [1, 2], batch 1', ([x, w]) => conv2d(x, w, null, { stride: [1, 2] }), [inp([1, 2, 5, 7]), inp([3, 2, 2, 3])]);
  gc('conv2d', 'conv2d 7x7 stride 2 padding 3 (stem), C_in = 1', ([x, w]) => conv2d(x, w, null, { stride: 2, padding: 3 }), [inp([1, 1, 9, 8]), inp([2, 1, 7, 7])]);
  gc('conv2d', 'conv2d with a frozen weight (input gradient only)', ([x, w, b]) => conv2d(x, w, b, { padding: 1 }), [inp([1, 2, 4, 4]), fixed([2, 2, 3, 3]), fixed([2])]);
  gc('conv2d', 'conv2d with a fixed input (weight and bias gradients only), 1x1 stride 2', ([x, w, b]) => conv2d(x, w, b, { stride: 2 }), [fixed([2, 3, 5, 4]), inp([2, 3, 1, 1]), inp([2])]);

  gc('convTranspose2d', 'convTranspose2d 2x2 stride 2 with bias (the mask head)', ([x, w, b]) => convTranspose2d(x, w, b, { stride: 2 }), [inp([2, 3, 3, 4]), inp([3, 2, 2, 2]), inp([2])]);
  gc('convTranspose2d', 'convTranspose2d 3x3 stride 2, padding 1, output padding 1, 2 groups', ([x, w, b]) => convTranspose2d(x, w, b, { stride: 2, padding: 1, outputPadding: 1, groups: 2 }), [inp([1, 4, 3, 2]), inp([4, 3, 3, 3]), inp([6])]);
  gc('convTranspose2d', 'convTranspose2d stride 1, dilation 2, output padding 1 (< dilation), per-axis padding', ([x, w]) => convTranspose2d(x, w, null, { dilation: 2, outputPadding: 1, padding: [1, 0] }), [inp([1, 2, 3, 3]), inp([2, 3, 2, 2])]);
  gc('convTranspose2d', 'convTranspose2d with a fixed input, size-1 spatial dims', ([x, w, b]) => convTranspose2d(x, w, b, { stride: [3, 1] }), [fixed([2, 1, 1, 1]), inp([1, 2, 2, 3]), inp([2])]);

  it('every convolution entry of the op table has a gradient check', () => {
    expect(OP_GROUPS.get('conv2d')).toBe('conv');
    expect([...OP_GROUPS].filter(([k, g]) => g === 'conv' && !covered.has(k)).map(([k]) => k)).toEqual([]);
  });

  it('records nothing when no input requires grad, and names the op on bad input', () => {
    const x = tensor(new Float32Array(2 * 3 * 4 * 4), [2, 3, 4, 4], { device: 'cpu' });
    const w = tensor(new Float32Array(4 * 3 * 3 * 3), [4, 3, 3, 3], { device: 'cpu' });
    const y = conv2d(x, w, null, { padding: 1 });
    expect(y.shape).toEqual([2, 4, 4, 4]);
    expect(y.node).toBeNull();
    expect(() => conv2d(x, tensor(new Float32Array(4 * 2 * 9), [4, 2, 3, 3], { device: 'cpu' }), null)).toThrow(/conv2d: weight expects 2 input channels/);
  });
});
