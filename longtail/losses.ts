// Long-tail losses on logits z [N, C] and i32 labels [N], built from differentiable ops. Each
// returns a scalar (reduction 'mean' or 'sum') or per-sample losses ('none').
// Class weights are plain arrays (see weights.ts); they become constant tensors here.

import { check, fmtShape } from '../kernels/errors.js';
import { tensor } from '../kernels/creation.js';
import { gather as gatherRaw, oneHot } from '../kernels/indexing.js';
import type { Tensor } from '../kernels/tensor.js';
import {
  abs, add, addScalar, affine, exp, log, logSoftmax, max as maxOver, mul, mulScalar, neg, pow, reciprocal, relu, softmaxKL, sub, sum,
} from '../autograd/ops.js';
import { noGrad } from '../autograd/tape.js';
import { checkClassWeights, ldamMargins } from './weights.js';

export type Reduction = 'mean' | 'sum' | 'none';

function checkLogits(op: string, z: Tensor, labels: Tensor): [number, number] {
  check(z.rank === 2, op, `logits must be [N, C], got ${fmtShape(z.shape)}`);
  check(z.dtype === 'f32', op, `logits must be f32, got ${z.dtype}`);
  check(labels.dtype === 'i32' && labels.rank === 1 && labels.shape[0] === z.shape[0], op, `labels must be i32 [${z.shape[0]}], got ${labels.dtype} ${fmtShape(labels.shape)}`);
  check(z.shape[1] > 0, op, 'the class count is zero');
  return [z.shape[0], z.shape[1]];
}

/** A constant [1, C] (or [C]) tensor on the logits' device. */
const constRow = (values: ArrayLike<number>, like: Tensor, shape: number[] = [1, values.length]): Tensor => tensor(Array.from(values), shape, { device: like.device });

/** Reduces per-sample losses; 'mean' divides by `denominator` (N, or Σ w_{y_i} for weighted CE as torch does). */
function reduce(per: Tensor, reduction: Reduction, denominator: Tensor | number): Tensor {
  if (reduction === 'none') return per;
  const s = sum(per);
  if (reduction === 'sum') return s;
  return typeof denominator === 'number' ? mulScalar(s, 1 / denominator) : mul(s, denominator);
}

/** 1 / Σ_i w_{y_i}: the denominator of torch's weighted mean, as a constant scalar tensor. */
function weightedDenominator(weights: Tensor, labels: Tensor): Tensor {
  return noGrad(() => reciprocal(sum(gatherRaw(weights, labels, 0))));
}

export interface CrossEntropyOptions {
  /** Class weights w_c (length C): loss_i = w_{y_i}·CE_i, mean divides by Σ w_{y_i} (torch). */
  weights?: ArrayLike<number>;
  /** ε: the target becomes (1 − ε)·onehot + ε/C (Szegedy et al. 2016). */
  labelSmoothing?: number;
  reduction?: Reduction;
}

/**
 * Cross-entropy −Σ_c p_c log softmax(z)_c on the fused softmax-KL kernel. For one-hot targets KL
 * equals CE; with weights KL = w log w − w log q, so CE = KL − w_y log w_y (a constant).
 */
export function crossEntropy(z: Tensor, labels: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const op = 'crossEntropy';
  const [n, c] = checkLogits(op, z, labels);
  const eps = opts.labelSmoothing ?? 0;
  check(eps >= 0 && eps < 1, op, `labelSmoothing must be in [0, 1), got ${eps}`);
  if (opts.weights) checkClassWeights(op, opts.weights, c);
  const reduction = opts.reduction ?? 'mean';
  if (eps > 0) {
    // torch: (1 − ε)·weighted NLL + ε·(−Σ_c w_c log q_c)/C, mean over Σ w_{y_i}
    const logq = logSoftmax(z);
    const target = noGrad(() => {
      const oh = oneHot(labels, c);
      const smooth = affine(oh, 1 - eps, eps / c);
      return opts.weights ? mul(smooth, constRow(opts.weights, z)) : smooth;
    });
    const per = neg(sum(mul(logq, target), 1));
    return reduce(per, reduction, opts.weights ? weightedDenominator(constRow(opts.weights, z, [c]), labels) : n);
  }
  if (!opts.weights) return reduce(softmaxKL(z, { labels }), reduction, n);
  const w = constRow(opts.weights, z, [c]);
  const kl = softmaxKL(z, { labels, weights: w });
  const entropy = noGrad(() => {
    const wy = gatherRaw(w, labels, 0);
    return mul(wy, log(wy));
  });
  return reduce(sub(kl, entropy), reduction, weightedDenominator(w, labels));
}

