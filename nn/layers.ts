// The standard layers, with torch.nn's parameter names, shapes and default initialisation. Each
// forward calls the differentiable functional ops (autograd/ops.ts, conv-ops.ts, nn-ops.ts).

import { backend, type Backend } from '../kernels/device.js';
import { full } from '../kernels/creation.js';
import { mapN, unary } from '../kernels/elementwise.js';
import { check, fmtShape, normAxis } from '../kernels/errors.js';
import { pairOf, type Pair } from '../kernels/dims.js';
import { random } from '../kernels/random.js';
import { sum as reduceSum } from '../kernels/reduce.js';
import { scope, Tensor } from '../kernels/tensor.js';
import { add, div, matmul, maximum, relu, reshape, sqrt, square, sum } from '../autograd/ops.js';
import { conv2d, convTranspose2d } from '../autograd/conv-ops.js';
import { adaptiveAvgPool2d, avgPool2d, batchNorm2d, dropout, maxPool2d } from '../autograd/nn-ops.js';
import { constant, copyInto, fans, fill, kaimingUniform, uniform } from './init.js';
import { Module, parameter, type Parameter } from './module.js';

export type { Pair };

export interface DeviceOption {
  /** Where the parameters live (default: the active backend). */
  device?: Backend;
}

const param = (shape: number[], device: Backend, op: string): Parameter => parameter(Tensor.empty(shape, 'f32', device, op));

function checkRank4(op: string, x: Tensor, channels: number): void {
  check(x.rank === 4 && x.shape[1] === channels, op, () => `expects an input [N, ${channels}, H, W], got ${fmtShape(x.shape)}`);
}

/** Bias init of torch's Linear and Conv: U(−1/√fan_in, 1/√fan_in). */
function initBias(bias: Parameter, weight: Parameter): void {
  const { fanIn } = fans(weight.shape);
  const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
  uniform(bias, -bound, bound);
}

export interface LinearOptions extends DeviceOption {
  bias?: boolean;
}

/** y = x Wᵀ + b, W [out, in]. */
export class Linear extends Module {
  weight: Parameter;
  bias: Parameter | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    { bias = true, device = backend() }: LinearOptions = {},
  ) {
    super();
    this.weight = param([outFeatures, inFeatures], device, 'Linear');
    this.bias = bias ? param([outFeatures], device, 'Linear') : null;
    this.resetParameters();
  }

  /** torch's default: W ~ kaiming_uniform(a=√5), i.e. U(−1/√in, 1/√in); b ~ U(−1/√in, 1/√in). */
  resetParameters(): void {
    kaimingUniform(this.weight, { a: Math.sqrt(5) });
    if (this.bias) initBias(this.bias, this.weight);
  }

  forward(x: Tensor): Tensor {
    check(x.rank >= 1 && x.shape[x.rank - 1] === this.inFeatures, 'Linear', () => `expects an input [..., ${this.inFeatures}], got ${fmtShape(x.shape)}`);
    if (x.rank === 1) return reshape(this.forward(reshape(x, [1, this.inFeatures])), [this.outFeatures]);
    const y = matmul(x, this.weight, { transB: true });
    return this.bias ? add(y, this.bias) : y;
  }
}

/** x / max(‖x‖₂, eps) along `axis` (torch.nn.functional.normalize). */
export function normalize(x: Tensor, axis: number, eps = 1e-12): Tensor {
  const norm = sqrt(sum(square(x), normAxis('normalize', axis, x.rank), true));
  return div(x, maximum(norm, full([], eps, { device: x.device })));
}

/**
 * The cosine classifier of LDAM-DRW (Cao et al. 2019, models/resnet_cifar.py): y = x/‖x‖ · W/‖W‖
 * with W [in, out] normalised per column; no bias, no scale (the loss applies s).
 */
export class NormedLinear extends Module {
  weight: Parameter;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    { device = backend() }: DeviceOption = {},
  ) {
    super();
    this.weight = param([inFeatures, outFeatures], device, 'NormedLinear');
    this.resetParameters();
  }

  /** Their init: W ~ U(−1, 1), then renorm_(2, 1, 1e-5).mul_(1e5): each column w ← w · 1e-5/(‖w‖ + 1e-7) · 1e5. */
  resetParameters(): void {
    fill(this.weight, (device) =>
      scope(() => {
        const u = random('uniform', this.weight.shape, { device, a: -1, b: 1 });
        const norms = unary('sqrt', reduceSum(unary('square', u), 0, true));
        return mapN('renorm', [u, norms], 'f32', ([w, n]) => `${w} * (1e-5 / (${n} + 1e-7) * 1e5)`, ([w, n]) => w * ((1e-5 / (n + 1e-7)) * 1e5));
      }),
    );
  }

  forward(x: Tensor): Tensor {
    check(x.rank === 2 && x.shape[1] === this.inFeatures, 'NormedLinear', () => `expects an input [N, ${this.inFeatures}], got ${fmtShape(x.shape)}`);
    return matmul(normalize(x, 1), normalize(this.weight, 0));
  }
}

