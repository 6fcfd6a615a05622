// Classifier heads on pooled features x [N, D] → logits [N, C]: the dot-product (linear) head, the
// cosine head, the τ-normalised head (Kang et al.) and TDE's causal-norm multi-head classifier
// (Tang et al.). Each is an nn Module with PyTorch's parameter names, so stage-1 checkpoints move
// between this framework and the official code.

import { backend, type Backend } from '../kernels/device.js';
import { clone, full } from '../kernels/creation.js';
import { binary, unary } from '../kernels/elementwise.js';
import { check, fmtShape } from '../kernels/errors.js';
import { mean as meanRaw, sum as sumRaw } from '../kernels/reduce.js';
import { scope, Tensor } from '../kernels/tensor.js';
import { add, div, matmul, mul, mulScalar, reshape, sqrt, square, sub, sum } from '../autograd/ops.js';
import { noGrad } from '../autograd/tape.js';
import { copyInto, uniform } from '../nn/init.js';
import { Linear, NormedLinear, normalize, type DeviceOption } from '../nn/layers.js';
import { Module, parameter, type Parameter } from '../nn/module.js';

/** A classifier head: features [N, inFeatures] → logits [N, numClasses]. */
export interface Head extends Module {
  readonly inFeatures: number;
  readonly numClasses: number;
  forward(x: Tensor): Tensor;
}

/** Throws a named error unless D and C are positive integers. */
export function checkHeadSize(op: string, inFeatures: number, numClasses: number): void {
  check(Number.isInteger(inFeatures) && inFeatures > 0, op, `the feature size must be a positive integer, got ${inFeatures}`);
  check(Number.isInteger(numClasses) && numClasses > 0, op, `the class count must be a positive integer, got ${numClasses}`);
}

/** Throws a named error unless x is an f32 [N, D] feature matrix. */
export function checkFeatures(op: string, x: Tensor, inFeatures: number): void {
  check(!x.isDisposed, op, 'the features were used after dispose()');
  check(x.dtype === 'f32' && x.rank === 2 && x.shape[1] === inFeatures, op, () => `expects f32 features [N, ${inFeatures}], got ${x.dtype} ${fmtShape(x.shape)}`);
}

/** Where a head's parameters (or buffers) live. */
export function headDevice(head: Module): Backend {
  return (head.parameters()[0] ?? head.buffers()[0])?.device ?? backend();
}

// ---------------------------------------------------------------- linear

/** z = W x + b (Decoupling's DotProduct_Classifier: parameters fc.weight [C, D], fc.bias [C]). */
export class LinearHead extends Module implements Head {
  fc: Linear;

  constructor(
    readonly inFeatures: number,
    readonly numClasses: number,
    { bias = true, device = backend() }: DeviceOption & { bias?: boolean } = {},
  ) {
    super();
    checkHeadSize('LinearHead', inFeatures, numClasses);
    this.fc = new Linear(inFeatures, numClasses, { bias, device });
  }

  forward(x: Tensor): Tensor {
    checkFeatures('LinearHead', x, this.inFeatures);
    return this.fc.forward(x);
  }
}

// ---------------------------------------------------------------- cosine

export interface CosineHeadOptions extends DeviceOption {
  /** The logit scale s (default 16). */
  scale?: number;
  /** Learn s, initialised to `scale` (cvpods NormalizedLinear scale_mode='learn'); default fixed. */
  learnScale?: boolean;
  /**
   * 'rows' (default): weight [C, D], normalised per row, torch Linear's layout (cvpods
   * NormalizedLinear). 'columns': weight [D, C], normalised per column, LDAM-DRW's NormedLinear.
   */
  layout?: 'rows' | 'columns';
}

/**
 * z_j = s·(w_j·x)/(‖w_j‖‖x‖) (cosine classifier; cvpods NormalizedLinear with feat_norm, and LDAM's
 * NormedLinear times s, Cao et al. NeurIPS 2019). Parameters: weight, and scale [1] when learnt.
 */
export class CosineHead extends Module implements Head {
  weight: Parameter;
  scale: Parameter | number;
  readonly layout: 'rows' | 'columns';

  constructor(
    readonly inFeatures: number,
    readonly numClasses: number,
    { scale = 16, learnScale = false, layout = 'rows', device = backend() }: CosineHeadOptions = {},
  ) {
    super();
    checkHeadSize('CosineHead', inFeatures, numClasses);
    check(Number.isFinite(scale) && scale > 0, 'CosineHead', `scale must be a positive number, got ${scale}`);
    this.layout = layout;
    if (layout === 'columns') {
      // LDAM's own initialisation (U(−1, 1), columns renormalised), through their layer
      this.weight = new NormedLinear(inFeatures, numClasses, { device }).weight;
    } else {
      // torch Linear's default, as cvpods NormalizedLinear.reset_parameters
      this.weight = new Linear(inFeatures, numClasses, { bias: false, device }).weight;
    }
    this.scale = learnScale ? parameter(full([1], scale, { device })) : scale;
  }

