// Transposed 2-D convolution (torch.nn.functional.conv_transpose2d) on the convolution kernels of
// kernels/conv.ts: the transposed convolution of x by w is the input gradient (dgrad) of the
// convolution whose input is the transposed output and whose weight is w, so it reuses dgrad's
// implicit GEMM (phase-split for stride > 1, no multiplies by inserted zeros) and its float64 CPU
// reference. Its input gradient is that convolution's forward, its weight gradient that
// convolution's weight gradient.
//
// x [N, C_in, H, W], w [C_in, C_out/groups, KH, KW] (PyTorch's layout), y [N, C_out, OH, OW] with
//   OH = (H − 1)·s − 2p + d·(KH − 1) + output_padding + 1   (likewise OW)
//   y[n, g·Cog + co, h·s − p + r·d, w·s − p + c·d] += x[n, ci, h, w] · w[ci, co, r, c] (ci in group g)
// output_padding must be smaller than the stride or the dilation (as torch). Its extra rows and
// columns lie past the last position any tap reaches: they hold the bias only.

import { check, checkF32, checkInputs, fmtShape } from './errors.js';
import { pairOf } from './dims.js';
import { conv2d, conv2dInputGrad, conv2dWeightGrad, convOutputSize, type Conv2dPair } from './conv.js';
import { binary } from './elementwise.js';
import { pad, slice } from './layout.js';
import { sum } from './reduce.js';
import { Tensor, type Shape } from './tensor.js';

export interface ConvTransposeOptions {
  stride?: Conv2dPair;
  padding?: Conv2dPair;
  outputPadding?: Conv2dPair;
  dilation?: Conv2dPair;
  groups?: number;
}

export interface ConvTransposeGeometry {
  /** y's shape [N, C_out, OH, OW] */
  outShape: [number, number, number, number];
  /** the rows and columns the dgrad computes: OH, OW less any output padding no tap reaches */
  core: [number, number];
  conv: { stride: [number, number]; padding: [number, number]; dilation: [number, number]; groups: number };
}

/** Resolves and checks the geometry of conv_transpose2d(x of xShape, w of wShape). */
export function convTranspose2dGeometry(op: string, xShape: Shape, wShape: Shape, opts: ConvTransposeOptions = {}): ConvTransposeGeometry {
  const shapes = (): string => `input ${fmtShape(xShape)}, weight ${fmtShape(wShape)}`;
  check(xShape.length === 4, op, () => `expects an input [N, C_in, H, W], got ${shapes()}`);
  check(wShape.length === 4, op, () => `expects a weight [C_in, C_out/groups, KH, KW], got ${shapes()}`);
  const stride = pairOf(opts.stride ?? 1), padding = pairOf(opts.padding ?? 0), dilation = pairOf(opts.dilation ?? 1), outPad = pairOf(opts.outputPadding ?? 0);
  const groups = opts.groups ?? 1;
  check([...stride, ...padding, ...dilation, ...outPad, groups].every(Number.isInteger), op, () => `stride, padding, output_padding, dilation and groups must be integers; ${shapes()}`);
  check(stride.every((v) => v > 0) && dilation.every((v) => v > 0) && padding.every((v) => v >= 0) && outPad.every((v) => v >= 0), op,
    () => `stride and dilation must be positive, padding and output_padding non-negative, got s=${stride} p=${padding} d=${dilation} op=${outPad}`);
  for (const i of [0, 1]) {
    check(outPad[i] < stride[i] || outPad[i] < dilation[i], op, () => `output_padding (${outPad}) must be smaller than either stride (${stride}) or dilation (${dilation})`);
  }
  const [N, C, H, W] = xShape;
  const [Ci, Cog, KH, KW] = wShape;
  check(groups > 0 && C % groups === 0, op, () => `groups (${groups}) must divide the input channels (${C}); ${shapes()}`);
  check(Ci === C, op, () => `weight expects ${Ci} input channels, input has ${C}; ${shapes()}`);
  check(Cog > 0 && KH > 0 && KW > 0, op, () => `empty weight: ${shapes()}`);
  const OH = (H - 1) * stride[0] - 2 * padding[0] + dilation[0] * (KH - 1) + outPad[0] + 1;
  const OW = (W - 1) * stride[1] - 2 * padding[1] + dilation[1] * (KW - 1) + outPad[1] + 1;
  check(OH > 0 && OW > 0, op, () => `output size ${OH}x${OW} is not positive (padding ${fmtShape(padding)} too large); ${shapes()}`);
  // the convolution from the output back to x must give exactly H x W: true for OH − output_padding
  const fits = (o: number, i: number, k: number, size: number): boolean => convOutputSize(o, k, stride[i], padding[i], dilation[i]) === size;
  const core: [number, number] = [fits(OH, 0, KH, H) ? OH : OH - outPad[0], fits(OW, 1, KW, W) ? OW : OW - outPad[1]];
  return { outShape: [N, Cog * groups, OH, OW], core, conv: { stride, padding, dilation, groups } };
}

