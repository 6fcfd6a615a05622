// Classifier calibration for decoupled long-tail learning: post-hoc adjustments of a stage-1 head
// (NCM, τ-normalisation, logit adjustment, TDE) and stage-2 heads learnt on cached features (cRT,
// LWS, balanced group softmax, DisAlign), composable by name through CALIBRATIONS.

import { full, tensor } from '../kernels/creation.js';
import { check, fmtShape, OpError } from '../kernels/errors.js';
import { scatterAdd } from '../kernels/indexing.js';
import { mean as meanRaw } from '../kernels/reduce.js';
import { keep, scope, type Tensor } from '../kernels/tensor.js';
import { matmul, mul, mulScalar, reshape, square, sub, sum } from '../autograd/ops.js';
import { noGrad } from '../autograd/tape.js';
import { Linear, normalize } from '../nn/layers.js';
import { Module, parameter, type Parameter } from '../nn/module.js';
import { trainGroupSoftmax, type GroupSoftmaxTrainOptions } from './bgs.js';
import { trainDisAlign, type DisAlignTrainOptions } from './disalign.js';
import { CausalNormHead, checkFeatures, checkHeadSize, headDevice, LinearHead, TauNormHead, type Head } from './heads.js';
import { crossEntropy } from './losses.js';
import { checkCachedFeatures, resolveStage2Options, seededLinearInit, trainOnCachedFeatures, type Stage2Options } from './stage2.js';
import { INIT_STREAMS } from '../data/rng.js';
import { checkClassCounts, logitAdjustments } from './weights.js';

export * from './heads.js';
export * from './stage2.js';
export * from './disalign.js';
export * from './bgs.js';

// ---------------------------------------------------------------- post-hoc

/**
 * ẑ_j = z_j − λ·log ρ_j, ρ_j = n_j/Σn (Menon et al., "Long-tail learning via logit adjustment", ICLR
 * 2021, post-hoc form; the seed's "Logit Adjustment").
 */
export function logitAdjust(z: Tensor, classCounts: ArrayLike<number>, lambda = 1): Tensor {
  const op = 'logitAdjust';
  check(z.rank === 2 && z.shape[1] === classCounts.length, op, () => `logits must be [N, ${classCounts.length}] for ${classCounts.length} class counts, got ${fmtShape(z.shape)}`);
  const prior = logitAdjustments(classCounts, lambda);
  return sub(z, tensor(Float32Array.from(prior), [1, prior.length], { device: z.device }));
}

/** e_j = mean of the rows of X with label j, [C, D] (the class centroids of NCM; every class needs a sample). */
export function classCentroids(features: Tensor, labels: ArrayLike<number>, numClasses: number): Tensor {
  const op = 'classCentroids';
  const y = checkCachedFeatures(op, features, labels, numClasses);
  const counts = new Float64Array(numClasses);
  for (const c of y) counts[c]++;
  checkClassCounts(op, counts);
  return noGrad(() => scope(() => {
    const sums = scatterAdd(full([numClasses, features.shape[1]], 0, { device: features.device }), tensor(y, [y.length], { dtype: 'i32', device: features.device }), features, 0);
    return mul(sums, tensor(Float32Array.from(counts, (n) => 1 / n), [numClasses, 1], { device: features.device }));
  }));
}

export interface NcmOptions {
  /** 'l2' (default, classifier-balancing's --dist_type l2): −‖x̃ − e_j‖², the centroids not re-normalised; 'cos': λ·cos(x̃, e_j), the seed's NCM. */
  metric?: 'cos' | 'l2';
  /**
   * Feature transform before the centroids are taken (classifier-balancing KNNClassifier feat_type):
   * 'un' none, 'l2n' x/‖x‖, 'cl2n' (default) (x − x̄)/‖x − x̄‖ with x̄ the training-feature mean.
   */
  transform?: 'un' | 'l2n' | 'cl2n';
  /** λ, the scale of the cosine scores (default 1). */
  scale?: number;
}