  forward(x: Tensor): Tensor {
    checkFeatures('CosineHead', x, this.inFeatures);
    const cos = this.layout === 'columns'
      ? matmul(normalize(x, 1), normalize(this.weight, 0))
      : matmul(normalize(x, 1), normalize(this.weight, 1), { transB: true });
    return typeof this.scale === 'number' ? mulScalar(cos, this.scale) : mul(cos, this.scale);
  }
}

// ---------------------------------------------------------------- τ-normalised

/** w_j / ‖w_j‖^τ for each row of W [C, D] (Kang et al., ICLR 2020, classifier-balancing tau_norm.py pnorm). Not differentiable. */
export function tauNormalizedWeight(weight: Tensor, tau: number): Tensor {
  const op = 'tauNormalizedWeight';
  check(weight.dtype === 'f32' && weight.rank === 2, op, `expects a weight [C, D], got ${weight.dtype} ${fmtShape(weight.shape)}`);
  check(Number.isFinite(tau), op, `tau must be a finite number, got ${tau}`);
  return noGrad(() => scope(() => {
    const norms = unary('sqrt', sumRaw(unary('square', weight), 1, true));
    return binary('div', weight, unary('pow', norms, tau));
  }));
}

/**
 * ẑ_j = (w_j/‖w_j‖^τ)·x (+ b_j with keepBias) (Kang et al., "Decoupling Representation and
 * Classifier", ICLR 2020). Their tau_norm.py scores features with the normalised weights only: the
 * bias is dropped, which is the default here. Holds the normalised weight (and bias) as buffers.
 */
export class TauNormHead extends Module implements Head {
  declare weight: Tensor;
  declare bias: Tensor | null;
  readonly inFeatures: number;
  readonly numClasses: number;

  constructor(
    fc: Linear,
    readonly tau: number,
    { keepBias = false }: { keepBias?: boolean } = {},
  ) {
    super();
    [this.numClasses, this.inFeatures] = fc.weight.shape;
    this.registerBuffer('weight', tauNormalizedWeight(fc.weight, tau));
    this.registerBuffer('bias', keepBias && fc.bias ? clone(fc.bias) : null);
  }

  forward(x: Tensor): Tensor {
    checkFeatures('TauNormHead', x, this.inFeatures);
    const z = matmul(x, this.weight, { transB: true });
    return this.bias ? add(z, this.bias) : z;
  }
}

// ---------------------------------------------------------------- TDE causal-norm classifier

export interface CausalNormOptions extends DeviceOption {
  /** K: the feature and the weights are normalised in K equal slices (default 2). */
  numHeads?: number;
  /** τ: logits are τ/K Σ_k (default 16). */
  tau?: number;
  /** γ: the weight norm is ‖w_k‖ + γ (default 1/32). */
  gamma?: number;
  /** α: the strength of the removed effect at inference (default 3, ImageNet-LT; their CIFAR configs use 1.5). */
  alpha?: number;
  /** μ: the feature moving average is x̄ ← μ·x̄ + mean_batch(x) (default 0.9; see tdeMomentum for the official schedule outside CIFAR). */
  momentum?: number;
}

/**
 * The moving-average momentum of TDE's official stage 1 outside CIFAR (Long-Tailed-Recognition.pytorch,
 * run_networks.py train(): at the start of each epoch, after the scheduler's step, μ = 1 − (1 − 0.9)·min(50·lr, 1)
 * with lr the epoch's largest learning rate): 0.9 while lr ≥ 0.02, rising towards 1 as the
 * schedule anneals, so late epochs' features fade more slowly. Their CIFAR runs keep μ = 0.9.
 */
export function tdeMomentum(lr: number): number {
  check(Number.isFinite(lr) && lr >= 0, 'tdeMomentum', `lr must be a non-negative number, got ${lr}`);
  return 1 - (1 - 0.9) * Math.min(lr * 50, 1);
}

/**
 * TDE's causal-norm classifier (Tang et al., "Long-Tailed Classification by Keeping the Good and
 * Removing the Bad Momentum Causal Effect", NeurIPS 2020; Causal_Norm_Classifier):
 * z_j = τ/K Σ_k w_jk·x_k / ((‖w_jk‖ + γ)‖x_k‖), the feature split in K heads. Parameter `weight`
 * [C, D]; buffer `embed_mean` [D], the moving average x̄ that training forwards accumulate as their
 * code does (x̄ ← μ x̄ + mean(x), without a 1 − μ factor: only its direction is used).
 */