/** The hyper-parameters Conv2d and ConvTranspose2d share, checked and as [h, w] pairs. */
function convHyper(name: string, inChannels: number, outChannels: number, kernelSize: Pair, stride: Pair, padding: Pair, dilation: Pair, groups: number) {
  check(Number.isInteger(groups) && groups > 0 && inChannels % groups === 0 && outChannels % groups === 0, name, `in (${inChannels}) and out (${outChannels}) channels must be divisible by groups (${groups})`);
  return { kernelSize: pairOf(kernelSize), stride: pairOf(stride), padding: pairOf(padding), dilation: pairOf(dilation), groups };
}

export interface Conv2dOptions extends DeviceOption {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

/** 2-D convolution (cross-correlation) with weight [out, in/groups, kh, kw], as torch.nn.Conv2d. */
export class Conv2d extends Module {
  weight: Parameter;
  bias: Parameter | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    { stride = 1, padding = 0, dilation = 1, groups = 1, bias = true, device = backend() }: Conv2dOptions = {},
  ) {
    super();
    ({ kernelSize: this.kernelSize, stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups } = convHyper('Conv2d', inChannels, outChannels, kernelSize, stride, padding, dilation, groups));
    this.weight = param([outChannels, inChannels / groups, ...this.kernelSize], device, 'Conv2d');
    this.bias = bias ? param([outChannels], device, 'Conv2d') : null;
    this.resetParameters();
  }

  /** torch's default: W ~ kaiming_uniform(a=√5), b ~ U(−1/√fan_in, 1/√fan_in), fan_in = in/groups·kh·kw. */
  resetParameters(): void {
    kaimingUniform(this.weight, { a: Math.sqrt(5) });
    if (this.bias) initBias(this.bias, this.weight);
  }

  forward(x: Tensor): Tensor {
    checkRank4('Conv2d', x, this.inChannels);
    return conv2d(x, this.weight, this.bias, { stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups });
  }
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  /** extra rows/columns at the bottom/right of the output (smaller than the stride or the dilation) */
  outputPadding?: Pair;
}

/**
 * torch.nn.ConvTranspose2d: weight [in, out/groups, kh, kw], bias [out]; the output size is
 * (H − 1)·stride − 2·padding + dilation·(kh − 1) + outputPadding + 1 (e.g. the mask head's 2×
 * up-sampling: kernel 2, stride 2).
 */
export class ConvTranspose2d extends Module {
  weight: Parameter;
  bias: Parameter | null;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly outputPadding: [number, number];
  readonly dilation: [number, number];
  readonly groups: number;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    { stride = 1, padding = 0, outputPadding = 0, dilation = 1, groups = 1, bias = true, device = backend() }: ConvTranspose2dOptions = {},
  ) {
    super();
    ({ kernelSize: this.kernelSize, stride: this.stride, padding: this.padding, dilation: this.dilation, groups: this.groups } = convHyper('ConvTranspose2d', inChannels, outChannels, kernelSize, stride, padding, dilation, groups));
    this.outputPadding = pairOf(outputPadding);
    for (const i of [0, 1]) {
      check(this.outputPadding[i] < this.stride[i] || this.outputPadding[i] < this.dilation[i], 'ConvTranspose2d',
        `outputPadding (${this.outputPadding}) must be smaller than either stride (${this.stride}) or dilation (${this.dilation})`);
    }
    this.weight = param([inChannels, outChannels / groups, ...this.kernelSize], device, 'ConvTranspose2d');
    this.bias = bias ? param([outChannels], device, 'ConvTranspose2d') : null;
    this.resetParameters();
  }

  /** torch's default: W ~ kaiming_uniform(a=√5), b ~ U(−1/√fan_in, 1/√fan_in), with torch's fan_in of this weight = out/groups·kh·kw. */
  resetParameters(): void {
    kaimingUniform(this.weight, { a: Math.sqrt(5) });
    if (this.bias) initBias(this.bias, this.weight);
  }

  forward(x: Tensor): Tensor {
    checkRank4('ConvTranspose2d', x, this.inChannels);
    return convTranspose2d(x, this.weight, this.bias, {
      stride: this.stride, padding: this.padding, outputPadding: this.outputPadding, dilation: this.dilation, groups: this.groups,
    });
  }
}