/** The NCM classifier and the training-set tensors it keeps (centroids and, for cl2n, the mean). */
export interface Ncm {
  centroids: Tensor;
  featureMean: Tensor | null;
  logits: (x: Tensor) => Tensor;
}

/**
 * Nearest class mean (Kang et al., ICLR 2020, NCM). By default as their code (KNNClassifier,
 * feat_type cl2n, dist_type l2): x̃ = (x − x̄)/‖x − x̄‖ with x̄ the training-feature mean, e_j the
 * mean x̃ of class j (not re-normalised), ẑ_j = −‖x̃ − e_j‖². The 'cos' option scores
 * λ·(e_j·x̃)/(‖e_j‖‖x̃‖), the seed's formula (their own 'cos' divides by D instead of normalising).
 */
export function ncm(trainFeatures: Tensor, trainLabels: ArrayLike<number>, numClasses: number, { metric = 'l2', transform = 'cl2n', scale = 1 }: NcmOptions = {}): Ncm {
  const op = 'ncm';
  check(Number.isFinite(scale) && scale > 0, op, `scale must be a positive number, got ${scale}`);
  check(trainFeatures.rank === 2, op, `training features must be [N, D], got ${fmtShape(trainFeatures.shape)}`);
  const featureMean = transform === 'cl2n' ? keep(noGrad(() => meanRaw(trainFeatures, 0, true))) : null;
  const transformed = (x: Tensor): Tensor => (transform === 'un' ? x : normalize(featureMean ? sub(x, featureMean) : x, 1));
  const centroids = keep(noGrad(() => scope(() => classCentroids(transformed(trainFeatures), trainLabels, numClasses))));
  const logits = (x: Tensor): Tensor => {
    checkFeatures(op, x, trainFeatures.shape[1]);
    const t = transformed(x);
    if (metric === 'cos') return mulScalar(matmul(normalize(t, 1), normalize(centroids, 1), { transB: true }), scale);
    // −‖t − e‖² = 2 t·e − ‖t‖² − ‖e‖²
    const cross = mulScalar(matmul(t, centroids, { transB: true }), 2);
    return sub(sub(cross, sum(square(t), 1, true)), reshape(sum(square(centroids), 1), [1, numClasses]));
  };
  return { centroids, featureMean, logits };
}

// ---------------------------------------------------------------- learned: cRT and LWS

/**
 * cRT (Kang et al., ICLR 2020): a re-initialised linear classifier trained on the frozen features with
 * class-balanced sampling; their ImageNet-LT config: SGD lr 0.2, momentum 0.9, weight decay 5e-4,
 * cosine over 10 epochs, batch 512 (no floor on the steps: see STAGE2_MIN_ITERATIONS).
 */
export async function trainCrt(
  features: Tensor, labels: ArrayLike<number>, numClasses: number, opts: Stage2Options = {},
): Promise<{ head: LinearHead; epochLosses: number[] }> {
  const op = 'crt';
  check(features.rank === 2, op, `training features must be [N, D], got ${fmtShape(features.shape)}`);
  checkHeadSize(op, features.shape[1], numClasses);
  const y = checkCachedFeatures(op, features, labels, numClasses);
  const o = resolveStage2Options(op, opts, { epochs: 10, minIterations: 0, batchSize: 512, lr: 0.2, momentum: 0.9, weightDecay: 5e-4, sampler: 'class-aware', seed: 0, dropLast: true, lrAtEpochStart: true });
  const head = new LinearHead(features.shape[1], numClasses, { device: features.device });
  seededLinearInit(head.fc, o.seed, INIT_STREAMS.crtWeight); // its bias: crtWeight + 1 = crtBias
  const epochLosses = await trainOnCachedFeatures(op, features, y, numClasses, head.namedParameters(), (b) => crossEntropy(head.forward(b.features), b.labels), o);
  return { head, epochLosses };
}