export class CausalNormHead extends Module implements Head {
  weight: Parameter;
  declare embed_mean: Tensor;
  readonly numHeads: number;
  readonly tau: number;
  readonly gamma: number;
  readonly alpha: number;
  /** μ of accumulate(); a stage-1 loop may move it each epoch (tdeMomentum). */
  momentum: number;

  constructor(
    readonly inFeatures: number,
    readonly numClasses: number,
    { numHeads = 2, tau = 16, gamma = 1 / 32, alpha = 3, momentum = 0.9, device = backend() }: CausalNormOptions = {},
  ) {
    super();
    const op = 'CausalNormHead';
    checkHeadSize(op, inFeatures, numClasses);
    check(Number.isInteger(numHeads) && numHeads > 0 && inFeatures % numHeads === 0, op, `numHeads (${numHeads}) must divide the feature size ${inFeatures}`);
    for (const [name, v] of [['tau', tau], ['gamma', gamma], ['alpha', alpha], ['momentum', momentum]] as const) {
      check(Number.isFinite(v) && v >= 0, op, `${name} must be a non-negative number, got ${v}`);
    }
    this.numHeads = numHeads;
    this.tau = tau;
    this.gamma = gamma;
    this.alpha = alpha;
    this.momentum = momentum;
    this.weight = parameter(Tensor.empty([numClasses, inFeatures], 'f32', device, op));
    // their reset_parameters: U(−1/√D, 1/√D)
    uniform(this.weight, -1 / Math.sqrt(inFeatures), 1 / Math.sqrt(inFeatures));
    this.registerBuffer('embed_mean', full([inFeatures], 0, { device }));
  }

  /** The per-head slices of t [R, D] as [R, K, D/K]. */
  private heads(t: Tensor): Tensor {
    return reshape(t, [t.shape[0], this.numHeads, this.inFeatures / this.numHeads]);
  }

  /** t_k / max(‖t_k‖, 1e-12) per head: their l2_norm (guarded against a zero slice), [R, D]. */
  private unitHeads(t: Tensor): Tensor {
    return reshape(normalize(this.heads(t), 2), [t.shape[0], this.inFeatures]);
  }

  /** w_k / (‖w_k‖ + γ) per head: their causal_norm, [C, D]. */
  normedWeight(): Tensor {
    const w = this.heads(this.weight);
    const norm = sqrt(sum(square(w), 2, true));
    return reshape(div(w, add(norm, full([], this.gamma, { device: this.weight.device }))), [this.numClasses, this.inFeatures]);
  }

  /** Plain causal-norm logits; a training forward also folds the batch mean into embed_mean. */
  forward(x: Tensor): Tensor {
    checkFeatures('CausalNormHead', x, this.inFeatures);
    if (this.training) this.accumulate(x);
    return matmul(mulScalar(this.unitHeads(x), this.tau / this.numHeads), this.normedWeight(), { transB: true });
  }

  /** x̄ ← μ·x̄ + mean_batch(x) (their run_networks.py batch_forward). */
  accumulate(x: Tensor): void {
    checkFeatures('CausalNormHead.accumulate', x, this.inFeatures);
    noGrad(() => scope(() => {
      const batchMean = meanRaw(x, 0);
      copyInto(this.embed_mean, binary('add', unary('affine', this.embed_mean, this.momentum, 0), batchMean));
    }));
  }

  /**
   * De-confounded TDE logits: τ/K Σ_k (x̂_k − α·cos(x_k, x̄_k)·x̄̂_k)·w_k/(‖w_k‖ + γ), with x̂ = x/‖x‖
   * per head (their forward when use_effect and not training). `embedMean` defaults to the head's
   * embed_mean; α to the head's alpha.
   */
  tdeLogits(x: Tensor, { alpha = this.alpha, embedMean = this.embed_mean }: { alpha?: number; embedMean?: Tensor } = {}): Tensor {
    const op = 'CausalNormHead.tdeLogits';
    checkFeatures(op, x, this.inFeatures);
    check(Number.isFinite(alpha), op, `alpha must be a finite number, got ${alpha}`);
    check(embedMean.dtype === 'f32' && embedMean.size === this.inFeatures, op, () => `the feature mean must have ${this.inFeatures} values, got ${fmtShape(embedMean.shape)}`);
    const xh = this.heads(this.unitHeads(x)); // [N, K, d]
    const ch = this.heads(this.unitHeads(reshape(embedMean, [1, this.inFeatures]))); // [1, K, d]
    const cos = sum(mul(xh, ch), 2, true); // [N, K, 1]
    const removed = sub(xh, mul(mulScalar(cos, alpha), ch));
    return matmul(mulScalar(reshape(removed, [x.shape[0], this.inFeatures]), this.tau / this.numHeads), this.normedWeight(), { transB: true });
  }
}
