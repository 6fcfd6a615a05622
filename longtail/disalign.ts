// Distribution Alignment (Zhang et al., "Distribution Alignment: A Unified Framework for Long-tail
// Visual Recognition", CVPR 2021): an adaptive calibration of a frozen stage-1 head, learnt on cached
// features by aligning its prediction with a generalized re-weighting reference distribution.

import { full, tensor } from '../kernels/creation.js';
import { check, fmtShape } from '../kernels/errors.js';
import type { Tensor } from '../kernels/tensor.js';
import { add, addScalar, matmul, mul, mulScalar, sigmoid, softmaxKL, sum } from '../autograd/ops.js';
import { noGrad } from '../autograd/tape.js';
import { constant } from '../nn/init.js';
import { Linear, normalize } from '../nn/layers.js';
import { Module, parameter, type Parameter } from '../nn/module.js';
import { CausalNormHead, checkFeatures, CosineHead, headDevice, type Head } from './heads.js';
import { checkCachedFeatures, resolveStage2Options, seededInit, STAGE2_MIN_ITERATIONS, trainOnCachedFeatures, type Stage2Options } from './stage2.js';
import { INIT_STREAMS } from '../data/rng.js';
import { checkClassWeights, grwWeights } from './weights.js';

/**
 * ẑ = (1 + σ(x)·α) ⊙ z^o + σ(x)·β with σ(x) = sigmoid(v·x + b) (Zhang et al., CVPR 2021, eq. 5;
 * cvpods DisAlignLinear.forward). z^o [N, C], x [N, D], v [1, D], b [1], α and β [1, C].
 */
export function disalignLogits(zo: Tensor, x: Tensor, v: Tensor, b: Tensor, alpha: Tensor, beta: Tensor): Tensor {
  const op = 'disalignLogits';
  check(zo.rank === 2 && x.rank === 2 && zo.shape[0] === x.shape[0], op, () => `logits [N, C] and features [N, D] must have the same N, got ${fmtShape(zo.shape)} and ${fmtShape(x.shape)}`);
  const [, C] = zo.shape;
  const D = x.shape[1];
  check(v.shape.join() === `1,${D}` && b.shape.join() === '1', op, () => `the confidence layer must be v [1, ${D}], b [1], got ${fmtShape(v.shape)}, ${fmtShape(b.shape)}`);
  check(alpha.shape.join() === `1,${C}` && beta.shape.join() === `1,${C}`, op, () => `α and β must be [1, ${C}], got ${fmtShape(alpha.shape)} and ${fmtShape(beta.shape)}`);
  const confidence = sigmoid(add(matmul(x, v, { transB: true }), b)); // [N, 1]
  return add(mul(zo, addScalar(mul(confidence, alpha), 1)), mul(confidence, beta));
}

export interface DisAlignHeadOptions {
  /**
   * Feed x/‖x‖ to the confidence layer, as cvpods DisAlignNormalizedLinear (DisAlign* on a cosine
   * classifier) does. Default: true when the stage-1 head scores only the feature's direction (a
   * CosineHead or TDE's CausalNormHead), false for a linear head (cvpods DisAlignLinear).
   */
  confidenceOnNormalized?: boolean;
}

const scoresDirectionOnly = (head: Head): boolean => head instanceof CosineHead || head instanceof CausalNormHead;

/**
 * A frozen stage-1 head calibrated by DisAlign. Parameters as cvpods DisAlignLinear:
 * confidence_layer.weight [1, D] (initialised to 0.1) and .bias [1] (torch's default init),
 * logit_scale α [1, C] and logit_bias β [1, C] (zeros); the stage-1 head is the child `classifier`
 * (its parameters are not trained: z^o is computed without a graph).
 *
 * α starts at 0 (cvpods: 1), so training starts from the stage-1 logits. At α = 1 the calibrated
 * logits are (1 + σ)·z^o: raising σ sharpens the head's wrong tail predictions, so the first steps
 * push σ(x) down, and once σ ≈ 0 the gradients of v, α and β all vanish: DisAlign is stuck at the
 * identity. With a causal-norm head (τ = 16) on the CIFAR-10-LT mini set that happened in 2 of 12
 * seeds with x/‖x‖ as the confidence input, and in 3 of 3 runs with raw x, whose step on v·x is
 * ‖x‖² ≈ 50 times that of α and β; with α = 0, in none of 11. Hence also x/‖x‖ for direction-only heads.
 */
export class DisAlignHead extends Module implements Head {
  classifier: Head;
  confidence_layer: Linear;
  logit_scale: Parameter;
  logit_bias: Parameter;
  readonly confidenceOnNormalized: boolean;
  readonly inFeatures: number;
  readonly numClasses: number;

  constructor(classifier: Head, { confidenceOnNormalized = scoresDirectionOnly(classifier) }: DisAlignHeadOptions = {}) {
    super();
    this.classifier = classifier;
    this.inFeatures = classifier.inFeatures;
    this.numClasses = classifier.numClasses;
    this.confidenceOnNormalized = confidenceOnNormalized;
    const device = headDevice(classifier);
    this.confidence_layer = new Linear(this.inFeatures, 1, { device });
    constant(this.confidence_layer.weight, 0.1);
    this.logit_scale = parameter(full([1, this.numClasses], 0, { device }));
    this.logit_bias = parameter(full([1, this.numClasses], 0, { device }));
  }