export interface BatchNormOptions extends DeviceOption {
  eps?: number;
  momentum?: number;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/**
 * Batch normalisation over (N, H, W) per channel (Ioffe & Szegedy 2015), as torch.nn.BatchNorm2d:
 * training uses the batch statistics and moves running_mean/var by `momentum`; eval uses them.
 */
export class BatchNorm2d extends Module {
  weight: Parameter | null;
  bias: Parameter | null;
  declare running_mean: Tensor | null;
  declare running_var: Tensor | null;
  /** Training steps seen; an i32 scalar (int64 in torch). */
  declare num_batches_tracked: Tensor | null;
  readonly eps: number;
  readonly momentum: number;

  constructor(
    readonly numFeatures: number,
    { eps = 1e-5, momentum = 0.1, affine = true, trackRunningStats = true, device = backend() }: BatchNormOptions = {},
  ) {
    super();
    this.eps = eps;
    this.momentum = momentum;
    this.weight = affine ? param([numFeatures], device, 'BatchNorm2d') : null;
    this.bias = affine ? param([numFeatures], device, 'BatchNorm2d') : null;
    this.registerBuffer('running_mean', trackRunningStats ? full([numFeatures], 0, { device }) : null);
    this.registerBuffer('running_var', trackRunningStats ? full([numFeatures], 1, { device }) : null);
    this.registerBuffer('num_batches_tracked', trackRunningStats ? full([], 0, { device, dtype: 'i32' }) : null);
    this.resetParameters();
  }

  /** weight 1, bias 0 */
  resetParameters(): void {
    if (this.weight) constant(this.weight, 1);
    if (this.bias) constant(this.bias, 0);
  }

  forward(x: Tensor): Tensor {
    checkRank4('BatchNorm2d', x, this.numFeatures);
    if (this.training && this.num_batches_tracked) this.countBatch(this.num_batches_tracked);
    // batch statistics when training or when no running statistics are kept (batchNorm2d decides)
    return batchNorm2d(x, this.weight, this.bias, this.running_mean, this.running_var, { training: this.training, momentum: this.momentum, eps: this.eps });
  }

  private countBatch(counter: Tensor): void {
    const next = mapN('numBatchesTracked', [counter], 'i32', ([n]) => `${n} + 1i`, ([n]) => n + 1);
    copyInto(counter, next);
    next.dispose();
  }
}

export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export interface MaxPool2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  ceilMode?: boolean;
}

export class MaxPool2d extends Module {
  constructor(
    readonly kernelSize: Pair,
    readonly opts: MaxPool2dOptions = {},
  ) {
    super();
  }

  forward(x: Tensor): Tensor {
    return maxPool2d(x, { kernelSize: this.kernelSize, ...this.opts });
  }
}

export interface AvgPool2dOptions {
  stride?: Pair;
  padding?: Pair;
  ceilMode?: boolean;
  countIncludePad?: boolean;
}

export class AvgPool2d extends Module {
  constructor(
    readonly kernelSize: Pair,
    readonly opts: AvgPool2dOptions = {},
  ) {
    super();
  }

  forward(x: Tensor): Tensor {
    return avgPool2d(x, { kernelSize: this.kernelSize, ...this.opts });
  }
}

export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: Pair) {
    super();
  }

  forward(x: Tensor): Tensor {
    return adaptiveAvgPool2d(x, pairOf(this.outputSize));
  }
}

/** Zeroes each element with probability p while training and scales the rest by 1/(1−p) (Srivastava et al. 2014). */
export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    check(p >= 0 && p <= 1, 'Dropout', `probability must be in [0, 1], got ${p}`);
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, { training: this.training });
  }
}

/** Merges dims startDim..endDim into one (torch.nn.Flatten). */
export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }

  forward(x: Tensor): Tensor {
    const s = normAxis('Flatten', this.startDim, x.rank);
    const e = normAxis('Flatten', this.endDim, x.rank);
    check(s <= e, 'Flatten', `startDim ${this.startDim} comes after endDim ${this.endDim} for ${fmtShape(x.shape)}`);
    return reshape(x, [...x.shape.slice(0, s), -1, ...x.shape.slice(e + 1)]);
  }
}

export class Identity extends Module {
  forward(x: Tensor): Tensor {
    return x;
  }
}