/** log p_y per row, differentiable: Σ_c onehot ⊙ log softmax(z). */
function logProbOfLabel(z: Tensor, labels: Tensor): Tensor {
  const oh = noGrad(() => oneHot(labels, z.shape[1]));
  return sum(mul(logSoftmax(z), oh), 1);
}

export interface FocalOptions {
  gamma?: number;
  weights?: ArrayLike<number>;
  reduction?: Reduction;
}

/** Softmax focal loss −w_y (1 − p_y)^γ log p_y (Lin et al., ICCV 2017; the seed's L_focal). Mean over N. */
export function focalLoss(z: Tensor, labels: Tensor, opts: FocalOptions = {}): Tensor {
  const op = 'focalLoss';
  const [n, c] = checkLogits(op, z, labels);
  const gamma = opts.gamma ?? 2;
  check(gamma >= 0, op, `gamma must be >= 0, got ${gamma}`);
  if (opts.weights) checkClassWeights(op, opts.weights, c);
  const logp = logProbOfLabel(z, labels);
  // (1 − p)^γ: clamp at 0 so rounding (p slightly above 1) cannot produce NaN for fractional γ
  const mod = gamma === 0 ? null : pow(relu(affine(exp(logp), -1, 1)), gamma);
  let per = neg(mod ? mul(mod, logp) : logp);
  if (opts.weights) per = mul(per, noGrad(() => gatherRaw(constRow(opts.weights!, z, [c]), labels, 0)));
  return reduce(per, opts.reduction ?? 'mean', n);
}

/** log(1 + e^x) computed stably as max(x, 0) + log(1 + e^−|x|). */
export const softplus = (x: Tensor): Tensor => add(relu(x), log(addScalar(exp(neg(abs(x))), 1)));

export interface SigmoidOptions {
  /** Per-class weights (length C), broadcast over samples. */
  classWeights?: ArrayLike<number>;
  /** Per-element weights [N, C] (EQL's w_j, or CB's w_{y_i} repeated over classes). */
  elementWeights?: Float32Array;
  /** Focal modulation γ on the sigmoid terms (Cui et al.'s sigmoid focal variant). */
  gamma?: number;
  reduction?: Reduction;
}

/**
 * Sigmoid binary cross-entropy over one-hot targets: Σ_j w_ij [softplus(z_ij) − y_ij z_ij], optionally
 * focal-modulated by exp(−γ y z − γ log(1 + e^−z)) as in Cui et al.'s code. Mean over N.
 */
export function sigmoidLoss(z: Tensor, labels: Tensor, opts: SigmoidOptions = {}): Tensor {
  const op = 'sigmoidLoss';
  const [n, c] = checkLogits(op, z, labels);
  const y = noGrad(() => oneHot(labels, c));
  let per = sub(softplus(z), mul(y, z));
  const gamma = opts.gamma ?? 0;
  if (gamma > 0) {
    // modulator = exp(−γ·y·z − γ·log(1 + exp(−z)))
    const logMod = mulScalar(add(mul(y, z), softplus(neg(z))), -gamma);
    per = mul(exp(logMod), per);
  }
  if (opts.classWeights) {
    checkClassWeights(op, opts.classWeights, c);
    per = mul(per, constRow(opts.classWeights, z));
  }
  if (opts.elementWeights) {
    check(opts.elementWeights.length === n * c, op, `elementWeights has ${opts.elementWeights.length} entries for [${n}, ${c}]`);
    per = mul(per, tensor(opts.elementWeights, [n, c], { device: z.device }));
  }
  return reduce(sum(per, 1), opts.reduction ?? 'mean', n);
}