/**
 * LWS, learnable weight scaling (Kang et al., ICLR 2020): ẑ_j = α_j·z_j on the frozen head's logits
 * (bias included, as their TauNormClassifier: fc(x) * scales). Parameters: the frozen head as
 * `classifier`, `scales` [C] initialised to 1.
 */
export class LwsHead extends Module implements Head {
  classifier: Head;
  scales: Parameter;
  readonly inFeatures: number;
  readonly numClasses: number;

  constructor(classifier: Head) {
    super();
    this.classifier = classifier;
    this.inFeatures = classifier.inFeatures;
    this.numClasses = classifier.numClasses;
    this.scales = parameter(full([classifier.numClasses], 1, { device: headDevice(classifier) }));
  }

  forward(x: Tensor): Tensor {
    return mul(noGrad(() => this.classifier.forward(x)), this.scales);
  }
}

/** Trains LWS scales with class-balanced sampling; their ImageNet-LT config: lr 0.2, 5 epochs, batch 512 (no floor on the steps: see STAGE2_MIN_ITERATIONS). */
export async function trainLws(
  head: Head, features: Tensor, labels: ArrayLike<number>, opts: Stage2Options = {},
): Promise<{ head: LwsHead; epochLosses: number[] }> {
  const op = 'lws';
  checkFeatures(op, features, head.inFeatures);
  const y = checkCachedFeatures(op, features, labels, head.numClasses);
  const o = resolveStage2Options(op, opts, { epochs: 5, minIterations: 0, batchSize: 512, lr: 0.2, momentum: 0.9, weightDecay: 5e-4, sampler: 'class-aware', seed: 0, dropLast: true, lrAtEpochStart: true });
  const lws = new LwsHead(head);
  const epochLosses = await trainOnCachedFeatures(op, features, y, head.numClasses, [['scales', lws.scales]], (b) => crossEntropy(lws.forward(b.features), b.labels), o);
  return { head: lws, epochLosses };
}

// ---------------------------------------------------------------- registry

export type CalibrationName = 'ncm' | 'taunorm' | 'logitadjust' | 'tde' | 'crt' | 'lws' | 'bgs' | 'disalign';

/** Every method's options in one flat record, so a command line maps onto it (--grw-rho 1.2 → grwRho). */
export interface CalibrationOptions extends Stage2Options, DisAlignTrainOptions, GroupSoftmaxTrainOptions {
  /** taunorm: τ of w_j/‖w_j‖^τ (default 1). */
  tau?: number;
  /** taunorm: keep the stage-1 bias (default false, as their tau_norm.py). */
  keepBias?: boolean;
  /** logitadjust: λ of z − λ log ρ (default 1). */
  lambda?: number;
  ncmMetric?: NcmOptions['metric'];
  ncmTransform?: NcmOptions['transform'];
  ncmScale?: number;
  /** tde: α (default: the head's). */
  tdeAlpha?: number;
  /** tde: x̄ from the head's training moving average ('head', default) or the training-feature mean ('train'). */
  tdeEmbed?: 'head' | 'train';
}

export interface CalibrationInput {
  /** Cached training features [N, D] (f32). */
  trainFeatures: Tensor;
  /** Their N labels (CPU, integers in [0, C)). */
  trainLabels: ArrayLike<number>;
  /** Training instances per class (length C, all > 0). */
  classCounts: ArrayLike<number>;
  /** The stage-1 head (frozen). */
  head: Head;
  options?: CalibrationOptions;
}

/** features [N, D] → calibrated logits [N, C], with the learnt module (if any) and the epoch losses. */
export type Calibrated = ((features: Tensor) => Tensor) & {
  readonly method: CalibrationName;
  readonly module: Module | null;
  readonly epochLosses: readonly number[];
};

export type Calibration = (input: CalibrationInput) => Promise<Calibrated>;

