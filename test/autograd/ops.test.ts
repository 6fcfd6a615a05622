import { describe, expect, it } from 'vitest';
import { tensor } from '../../index.node.js';
import * as ag from '../../autograd/ops.js';
import { OP_GROUPS } from '../../autograd/table.js';
import { gradcheck, inp, ints, fixed } from './gradcheck.js';

// One case per op-table entry (and per unary op); the last test checks none is missing.
const covered = new Set<string>();
const gc = (entry: string, name: string, f: Parameters<typeof gradcheck>[0], inputs: Parameters<typeof gradcheck>[1], tol?: number) => {
  covered.add(entry);
  it(`${name}: backward matches finite differences and the GPU matches the CPU`, async () => {
    await gradcheck(f, inputs, tol ? { tol } : undefined);
  });
};

describe('autograd op table', () => {
  // the unary entry: one generated check per op of UNARY_OPS in test/autograd/unary-grads.test.ts
  covered.add('unary');

  gc('add', 'add with broadcasting', ([a, b]) => ag.add(a, b), [inp([2, 3, 4]), inp([3, 1])]);
  gc('sub', 'sub with broadcasting', ([a, b]) => ag.sub(a, b), [inp([4, 1]), inp([5])]);
  gc('mul', 'mul with broadcasting', ([a, b]) => ag.mul(a, b), [inp([3, 1, 5]), inp([1, 4, 5])]);
  gc('div', 'div with broadcasting', ([a, b]) => ag.div(a, b), [inp([2, 5]), inp([5], 0.5, 2)]);
  gc('maximum', 'maximum', ([a, b]) => ag.maximum(a, b), [inp([4, 3]), inp([3])]);
  gc('minimum', 'minimum', ([a, b]) => ag.minimum(a, b), [inp([4, 3]), inp([4, 1])]);
  gc('where', 'where', ([c, a, b]) => ag.where(c, a, b), [{ values: [1, 0, 0, 1, 1, 0], shape: [2, 3], grad: false }, inp([2, 3]), inp([3])]);

  gc('matmul', 'matmul', ([a, b]) => ag.matmul(a, b), [inp([3, 5]), inp([5, 4])]);
  gc('matmul', 'matmul transA', ([a, b]) => ag.matmul(a, b, { transA: true }), [inp([5, 3]), inp([5, 4])]);
  gc('matmul', 'matmul transB', ([a, b]) => ag.matmul(a, b, { transB: true }), [inp([3, 5]), inp([4, 5])]);
  gc('matmul', 'matmul both transposed, batched with broadcasting', ([a, b]) => ag.matmul(a, b, { transA: true, transB: true }), [inp([2, 5, 3]), inp([4, 5])]);

  gc('reduce', 'sum over axes', ([x]) => ag.sum(x, [0, 2]), [inp([2, 3, 4])]);
  gc('reduce', 'sum keepdims', ([x]) => ag.sum(x, -1, true), [inp([3, 5])]);
  gc('reduce', 'mean', ([x]) => ag.mean(x, 1), [inp([4, 6, 2])]);
  gc('reduce', 'mean of all', ([x]) => ag.mean(x), [inp([3, 3])]);
  gc('reduce', 'max', ([x]) => ag.max(x, 1), [inp([3, 7])]);
  gc('reduce', 'min keepdims', ([x]) => ag.min(x, 0, true), [inp([5, 2])]);

  gc('softmax', 'softmax', ([x]) => ag.softmax(x), [inp([3, 7], -2, 2)]);
  gc('logSoftmax', 'logSoftmax', ([x]) => ag.logSoftmax(x), [inp([4, 5], -2, 2)]);
  gc('softmaxKL', 'softmaxKL with labels and weights', ([z, y, w]) => ag.softmaxKL(z, { labels: y, weights: w }), [inp([4, 5], -2, 2), ints([0, 4, 2, 4], [4]), fixed([5], 0.1, 1)]);
  gc('softmaxKL', 'softmaxKL with probabilities', ([z, p]) => ag.softmaxKL(z, { probs: p }), [inp([3, 6], -2, 2), fixed([3, 6], 0, 0.3)]);

  gc('reshape', 'reshape', ([x]) => ag.reshape(x, [6, 2]), [inp([3, 4])]);
  gc('permute', 'permute', ([x]) => ag.permute(x, [2, 0, 1]), [inp([2, 3, 4])]);
  gc('slice', 'slice', ([x]) => ag.slice(x, [1, 0, 2], [2, -1, 3]), [inp([4, 3, 6])]);
  gc('pad', 'pad', ([x]) => ag.pad(x, [[1, 0], [2, 3]], 0.5), [inp([2, 3])]);
  gc('concat', 'concat', ([a, b]) => ag.concat([a, b], 1), [inp([2, 3]), inp([2, 2])]);
  gc('expand', 'expand', ([x]) => ag.expand(x, [4, 3, 5]), [inp([3, 1])]);
  gc('gather', 'gather with repeated indices', ([x, i]) => ag.gather(x, i, 0), [inp([5, 3]), ints([4, 0, 4, 2], [4])]);
  gc('scatterAdd', 'scatterAdd', ([b, i, s]) => ag.scatterAdd(b, i, s, 1), [inp([2, 4]), ints([3, 1, 3], [3]), inp([2, 3])]);

  it('every core entry of the op table has a gradient check', () => {
    expect([...OP_GROUPS].filter(([k, g]) => g === 'core' && !covered.has(k)).map(([k]) => k)).toEqual([]);
  });

  it('accumulates gradients over two backward passes and through shared subgraphs', async () => {
    const x = tensor([1, 2, 3], [3], { device: 'cpu' }).requireGrad();
    const y = ag.mul(x, x); // used twice below
    ag.sum(ag.add(y, y)).backward();
    expect(Array.from(x.grad!.cpu)).toEqual([4, 8, 12]);
    ag.sum(x).backward();
    expect(Array.from(x.grad!.cpu)).toEqual([5, 9, 13]);
  });
});

describe('autograd and scopes', () => {
  it('a backward through intermediates disposed by a scope fails loudly instead of truncating the graph', async () => {
    const { scope } = await import('../../index.node.js');
    const x = tensor([1, 2, 3], [3], { device: 'cpu' }).requireGrad();
    const loss = scope(() => ag.sum(ag.exp(ag.mul(x, x))));
    expect(() => loss.backward()).toThrow(/used after dispose/);
  });
});
