// The convolution entry of the op table (autograd/table.ts): conv2d's forward (kernels/conv.ts)
// beside its backward rule, and the public differentiable function with PyTorch's signature.

import { conv2d as conv2dRaw, conv2dGeometry, conv2dKeepColumns, conv2dInputGrad, conv2dWeightGrad, type Conv2dPair, type ConvOptions } from '../kernels/conv.js';
import { addPartial } from '../kernels/elementwise.js';
import { sum } from '../kernels/reduce.js';
import { byRows, rowsPerChunk, sliceRows } from '../kernels/split.js';
import { runtime } from '../kernels/runtime.js';
import { convTranspose2d as convTranspose2dRaw, convTranspose2dBiasGrad, convTranspose2dInputGrad, convTranspose2dWeightGrad, type ConvTransposeOptions } from '../kernels/conv-transpose.js';
import type { Tensor } from '../kernels/tensor.js';
import { defineOp } from './table.js';

export type { Conv2dPair, ConvOptions } from '../kernels/conv.js';

interface ConvAttrs {
  stride: Conv2dPair;
  padding: Conv2dPair;
  dilation: Conv2dPair;
  groups: number;
}

// A batch whose input or output exceeds one storage binding runs in chunks of images (the GEMMs
// of kernels/conv.ts bind each tensor whole): the forward and dgrad concatenate the chunks' outputs,
// wgrad sums the chunks' weight gradients in a fixed order.

/** Bytes per image of the larger of a convolution's input and output. */
function imageBytes(xShape: readonly number[], w: Tensor, a: ConvAttrs): number {
  const g = conv2dGeometry('conv2d', xShape, w.shape, a);
  return 4 * Math.max(g.C * g.H * g.W, g.Co * g.OH * g.OW);
}

/** Whether the convolution of an input xShape binds a tensor larger than one binding. */
function convOverBinding(x: Tensor, w: Tensor, a: ConvAttrs): boolean {
  return x.device !== 'cpu' && x.shape[0] * imageBytes(x.shape, w, a) > runtime().bindingLimit;
}

function weightGradByImages(g: Tensor, x: Tensor, w: Tensor, a: ConvAttrs): Tensor {
  const N = x.shape[0];
  const per = rowsPerChunk('conv2dWeightGrad', N, imageBytes(x.shape, w, a), () => `input ${x.shape.join('x')}, weight ${w.shape.join('x')}`);
  let dw: Tensor | null = null;
  for (let i = 0; i < N; i += per) {
    const [gc, xc] = [g, x].map((t) => sliceRows(t, i, Math.min(N, i + per)));
    const part = conv2dWeightGrad(gc, xc, w.shape, a);
    gc.dispose();
    xc.dispose();
    dw = addPartial(dw, part);
    runtime().flush();
  }
  return dw!;
}

const conv2dOp = defineOp<ConvAttrs, { columns?: Tensor }>('conv2d', {
  forward: ([x, w, b], a, ctx) => {
    if (convOverBinding(x, w, a)) return byRows('conv2d', [x], imageBytes(x.shape, w, a), ([xc]) => [conv2dRaw(xc, w, b ?? null, a)])[0];
    const { y, columns } = conv2dKeepColumns(x, w, b ?? null, a);
    // the unfolded input (explicit path only), kept for the weight gradient (save frees it at once
    // when nothing is recorded)
    if (columns) {
      if (w.requiresGrad) ctx.save({ columns });
      else columns.dispose();
    }
    return y;
  },
  // dx = conv_transpose(dy, w), dw = dy ⋆ x (correlation over N, OH, OW), db = Σ_{n,h,w} dy
  backward: (g, { inputs: [x, w, b], attrs: a, saved }) => {
    const split = convOverBinding(x, w, a);
    const dx = !x.requiresGrad ? null
      : split ? byRows('conv2dInputGrad', [g], imageBytes(x.shape, w, a), ([gc]) => [conv2dInputGrad(gc, w, [gc.shape[0], ...x.shape.slice(1)], a)])[0]
      : conv2dInputGrad(g, w, x.shape, a);
    const dw = !w.requiresGrad ? null : split ? weightGradByImages(g, x, w, a) : conv2dWeightGrad(g, x, w.shape, a, {}, saved.columns ?? null);
    return [dx, dw, b?.requiresGrad ? sum(g, [0, 2, 3]) : null];
  },
}, 'conv');

/**
 * 2-D convolution as torch.nn.functional.conv2d: x [N, C, H, W], weight [C_out, C/groups, KH, KW],
 * bias [C_out] or null; stride, padding and dilation are numbers or [h, w] pairs.
 */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null, { stride = 1, padding = 0, dilation = 1, groups = 1 }: ConvOptions = {}): Tensor {
  return conv2dOp(bias ? [x, weight, bias] : [x, weight], { stride, padding, dilation, groups });
}

// ---------------------------------------------------------------- transposed convolution

interface ConvTransposeAttrs {
  stride: Conv2dPair;
  padding: Conv2dPair;
  outputPadding: Conv2dPair;
  dilation: Conv2dPair;
  groups: number;
}

const convTranspose2dOp = defineOp<ConvTransposeAttrs>('convTranspose2d', {
  forward: ([x, w, b], a) => convTranspose2dRaw(x, w, b ?? null, a),
  // dx = conv2d(dy, w), dw = the convolution-from-y's weight gradient, db = Σ_{n,h,w} dy
  backward: (g, { inputs: [x, w, b], attrs: a }) => [
    x.requiresGrad ? convTranspose2dInputGrad(g, w, x.shape, a) : null,
    w.requiresGrad ? convTranspose2dWeightGrad(g, x, w.shape, a) : null,
    b?.requiresGrad ? convTranspose2dBiasGrad(g) : null,
  ],
}, 'conv');

/**
 * Transposed 2-D convolution as torch.nn.functional.conv_transpose2d: x [N, C_in, H, W], weight
 * [C_in, C_out/groups, KH, KW], bias [C_out] or null; output size
 * (H − 1)·stride − 2·padding + dilation·(KH − 1) + outputPadding + 1.
 */
export function convTranspose2d(x: Tensor, weight: Tensor, bias: Tensor | null, { stride = 1, padding = 0, outputPadding = 0, dilation = 1, groups = 1 }: ConvTransposeOptions = {}): Tensor {
  return convTranspose2dOp(bias ? [x, weight, bias] : [x, weight], { stride, padding, outputPadding, dilation, groups });
}