export interface LdamOptions {
  /** Maximum margin (C in Δ_j = C / n_j^{1/4} is set so that max Δ = maxMargin); 0.5 in Cao et al. */
  maxMargin?: number;
  /** Logit scale s (30 in their code). */
  scale?: number;
  /** Class weights (the DRW stage passes class-balanced weights). */
  weights?: ArrayLike<number>;
  reduction?: Reduction;
}

/** LDAM: CE(s·(z − Δ_y·onehot_y), y) with Δ_j ∝ n_j^(−1/4) (Cao et al., NeurIPS 2019). */
export function ldamLoss(z: Tensor, labels: Tensor, classCounts: ArrayLike<number>, opts: LdamOptions = {}): Tensor {
  const [, c] = checkLogits('ldamLoss', z, labels);
  check(classCounts.length === c, 'ldamLoss', `${classCounts.length} class counts for ${c} classes`);
  const margins = ldamMargins(classCounts, opts.maxMargin ?? 0.5);
  const shift = noGrad(() => mul(oneHot(labels, c), constRow(margins, z)));
  return crossEntropy(mulScalar(sub(z, shift), opts.scale ?? 30), labels, { weights: opts.weights, reduction: opts.reduction });
}

export interface LogitAdjustedOptions {
  /** τ: the adjustment is τ·log π_j; τ = 1 is balanced softmax (Ren et al., NeurIPS 2020). */
  tau?: number;
  reduction?: Reduction;
}

/** Logit-adjusted loss CE(z + τ log π, y) (Menon et al., ICLR 2021). */
export function logitAdjustedLoss(z: Tensor, labels: Tensor, classCounts: ArrayLike<number>, opts: LogitAdjustedOptions = {}): Tensor {
  const [, c] = checkLogits('logitAdjustedLoss', z, labels);
  check(classCounts.length === c, 'logitAdjustedLoss', `${classCounts.length} class counts for ${c} classes`);
  const tau = opts.tau ?? 1;
  const total = Array.from(classCounts).reduce((a, b) => a + b, 0);
  const prior = Array.from(classCounts, (nj, j) => {
    check(nj > 0, 'logitAdjustedLoss', `class ${j} has count ${nj}`);
    return tau * Math.log(nj / total);
  });
  return crossEntropy(add(z, constRow(prior, z)), labels, { reduction: opts.reduction });
}

/**
 * Equalization loss, sigmoid form (Tan et al., CVPR 2020): BCE with w_j = 1 − E(r)·T_λ(f_j)·(1 − y_j);
 * `weights` comes from weights.ts eqlWeights (N × C).
 */
export function eqlLoss(z: Tensor, labels: Tensor, weights: Float32Array, reduction: Reduction = 'mean'): Tensor {
  return sigmoidLoss(z, labels, { elementWeights: weights, reduction });
}

/**
 * Softmax equalization loss (the seed's L_SEQL): −log p̃_y with p̃_j = e^{z_j} / Σ_k w̃_k e^{z_k},
 * w̃_k = 1 − β T_λ(f_k)(1 − y_k); `weights` (N × C) from weights.ts seqlWeights.
 */
export function seqlLoss(z: Tensor, labels: Tensor, weights: Float32Array, reduction: Reduction = 'mean'): Tensor {
  const [n, c] = checkLogits('seqlLoss', z, labels);
  check(weights.length === n * c, 'seqlLoss', `weights has ${weights.length} entries for [${n}, ${c}]`);
  // log Σ_k w̃_k e^{z_k} − z_y, shifted by the (constant) row max for stability
  const m = noGrad(() => maxOver(z, 1, true));
  const shifted = sub(z, m);
  const lse = log(sum(mul(exp(shifted), tensor(weights, [n, c], { device: z.device })), 1));
  const zy = sum(mul(shifted, noGrad(() => oneHot(labels, c))), 1);
  return reduce(sub(lse, zy), reduction, n);
}