function checkInput(op: string, { trainFeatures, trainLabels, classCounts, head }: CalibrationInput): void {
  checkClassCounts(op, classCounts);
  check(classCounts.length === head.numClasses, op, `${classCounts.length} class counts for a head of ${head.numClasses} classes`);
  checkFeatures(op, trainFeatures, head.inFeatures);
  checkCachedFeatures(op, trainFeatures, trainLabels, head.numClasses);
  check(headDevice(head) === trainFeatures.device, op, `the head lives on ${headDevice(head)}, the training features on ${trainFeatures.device}`);
}

/** Wraps fn as a Calibrated: no graph, intermediates disposed, the input checked. */
function calibrated(method: CalibrationName, inFeatures: number, fn: (x: Tensor) => Tensor, module: Module | null = null, epochLosses: number[] = []): Calibrated {
  const logits = (x: Tensor): Tensor => {
    checkFeatures(method, x, inFeatures);
    return noGrad(() => scope(() => fn(x)));
  };
  return Object.assign(logits, { method, module, epochLosses });
}

/** Why a calibration cannot run on this stage-1 head, or null: τ-norm needs a linear head, TDE a causal-norm head. */
export function calibrationHeadMismatch(name: string, head: Head): string | null {
  if (name === 'taunorm' && !(head instanceof LinearHead)) return `needs a linear (dot-product) stage-1 head with a weight [C, D], got ${head.constructor.name}`;
  if (name === 'tde' && !(head instanceof CausalNormHead)) return `needs a CausalNormHead (TDE's causal-norm classifier), got ${head.constructor.name}`;
  return null;
}

function linearOf(op: string, head: Head): Linear {
  if (head instanceof LinearHead) return head.fc;
  throw new OpError(op, calibrationHeadMismatch('taunorm', head)!);
}

/** The methods by name: each takes the cached training set and the stage-1 head, and returns features → logits. */
export const CALIBRATIONS: Record<CalibrationName, Calibration> = {
  ncm: async (input) => {
    checkInput('ncm', input);
    const o = input.options ?? {};
    const model = ncm(input.trainFeatures, input.trainLabels, input.head.numClasses, { metric: o.ncmMetric, transform: o.ncmTransform, scale: o.ncmScale });
    return calibrated('ncm', input.head.inFeatures, model.logits);
  },
  taunorm: async (input) => {
    checkInput('taunorm', input);
    const o = input.options ?? {};
    const head = new TauNormHead(linearOf('taunorm', input.head), o.tau ?? 1, { keepBias: o.keepBias });
    return calibrated('taunorm', head.inFeatures, (x) => head.forward(x), head);
  },
  logitadjust: async (input) => {
    checkInput('logitadjust', input);
    const { head, classCounts } = input;
    const lambda = input.options?.lambda ?? 1;
    check(Number.isFinite(lambda), 'logitadjust', `lambda must be a finite number, got ${lambda}`);
    return calibrated('logitadjust', head.inFeatures, (x) => logitAdjust(head.forward(x), classCounts, lambda));
  },
  tde: async (input) => {
    checkInput('tde', input);
    const { head } = input;
    if (!(head instanceof CausalNormHead)) throw new OpError('tde', calibrationHeadMismatch('tde', head)!);
    const o = input.options ?? {};
    const embedMean = o.tdeEmbed === 'train' ? keep(noGrad(() => meanRaw(input.trainFeatures, 0))) : head.embed_mean;
    if (o.tdeEmbed !== 'train') {
      const values = await head.embed_mean.data();
      check(values.some((v) => v !== 0), 'tde', "the head's feature moving average is zero (train it in training mode, or pass tdeEmbed: 'train')");
    }
    return calibrated('tde', head.inFeatures, (x) => head.tdeLogits(x, { alpha: o.tdeAlpha, embedMean }));
  },
  crt: async (input) => {
    checkInput('crt', input);
    const { head, epochLosses } = await trainCrt(input.trainFeatures, input.trainLabels, input.head.numClasses, input.options);
    return calibrated('crt', head.inFeatures, (x) => head.forward(x), head, epochLosses);
  },
  lws: async (input) => {
    checkInput('lws', input);
    const { head, epochLosses } = await trainLws(input.head, input.trainFeatures, input.trainLabels, input.options);
    return calibrated('lws', head.inFeatures, (x) => head.forward(x), head, epochLosses);
  },
  bgs: async (input) => {
    checkInput('bgs', input);
    const { head, epochLosses } = await trainGroupSoftmax(input.trainFeatures, input.trainLabels, input.classCounts, { ...input.options, batchSource: undefined }); // on the cached features
    return calibrated('bgs', head.inFeatures, (x) => head.forward(x), head, epochLosses);
  },
  disalign: async (input) => {
    checkInput('disalign', input);
    const { head, epochLosses } = await trainDisAlign(input.head, input.trainFeatures, input.trainLabels, input.classCounts, input.options);
    return calibrated('disalign', head.inFeatures, (x) => head.forward(x), head, epochLosses);
  },
};

