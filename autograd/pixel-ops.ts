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
import { div, sum } from './ops.js';
import { defineOp } from './table.js';
import { isGradEnabled, noGrad } from './tape.js';

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
  /** ∂loss_i/∂z_i, kept by the forward for the backward */
  grad?: Tensor | null;
  /** per-position target weights (0 where ignored), for the 'mean' denominator */
  weight?: Tensor | null;
}

const crossEntropyOp = defineOp<CEAttrs>('pixelCrossEntropy', {
  forward: ([z, labels, w], a) => {
    const r = softmaxCrossEntropy(z, labels, { axis: a.axis, ignoreIndex: a.ignoreIndex, weight: w });
    if (isGradEnabled() && z.requiresGrad) a.grad = r.grad;
    else r.grad.dispose();
    a.weight = r.weight;
    return r.loss;
  },
  // the per-position gradient scaled by the upstream gradient, broadcast along the class axis
  backward: (g, { inputs: [z], attrs: a }) => {
    const outer = shapeSize(z.shape.slice(0, a.axis)), C = z.shape[a.axis], inner = shapeSize(z.shape.slice(a.axis + 1));
    const gz = g.reshape([outer, 1, inner]), dz = a.grad!.reshape([outer, C, inner]);
    const prod = binary('mul', dz, gz);
    gz.dispose();
    dz.dispose();
    a.grad!.dispose();
    a.grad = null;
    const out = prod.reshape(z.shape);
    prod.dispose();
    return [out, null, null];
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
  const attrs: CEAttrs = { axis, ignoreIndex: opts.ignoreIndex ?? -100 };
  const per = crossEntropyOp(w ? [logits, labels, w] : [logits, labels], attrs);
  if (w && w !== opts.weight) w.dispose();
  const pw = attrs.weight!;
  attrs.weight = null;
  if (reduction === 'none') {
    pw.dispose();
    return per;
  }
  const total = sum(per);
  if (reduction === 'sum') {
    pw.dispose();
    return total;
  }
  const denom = noGrad(() => sumRaw(pw));
  pw.dispose();
  return div(total, denom);
}

/**
 * Nearest-neighbour upsampling as F.interpolate(x, size | scale_factor, mode='nearest') for
 * x [N, C, H, W] or [C, H, W]; the backward sums each input pixel's output block.
 */
export const upsampleNearest = (x: Tensor, opts: UpsampleOptions): Tensor => upsampleNearestOp([x], { ...opts });
