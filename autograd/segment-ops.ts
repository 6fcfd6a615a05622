// The segment entries of the op table (autograd/table.ts): sum, max and softmax over the segments of
// a CSR index (kernels/segment.ts), each forward beside its backward rule. Offsets and perm are
// integer inputs and get no gradient.

import { segmentMax as segmentMaxRaw, segmentMaxBackward, segmentSoftmax as segmentSoftmaxRaw, segmentSoftmaxBackward, segmentSum as segmentSumRaw, segmentSumBackward } from '../kernels/segment.js';
import type { Tensor } from '../kernels/tensor.js';
import { defineOp } from './table.js';

const segmentSumOp = defineOp<object>('segmentSum', {
  forward: ([values, offsets, perm]) => segmentSumRaw(values, offsets, { perm }),
  // each position passes its segment's gradient back to its row
  backward: (g, { inputs: [values, offsets, perm] }) => [segmentSumBackward(g, offsets, values.shape[0], { perm }), null, ...(perm ? [null] : [])],
}, 'segment');

const segmentMaxOp = defineOp<object, { argmax: Tensor }>('segmentMax', {
  forward: ([values, offsets, perm], _a, ctx) => {
    const { values: out, argmax } = segmentMaxRaw(values, offsets, { perm });
    // the winning row of each (segment, feature), kept for the backward (save frees it at once
    // when nothing is recorded)
    ctx.save({ argmax });
    return out;
  },
  // the gradient goes to the row that won (the first maximum): dvalues[argmax[s, f], f] = g[s, f]
  backward: (g, { inputs: [values, , perm], saved }) => [segmentMaxBackward(g, saved.argmax, values.shape[0]), null, ...(perm ? [null] : [])],
}, 'segment');

const segmentSoftmaxOp = defineOp<object>('segmentSoftmax', {
  forward: ([values, offsets]) => segmentSoftmaxRaw(values, offsets),
  backward: (g, { inputs: [, offsets], out }) => [segmentSoftmaxBackward(out, g, offsets), null],
}, 'segment');

/** Differentiable Σ over each segment of values [nnz, ...F] → [S, ...F] (offsets i32 [S+1]; perm from buildCSR, optional). */
export const segmentSum = (values: Tensor, offsets: Tensor, perm?: Tensor): Tensor => segmentSumOp(perm ? [values, offsets, perm] : [values, offsets], {});
/** Differentiable max over each segment (0 for an empty one); the gradient goes to the first maximum. */
export const segmentMax = (values: Tensor, offsets: Tensor, perm?: Tensor): Tensor => segmentMaxOp(perm ? [values, offsets, perm] : [values, offsets], {});
/** Differentiable softmax over the rows of each segment, per column, for values [nnz, ...F] in CSR order. */
export const segmentSoftmax = (values: Tensor, offsets: Tensor): Tensor => segmentSoftmaxOp([values, offsets], {});