/** The calibration a name selects (case and surrounding spaces ignored); throws for an unknown one. */
export function calibrationName(name: string): CalibrationName {
  const key = name.trim().toLowerCase();
  check(Object.hasOwn(CALIBRATIONS, key), 'calibrate', `unknown calibration "${name}"; expected one of ${Object.keys(CALIBRATIONS).join(', ')}`);
  return key as CalibrationName;
}

/** Applies a calibration by name (`--calib disalign`). */
export function calibrate(name: string, input: CalibrationInput): Promise<Calibrated> {
  return CALIBRATIONS[calibrationName(name)](input);
}


// ---------------------------------------------------------------- τ-norm: τ picked on validation data

/** τ = 0, 0.1, …, 2.0: the grid of classifier-balancing's τ-norm sweep (tau_norm.ipynb). */
export const TAU_GRID: readonly number[] = Array.from({ length: 21 }, (_, k) => Math.round(k * 10) / 100);

export interface TauSelection {
  /** The τ with the highest score (the smallest such τ on a tie). */
  tau: number;
  taus: readonly number[];
  /** Per τ: the mean over classes of the per-class top-1 accuracy on the validation features (classes absent from them left out). */
  scores: number[];
}

/**
 * Picks τ for τ-norm as Kang et al. do: the τ of the grid (default 0…2 step 0.1) whose normalised
 * classifier scores best on validation features. The score is the class-balanced accuracy (the mean
 * of the per-class accuracies), which equals top-1 on a balanced validation set such as ImageNet-LT's
 * and keeps a held-out part of an imbalanced training set from favouring the head classes.
 */
export async function selectTau(fc: Linear, valFeatures: Tensor, valLabels: ArrayLike<number>, { taus = TAU_GRID, keepBias = false }: { taus?: readonly number[]; keepBias?: boolean } = {}): Promise<TauSelection> {
  const op = 'selectTau';
  check(valFeatures.rank === 2 && valFeatures.shape[0] === valLabels.length, op, `validation features [M, D] and M labels expected, got ${fmtShape(valFeatures.shape)} and ${valLabels.length} labels`);
  check(taus.length > 0 && taus.every((t) => Number.isFinite(t)), op, 'taus must be a non-empty list of finite numbers');
  const [C] = fc.weight.shape;
  const M = valLabels.length;
  const scores: number[] = [];
  for (const tau of taus) {
    const head = new TauNormHead(fc, tau, { keepBias });
    const z = await noGrad(() => head.forward(valFeatures)).data();
    const right = new Float64Array(C), seen = new Float64Array(C);
    for (let i = 0; i < M; i++) {
      let best = 0;
      for (let j = 1; j < C; j++) if (z[i * C + j] > z[i * C + best]) best = j;
      seen[valLabels[i]]++;
      if (best === valLabels[i]) right[valLabels[i]]++;
    }
    let sum = 0, classes = 0;
    for (let j = 0; j < C; j++) if (seen[j] > 0) {
      sum += right[j] / seen[j];
      classes++;
    }
    scores.push(classes ? sum / classes : 0);
  }
  let k = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[k]) k = i;
  return { tau: taus[k], taus, scores };
}
