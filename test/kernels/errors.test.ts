// Bad input must fail loudly, with the op and the shapes in the message: never a Dawn validation
// dump, a lost device, or a silently wrong result.
import { describe, expect, it } from 'vitest';
import {
  binary, unary, matmul, sum, mean, permute, transpose, slice, narrow, concat, pad, expand, gather, scatterAdd, oneHot,
  tensor, zeros, rand, device, hasWebGPU, OpError, Tensor, type DType,
} from '../../kernels/index.js';
import { randomArray } from '../helpers.js';

const t = (shape: number[], dtype: DType = 'f32', dev?: 'cpu' | 'webgpu'): Tensor =>
  tensor(randomArray(shape.reduce((a, b) => a * b, 1)).map((v) => (dtype === 'f32' ? v : Math.abs(Math.round(v * 3)))), shape, { dtype, device: dev });

/** fn throws an OpError whose message starts with `op:` and contains every given shape as [a, b]. */
function expectOpError(fn: () => unknown, op: string, ...shapes: number[][]): void {
  let error: unknown = null;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  expect(error, `${op} did not throw`).toBeInstanceOf(OpError);
  const message = (error as Error).message;
  expect(message.startsWith(`${op}: `), message).toBe(true);
  for (const s of shapes) expect(message, message).toContain(`[${s.join(', ')}]`);
}

describe('errors name the op and the shapes', () => {
  it('shape mismatch', () => {
    expectOpError(() => binary('add', t([2, 3]), t([4])), 'add', [2, 3], [4]);
    expectOpError(() => matmul(t([2, 3]), t([4, 5])), 'matmul', [2, 3], [4, 5]);
    expectOpError(() => concat([t([2, 3]), t([3, 2])], 1), 'concat', [2, 3], [3, 2]);
    expectOpError(() => scatterAdd(t([4, 3]), tensor([0, 1], [2], { dtype: 'i32' }), t([3, 3]), 0), 'scatterAdd', [3, 3], [4, 3], [2]);
    expectOpError(() => expand(t([2, 3]), [2, 4]), 'expand', [2, 3], [2, 4]);
    expectOpError(() => slice(t([3, 4]), [1, 1], [3, 1]), 'slice', [3, 4]);
    expectOpError(() => pad(t([3, 4]), [[1, 1]]), 'pad', [3, 4]);
    expectOpError(() => permute(t([3, 4]), [1, 1]), 'permute', [3, 4]);
    expectOpError(() => t([2, 3]).reshape([4, 2]), 'reshape', [2, 3], [4, 2]);
  });

  it('wrong dtype', () => {
    expectOpError(() => unary('exp', t([3], 'i32')), 'exp', [3]);
    expectOpError(() => binary('mul', t([3]), t([3], 'i32')), 'mul', [3]);
    expectOpError(() => mean(t([2, 2], 'u32')), 'mean', [2, 2]);
    expectOpError(() => gather(t([4]), t([2]), 0), 'gather', [2]);
    expectOpError(() => oneHot(t([2]), 3), 'oneHot', [2]);
    expectOpError(() => concat([t([2]), t([2], 'i32')], 0), 'concat', [2]);
    expectOpError(() => scatterAdd(t([3]), tensor([0], [1], { dtype: 'i32' }), t([1], 'i32'), 0), 'scatterAdd', [3], [1]);
  });

  it('axis out of range', () => {
    expectOpError(() => sum(t([2, 3]), 2), 'sum');
    expectOpError(() => transpose(t([2, 3]), 0, 2), 'transpose');
    expectOpError(() => narrow(t([2, 3]), -3, 0, 1), 'narrow');
    expectOpError(() => concat([t([2, 3])], 2), 'concat');
    expectOpError(() => gather(t([2, 3]), tensor([0], [1], { dtype: 'i32' }), 1.5), 'gather');
    expect(() => sum(t([2, 3]), 2)).toThrow(/axis 2 is out of range for a tensor of rank 2/);
  });

  it('a tensor over the adapter\'s largest buffer throws before reaching Dawn (one over a binding is split instead)', async () => {
    if (!hasWebGPU()) return;
    // ops split tensors past maxStorageBufferBindingSize (test/autograd/split.test.ts); maxBufferSize is the hard limit
    const limit = device().limits.maxBufferSize;
    const n = Math.floor(limit / 4) + 1;
    expect(() => zeros([n])).toThrow(new RegExp(`^full: output of shape \\[${n}\\] \\(f32\\): needs a ${4 * n}-byte buffer, over this adapter's maxBufferSize of ${limit} bytes`));
    expect(() => rand([2, Math.ceil(n / 2)])).toThrow(/rand\(uniform\): output of shape .* over this adapter's maxBufferSize/);
    expect(() => expand(t([1]), [n])).toThrow(/expand: output of shape .* over this adapter's maxBufferSize/);
    // the device is still healthy afterwards
    expect(Array.from(await binary('add', t([2]), zeros([2])).data()).every(Number.isFinite)).toBe(true);
  });

  it('use after dispose', async () => {
    const x = t([2, 2]);
    x.dispose();
    expectOpError(() => transpose(x), 'transpose', [2, 2]);
    expectOpError(() => gather(x, tensor([0], [1], { dtype: 'i32' }), 0), 'gather', [2, 2]);
    expect(() => unary('exp', x)).toThrow(/tensor of shape \[2, 2\] was used after dispose\(\)/);
    expect(() => binary('add', x, x)).toThrow(/\[2, 2\] was used after dispose/);
    expect(() => x.reshape([4])).toThrow(/\[2, 2\] was used after dispose/);
    await expect(x.data()).rejects.toThrow(/\[2, 2\] was used after dispose/);
  });

  it('malformed shapes (negative, fractional, NaN)', () => {
    expectOpError(() => zeros([-1]), 'full', [-1]);
    expectOpError(() => zeros([2, 2.5]), 'full', [2, 2.5]);
    expectOpError(() => rand([NaN]), 'rand(uniform)', [NaN]);
    expectOpError(() => tensor([1, 2], [-1, -2]), 'tensor', [-1, -2]);
    expectOpError(() => tensor([1, 2, 3], [2.5]), 'tensor', [2.5]);
    expectOpError(() => t([4]).reshape([2.5, 2]), 'reshape', [2.5, 2]);
    expectOpError(() => expand(t([1]), [-3]), 'expand', [-3]);
    expectOpError(() => Tensor.empty([3, -1], 'f32', undefined, 'myop'), 'myop', [3, -1]);
  });

  it('inputs on different backends', () => {
    if (!hasWebGPU()) return;
    const g = t([3], 'f32', 'webgpu'), c = t([3], 'f32', 'cpu');
    expectOpError(() => binary('add', g, c), 'add');
    expectOpError(() => concat([g, c], 0), 'concat', [3]);
    expectOpError(() => gather(g, tensor([0], [1], { dtype: 'i32', device: 'cpu' }), 0), 'gather', [3], [1]);
  });
});