  /** The DisAlign parameters (what stage 2 trains), with their names. */
  calibrationParameters(): [string, Parameter][] {
    return this.namedParameters().filter(([name]) => !name.startsWith('classifier.'));
  }

  /** The confidence layer's input: x, or x/‖x‖ with confidenceOnNormalized. */
  private confidenceInput(x: Tensor): Tensor {
    return this.confidenceOnNormalized ? normalize(x, 1) : x;
  }

  /** σ(x) = sigmoid(v·x + b) per sample, [N, 1]: how strongly each sample is calibrated (0: the stage-1 logits). */
  confidence(x: Tensor): Tensor {
    checkFeatures('DisAlignHead.confidence', x, this.inFeatures);
    return sigmoid(this.confidence_layer.forward(this.confidenceInput(x)));
  }

  forward(x: Tensor): Tensor {
    checkFeatures('DisAlignHead', x, this.inFeatures);
    const zo = noGrad(() => this.classifier.forward(x));
    return disalignLogits(zo, this.confidenceInput(x), this.confidence_layer.weight, this.confidence_layer.bias!, this.logit_scale, this.logit_bias);
  }
}

/**
 * The G-RW weighted cross-entropy Σ_i w_{y_i}(−log q_{y_i}) / Σ_i w_{y_i}, the value cvpods'
 * GRWCrossEntropyLoss (F.cross_entropy with weight) logs, so logged losses compare with theirs.
 * Computed as E[KL(p_r ‖ p_m)] with p_r(c | x_i) = w_c·δ_c(y_i) (Zhang et al., CVPR 2021, eqs. 7–9)
 * on the fused softmax-KL kernel, minus the per-batch constant Σ_i w_{y_i} log w_{y_i} / Σ_i w_{y_i}
 * by which the two differ: the gradient is the same.
 */
export function disalignLoss(zhat: Tensor, labels: Tensor, labelValues: ArrayLike<number>, weights: ArrayLike<number>): Tensor {
  const op = 'disalignLoss';
  check(zhat.rank === 2, op, `logits must be [N, C], got ${fmtShape(zhat.shape)}`);
  checkClassWeights(op, weights, zhat.shape[1]);
  let denominator = 0, entropy = 0;
  for (let i = 0; i < labelValues.length; i++) {
    const wy = weights[labelValues[i]];
    denominator += wy;
    if (wy > 0) entropy += wy * Math.log(wy);
  }
  check(denominator > 0, op, 'the reference weights of the batch sum to 0');
  const w = tensor(Float32Array.from(weights), [weights.length], { device: zhat.device });
  return addScalar(mulScalar(sum(softmaxKL(zhat, { labels, weights: w })), 1 / denominator), -entropy / denominator);
}

export interface DisAlignTrainOptions extends Stage2Options, DisAlignHeadOptions {
  /** ρ of the generalized re-weighting w_c ∝ (1/r_c)^ρ (default 1.2, their ImageNet-LT GRW_SCALE). */
  grwRho?: number;
}

/**
 * Stage 2 of DisAlign on cached features: instance-balanced sampling (the reference re-weights),
 * SGD lr 0.1, momentum 0.9, weight decay 5e-4, cosine over 10 epochs, batch 256 (their ImageNet-LT
 * config), with at least STAGE2_MIN_ITERATIONS steps on small sets. Returns the calibrated head and
 * the mean loss of each epoch.
 */
export async function trainDisAlign(
  head: Head, features: Tensor, labels: ArrayLike<number>, classCounts: ArrayLike<number>, opts: DisAlignTrainOptions = {},
): Promise<{ head: DisAlignHead; epochLosses: number[] }> {
  const op = 'disalign';
  check(classCounts.length === head.numClasses, op, `${classCounts.length} class counts for a head of ${head.numClasses} classes`);
  checkFeatures(op, features, head.inFeatures);
  const y = checkCachedFeatures(op, features, labels, head.numClasses);
  const o = resolveStage2Options(op, opts, { epochs: 10, minIterations: STAGE2_MIN_ITERATIONS, batchSize: 256, lr: 0.1, momentum: 0.9, weightDecay: 5e-4, sampler: 'instance', seed: 0 });
  const weights = grwWeights(classCounts, opts.grwRho ?? 1.2);
  const calibrated = new DisAlignHead(head, opts);
  // the confidence layer's bias is the one random draw: from the method's seed
  const bound = 1 / Math.sqrt(head.inFeatures);
  if (calibrated.confidence_layer.bias) seededInit(calibrated.confidence_layer.bias, 'uniform', -bound, bound, o.seed, INIT_STREAMS.disalignConfidenceBias);
  const epochLosses = await trainOnCachedFeatures(op, features, y, head.numClasses, calibrated.calibrationParameters(), (b) =>
    disalignLoss(calibrated.forward(b.features), b.labels, b.labelValues, weights), o);
  return { head: calibrated, epochLosses };
}