/** y = conv_transpose2d(x, w) + bias, as torch.nn.functional.conv_transpose2d. */
export function convTranspose2d(x: Tensor, w: Tensor, bias: Tensor | null, opts: ConvTransposeOptions = {}): Tensor {
  const op = 'convTranspose2d';
  const g = convTranspose2dGeometry(op, x.shape, w.shape, opts);
  checkInputs(op, bias ? [x, w, bias] : [x, w]);
  checkF32(op, ['input', x], ['weight', w], ...(bias ? [['bias', bias] as [string, Tensor]] : []));
  const [N, Co, OH, OW] = g.outShape;
  if (bias) check(bias.rank === 1 && bias.shape[0] === Co, op, () => `bias must be [${Co}], got ${fmtShape(bias.shape)} (weight ${fmtShape(w.shape)})`);
  const [ch, cw] = g.core;
  let y = conv2dInputGrad(x, w, [N, Co, ch, cw], g.conv);
  if (ch !== OH || cw !== OW) {
    const padded = pad(y, [[0, 0], [0, 0], [0, OH - ch], [0, OW - cw]]);
    y.dispose();
    y = padded;
  }
  if (!bias) return y;
  const b = bias.reshape([1, Co, 1, 1]);
  const out = binary('add', y, b);
  b.dispose();
  y.dispose();
  return out;
}

/** dx = conv2d(dy, w): the input gradient of convTranspose2d. */
export function convTranspose2dInputGrad(dy: Tensor, w: Tensor, xShape: Shape, opts: ConvTransposeOptions = {}): Tensor {
  const op = 'convTranspose2dInputGrad';
  const g = convTranspose2dGeometry(op, xShape, w.shape, opts);
  check(dy.shape.join() === g.outShape.join(), op, () => `dy must be ${fmtShape(g.outShape)}, got ${fmtShape(dy.shape)}`);
  const core = coreOf(dy, g);
  const dx = conv2d(core, w, null, g.conv);
  if (core !== dy) core.dispose();
  return dx;
}

/** dw[ci, co, r, c] = Σ x[n, ci, h, w] · dy[n, g·Cog + co, h·s − p + r·d, w·s − p + c·d]: the weight gradient of convTranspose2d. */
export function convTranspose2dWeightGrad(dy: Tensor, x: Tensor, wShape: Shape, opts: ConvTransposeOptions = {}): Tensor {
  const op = 'convTranspose2dWeightGrad';
  const g = convTranspose2dGeometry(op, x.shape, wShape, opts);
  check(dy.shape.join() === g.outShape.join(), op, () => `dy must be ${fmtShape(g.outShape)}, got ${fmtShape(dy.shape)}`);
  const core = coreOf(dy, g);
  // the convolution from y back to x has input dy and output x: its weight gradient is ours
  const dw = conv2dWeightGrad(x, core, wShape, g.conv);
  if (core !== dy) core.dispose();
  return dw;
}

/** Σ_{n, h, w} dy: the bias gradient. */
export const convTranspose2dBiasGrad = (dy: Tensor): Tensor => sum(dy, [0, 2, 3]);

/** dy without the output-padding rows and columns that no tap reaches. */
function coreOf(dy: Tensor, g: ConvTransposeGeometry): Tensor {
  const [N, Co, OH, OW] = g.outShape;
  return g.core[0] === OH && g.core[1] === OW ? dy : slice(dy, [0, 0, 0, 0], [N, Co, g.core[0], g.core[1]]);
}
