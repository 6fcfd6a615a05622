// The per-pixel entries of the op table (autograd/table.ts): softmax and log-softmax along a chosen
// axis, fused cross-entropy with ignoreIndex and class weights (kernels/softmax-axis.ts), and
// nearest-neighbour upsampling (kernels/upsample.ts), each forward beside its backward rule.

import { binary } from '../kernels/elementwise.js';
import { check, fmtShape, normAxis } from '../kernels/errors.js';
import { tensor } from '../kernels/creation.js';
import { sum as sumRaw } from '../kernels/reduce.js';
import {
  logSoftmaxAxis as logSoftmaxAxisRaw, logSoftmaxAxisBackward, softmaxAxis as softmaxAxisRaw, softmaxAxisBackward, softmaxCrossEntropy,
} from '../kernels/softmax-axis.js';
import { nearestGeometry, upsampleNearest as upsampleNearestRaw, upsampleNearestBackward, type UpsampleOptions } from '../kernels/upsample.js';
import { shapeSize, type Tensor } from '../kernels/tensor.js';
import { defineOp } from './table.js';

const softmaxAxisOp = defineOp<{ axis: number }>('softmaxAxis', {
  forward: ([x], a) => softmaxAxisRaw(x, a.axis),
  backward: (g, { out, attrs: a }) => [softmaxAxisBackward(out, g, a.axis)],
}, 'pixel');

const logSoftmaxAxisOp = defineOp<{ axis: number }>('logSoftmaxAxis', {
  forward: ([x], a) => logSoftmaxAxisRaw(x, a.axis),
  backward: (g, { out, attrs: a }) => [logSoftmaxAxisBackward(out, g, a.axis)],
}, 'pixel');

interface CEAttrs {
  axis: number;
  ignoreIndex: number;
  reduction: 'mean' | 'sum' | 'none';
}

// one op, reduction included: a composite (per-position op, then sum and div) would leave its
// intermediates alive outside a scope
const crossEntropyOp = defineOp<CEAttrs, { grad: Tensor; denom?: Tensor }>('pixelCrossEntropy', {
  forward: ([z, labels, w], a, ctx) => {
    const r = softmaxCrossEntropy(z, labels, { axis: a.axis, ignoreIndex: a.ignoreIndex, weight: w });
    if (a.reduction === 'none') {
      r.weight.dispose();
      // ∂loss_i/∂z_i, kept for the backward (save frees it at once when nothing is recorded)
      ctx.save({ grad: r.grad });
      return r.loss;
    }
    const total = sumRaw(r.loss);
    r.loss.dispose();
    if (a.reduction === 'sum') {
      r.weight.dispose();
      ctx.save({ grad: r.grad });
      return total;
    }
    // 'mean': Σ loss / Σ_{not ignored} w_y
    const denom = sumRaw(r.weight);
    r.weight.dispose();
    const out = binary('div', total, denom);
    total.dispose();
    ctx.save({ grad: r.grad, denom });
    return out;
  },
  // the per-position gradient scaled by the upstream gradient (per position for 'none', divided by
  // the weight sum for 'mean'), broadcast along the class axis; the tape runs a backward rule in a
  // scope, which frees the views and the scaled g
  backward: (g, { inputs: [z], attrs: a, saved }) => {
    const outer = shapeSize(z.shape.slice(0, a.axis)), C = z.shape[a.axis], inner = shapeSize(z.shape.slice(a.axis + 1));
    const dz = saved.grad.reshape([outer, C, inner]);
    const scale = a.reduction === 'none' ? g.reshape([outer, 1, inner])
      : (saved.denom ? binary('div', g, saved.denom) : g).reshape([1, 1, 1]);
    return [binary('mul', dz, scale).reshape(z.shape), null, null];
  },
}, 'pixel');

const upsampleNearestOp = defineOp<UpsampleOptions>('upsampleNearest', {
  forward: ([x], a) => upsampleNearestRaw(x, a),
  backward: (g, { inputs: [x], attrs: a }) => [upsampleNearestBackward(g, x.shape, nearestGeometry('upsampleNearest', x, a))],
}, 'pixel');

/** Differentiable softmax along `axis` (axis 1 of [N, C, H, W]: per pixel over the classes). */
export const softmaxAxis = (x: Tensor, axis: number): Tensor => softmaxAxisOp([x], { axis: normAxis('softmaxAxis', axis, x.rank) });
/** Differentiable log-softmax along `axis`. */
export const logSoftmaxAxis = (x: Tensor, axis: number): Tensor => logSoftmaxAxisOp([x], { axis: normAxis('logSoftmaxAxis', axis, x.rank) });

export interface PixelCrossEntropyOptions {
  /** the class axis of the logits (default 1: [N, C, d1, ...] as torch) */
  axis?: number;
  /** targets with this value give no loss and no gradient and are left out of the mean (default −100, as torch) */
  ignoreIndex?: number;
  /** class weights [C] (a tensor on the logits' backend, or numbers) */
  weight?: Tensor | ArrayLike<number>;
  /** 'mean' (default): Σ loss / Σ_{not ignored} w_y; 'sum'; 'none': per position */
  reduction?: 'mean' | 'sum' | 'none';
}

/**
 * torch.nn.functional.cross_entropy with class-index targets over any class axis, for per-pixel
 * losses: logits [N, C, H, W], labels i32 [N, H, W]; loss_i = −w_{y_i} log softmax(z_i)_{y_i}.
 * With every target ignored, 'mean' is 0/0 = NaN (as torch).
 */
export function pixelCrossEntropy(logits: Tensor, labels: Tensor, opts: PixelCrossEntropyOptions = {}): Tensor {
  const op = 'pixelCrossEntropy';
  check(logits.rank >= 1, op, () => `needs logits of rank >= 1, got ${fmtShape(logits.shape)}`);
  const axis = normAxis(op, opts.axis ?? 1, logits.rank);
  const reduction = opts.reduction ?? 'mean';
  check(['mean', 'sum', 'none'].includes(reduction), op, `reduction must be 'mean', 'sum' or 'none', got '${reduction}'`);
  const w = opts.weight === undefined ? undefined
    : 'shape' in opts.weight && 'dtype' in opts.weight ? (opts.weight as Tensor)
      : tensor(opts.weight as ArrayLike<number>, [(opts.weight as ArrayLike<number>).length], { device: logits.device });
  const loss = crossEntropyOp(w ? [logits, labels, w] : [logits, labels], { axis, ignoreIndex: opts.ignoreIndex ?? -100, reduction });
  if (w && w !== opts.weight) w.dispose();
  return loss;
}

/**
 * Nearest-neighbour upsampling as F.interpolate(x, size | scale_factor, mode='nearest') for
 * x [N, C, H, W] or [C, H, W]; the backward sums each input pixel's output block.
 */
export const upsampleNearest = (x: Tensor, opts: UpsampleOptions): Tensor => upsampleNearestOp([x], { ...opts });
