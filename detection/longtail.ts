// The seed's long-tail methods for a detector's box classifier, as composable pieces that act on the
// box head's features [N, D] and logits [N, C + 1] and on the training set, so a detector picks them
// by name. Browser-safe: built on the autograd ops, no Node built-ins.
//
// Label convention (torchvision's, which the Mask R-CNN here follows): logits [N, C + 1] with column
// 0 the background, label 0 the background and foreground classes 1..C. Per-class arrays
// (instanceCounts, imageCounts, frequencies) have C entries, entry k − 1 for class k. The official
// codes differ (detectron2 / cvpods: background last; mmdet v1 (BAGS, SimCal): background first, as
// here); each piece says where it maps.

import { full, tensor } from '../kernels/creation.js';
import { check, fmtShape } from '../kernels/errors.js';
import type { Tensor } from '../kernels/tensor.js';
import {
  add, addScalar, affine, concat, exp, gather, logSoftmax, matmul, mul, mulScalar, narrow, neg, pow, relu, sigmoid, softmax, softmaxKL, sub, sum,
} from '../autograd/ops.js';
import { noGrad } from '../autograd/tape.js';
import { constant, normal } from '../nn/init.js';
import { Linear, normalize, type DeviceOption } from '../nn/layers.js';
import { Module, parameter, type Parameter } from '../nn/module.js';
import { backend } from '../kernels/device.js';
import { softplus } from '../longtail/losses.js';
import { BilevelSampler, RepeatFactorSampler, type SamplerOptions } from '../longtail/samplers.js';
import { INIT_STREAMS, Rng, STREAMS } from '../data/rng.js';
import { crossEntropyMean } from './training.js';
import { checkCachedFeatures, resolveStage2Options, seededInit, STAGE2_MIN_ITERATIONS, trainOnCachedFeatures, type Stage2Options } from '../longtail/stage2.js';
import { grwWeights } from '../longtail/weights.js';

const BG = 0;

function checkBoxLogits(op: string, z: Tensor, numClasses?: number): [number, number] {
  check(z.dtype === 'f32' && z.rank === 2 && z.shape[1] >= 2, op, () => `box logits must be f32 [N, C + 1] with C >= 1, got ${z.dtype} ${fmtShape(z.shape)}`);
  check(numClasses === undefined || z.shape[1] === numClasses + 1, op, () => `box logits must be [N, ${numClasses! + 1}] for ${numClasses} foreground classes, got ${fmtShape(z.shape)}`);
  return [z.shape[0], z.shape[1] - 1];
}

function checkBoxLabels(op: string, labels: ArrayLike<number>, N: number, C: number): void {
  check(labels.length === N, op, `${labels.length} labels for ${N} boxes`);
  for (let i = 0; i < N; i++) {
    const y = labels[i];
    check(Number.isInteger(y) && y >= 0 && y <= C, op, `label ${y} of box ${i} is outside [0, ${C}] (0 = background)`);
  }
}

function checkPerClass(op: string, what: string, values: ArrayLike<number>, C?: number): void {
  check(values.length > 0 && (C === undefined || values.length === C), op, `${what} has ${values.length} entries${C === undefined ? '' : ` for ${C} foreground classes`}`);
  for (let k = 0; k < values.length; k++) check(Number.isFinite(values[k]) && values[k] >= 0, op, `${what}[${k}] is ${values[k]}; it must be a finite non-negative number`);
}

const row = (values: ArrayLike<number>, like: Tensor): Tensor => tensor(Float32Array.from(values), [1, values.length], { device: like.device });
const idx = (values: ArrayLike<number>, like: Tensor): Tensor => tensor(Int32Array.from(values), [values.length], { dtype: 'i32', device: like.device });

/** The foreground columns 1..C of box logits [N, C + 1]. */
export const foregroundLogits = (z: Tensor): Tensor => narrow(z, 1, 1, z.shape[1] - 1);

// ============================================================================ repeat-factor sampling

/**
 * r_i = max(1, max_{c ∈ i} sqrt(t / f_c)), f_c = (images containing c) / (images) (Gupta et al.,
 * "LVIS", CVPR 2019; detectron2 RepeatFactorTrainingSampler.repeat_factors_from_category_frequency,
 * t = 0.001; an image without annotations gets 1 as their `max(..., default=1.0)`).
 * `imageCategories[i]` lists the categories (0-based ids, repeats allowed) of image i;
 * `categoryImageCounts[c]` is how many training images contain c (LVIS's image_count), or omitted to
 * count them from imageCategories. The epochs (stochastic rounding per image, then a shuffle: their
 * _get_epoch_indices) are RepeatFactorSampler's: see rfsSampler.
 */
export function repeatFactors(imageCategories: ReadonlyArray<ArrayLike<number>>, categoryImageCounts?: ArrayLike<number>, t = 0.001): Float64Array {
  const op = 'repeatFactors';
  const N = imageCategories.length;
  check(N > 0, op, 'the dataset has no images');
  check(Number.isFinite(t) && t > 0, op, `the threshold t must be a positive number, got ${t}`);
  let counts = categoryImageCounts;
  if (!counts) {
    let C = 0;
    for (const cats of imageCategories) for (let k = 0; k < cats.length; k++) C = Math.max(C, cats[k] + 1);
    const c = new Float64Array(C);
    for (const cats of imageCategories) for (const k of new Set(Array.from(cats))) c[k]++;
    counts = c;
  }
  checkPerClass(op, 'categoryImageCounts', counts);
  const catRepeat = Float64Array.from(counts, (n) => (n > 0 ? Math.max(1, Math.sqrt(t / (n / N))) : 1));
  return Float64Array.from(imageCategories, (cats, i) => {
    let r = 1;
    for (let k = 0; k < cats.length; k++) {
      const c = cats[k];
      check(Number.isInteger(c) && c >= 0 && c < catRepeat.length, op, `image ${i} has category ${c}, outside the ${catRepeat.length} categories`);
      check(counts![c] > 0, op, `image ${i} has category ${c} whose image count is 0`);
      r = Math.max(r, catRepeat[c]);
    }
    return r;
  });
}

/** The repeat-factor sampler over images (longtail/samplers.ts RepeatFactorSampler, t = 0.001): seeded epochs, each image listed floor(r_i) + Bernoulli(frac(r_i)) times, shuffled. */
export function rfsSampler(imageCategories: ReadonlyArray<ArrayLike<number>>, opts: SamplerOptions = {}): RepeatFactorSampler {
  return new RepeatFactorSampler(imageCategories, { repeatThreshold: 0.001, ...opts });
}

// ============================================================================ EQL

/** EQL's λ for LVIS v0.5 (eql.detectron2 cfg.py: MODEL.ROI_HEADS.LAMBDA = 0.00177). */
export const EQL_LAMBDA = 0.00177;
/** EQL's prior probability of the classifier bias init (eql.detectron2 fast_rcnn.py: prior_prob = 0.001, "roughly 1 / num_classes"). */
export const EQL_PRIOR_PROB = 0.001;

/** b = −log((1 − π)/π): the sigmoid classifier's bias so every class starts at probability π (Lin et al., focal loss; EQL uses π = 0.001). */
export function priorBias(prior = EQL_PRIOR_PROB): number {
  check(Number.isFinite(prior) && prior > 0 && prior < 1, 'priorBias', `the prior probability must be in (0, 1), got ${prior}`);
  return -Math.log((1 - prior) / prior);
}

/**
 * Initialises a sigmoid box classifier as eql.detectron2 EQLFastRCNNOutputLayers: weight N(0, 0.01²),
 * bias −log((1 − π)/π) on every column (their cls_score has only the C foreground outputs; on a
 * [C + 1]-output layer the background column is initialised alike and EQL leaves it untrained).
 */
export function initSigmoidClassifier(fc: Linear, prior = EQL_PRIOR_PROB): void {
  normal(fc.weight, 0, 0.01);
  check(fc.bias !== null, 'initSigmoidClassifier', 'the classifier has no bias');
  constant(fc.bias!, priorBias(prior));
}

/**
 * EQL weights w_ij = 1 − E(r_i)·T_λ(f_j)·(1 − y_ij) over the C foreground columns (Tan et al.,
 * "Equalization Loss for Long-Tailed Object Recognition", CVPR 2020; eql.detectron2 EQLFastRCNNOutputs:
 * E(r) = 1 unless r is background (exclude_func), T_λ(f_j) = 1 if f_j < λ (threshold_func)), N×C row-major.
 */
export function eqlBoxWeights(labels: ArrayLike<number>, frequencies: ArrayLike<number>, lambda = EQL_LAMBDA): Float32Array {
  const op = 'eqlBoxWeights';
  const C = frequencies.length;
  checkPerClass(op, 'frequencies', frequencies);
  check(Number.isFinite(lambda) && lambda >= 0, op, `λ must be a non-negative number, got ${lambda}`);
  checkBoxLabels(op, labels, labels.length, C);
  const w = new Float32Array(labels.length * C).fill(1);
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (y === BG) continue; // background proposals: E(r) = 0, every class gets its negative gradient
    for (let j = 0; j < C; j++) if (frequencies[j] < lambda && j + 1 !== y) w[i * C + j] = 0;
  }
  return w;
}

/**
 * Sigmoid EQL on box logits: Σ_i Σ_{j=1..C} w_ij·BCE(z_ij, y_ij) / N (eql.detectron2 eql_loss: BCE with
 * logits over the foreground columns against one-hot targets (a background proposal has all zeros),
 * summed and divided by the number of proposals). `frequencies[k]` is f of class k + 1: LVIS
 * image_count / the number of training images with annotations (their lvis categories file's
 * image_count_frequency; longtail/weights.ts imageFrequencies computes it). The background
 * column of z, if any, gets no loss (their classifier has no such column; their inference appends a
 * dummy background probability 0). Pass z of [N, C + 1].
 */
export function eqlBoxLoss(z: Tensor, labels: ArrayLike<number>, frequencies: ArrayLike<number>, lambda = EQL_LAMBDA): Tensor {
  const op = 'eqlBoxLoss';
  const [N, C] = checkBoxLogits(op, z, frequencies.length);
  checkBoxLabels(op, labels, N, C);
  const w = eqlBoxWeights(labels, frequencies, lambda);
  const y = new Float32Array(N * C);
  for (let i = 0; i < N; i++) if (labels[i] !== BG) y[i * C + labels[i] - 1] = 1;
  const zf = foregroundLogits(z);
  const bce = sub(softplus(zf), mul(tensor(y, [N, C], { device: z.device }), zf));
  return mulScalar(sum(mul(bce, tensor(w, [N, C], { device: z.device }))), 1 / N);
}

/** Sigmoid scores for inference on a sigmoid-trained box classifier: [N, C + 1] with background column 0 set to 0 (eql.detectron2 predict_probs' dummy background). */
export function sigmoidBoxScores(z: Tensor): Tensor {
  checkBoxLogits('sigmoidBoxScores', z);
  return concat([full([z.shape[0], 1], 0, { device: z.device }), sigmoid(foregroundLogits(z))], 1);
}

// ============================================================================ focal loss

/**
 * Sigmoid focal loss on box logits (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017;
 * fvcore sigmoid_focal_loss): over the C foreground columns, p = σ(z), p_t = p if y = 1 else 1 − p,
 * α_t = α if y = 1 else 1 − α, loss = Σ α_t (1 − p_t)^γ BCE(z, y), divided by `normalizer` (default
 * the number of foreground proposals, at least 1, as RetinaNet normalises by positives). Background
 * proposals have all-zero targets. Defaults γ = 2, α = 0.25. The background column gets no loss.
 */
export function sigmoidFocalBoxLoss(
  z: Tensor, labels: ArrayLike<number>, { gamma = 2, alpha = 0.25, normalizer }: { gamma?: number; alpha?: number; normalizer?: number } = {},
): Tensor {
  const op = 'sigmoidFocalBoxLoss';
  const [N, C] = checkBoxLogits(op, z);
  checkBoxLabels(op, labels, N, C);
  check(Number.isFinite(gamma) && gamma >= 0, op, `γ must be a non-negative number, got ${gamma}`);
  check(alpha === -1 || (alpha >= 0 && alpha <= 1), op, `α must be in [0, 1] (or −1: none), got ${alpha}`);
  const y = new Float32Array(N * C);
  let positives = 0;
  for (let i = 0; i < N; i++) if (labels[i] !== BG) { y[i * C + labels[i] - 1] = 1; positives++; }
  const norm = normalizer ?? Math.max(positives, 1);
  check(Number.isFinite(norm) && norm > 0, op, `the normalizer must be a positive number, got ${norm}`);
  const zf = foregroundLogits(z);
  const yt = tensor(y, [N, C], { device: z.device });
  const bce = sub(softplus(zf), mul(yt, zf));
  // 1 − p_t = y + p − 2yp = p + y(1 − 2p)
  const p = sigmoid(zf);
  const oneMinusPt = add(p, mul(yt, addScalar(mulScalar(p, -2), 1)));
  let per = gamma === 0 ? bce : mul(pow(relu(oneMinusPt), gamma), bce);
  if (alpha >= 0) per = mul(per, tensor(Float32Array.from(y, (v) => (v ? alpha : 1 - alpha)), [N, C], { device: z.device }));
  return mulScalar(sum(per), 1 / norm);
}

// ============================================================================ BAGS

/**
 * Balanced group softmax's groups for a detector (Li et al., "Overcoming Classifier Imbalance for
 * Long-tail Object Detection with Balanced Group Softmax", CVPR 2020; BalancedGroupSoftmax
 * tools/lvis_analyse.py get_cate_gs and GSBBoxHeadWith0). Bin 0 holds the background: its slice is
 * [background, foreground]. Bins 1..K hold the classes with instance count in (0, t_1), [t_1, t_2), …,
 * [t_{K−1}, ∞) (default t = 10, 100, 1000), each slice [others, its classes in id order]. Every bin is
 * kept, an empty one as a one-column slice, so the classifier has C + 1 + (K + 1) outputs as theirs.
 */
export interface BagsGroups {
  readonly numClasses: number;
  /** label2binlabel [bins][C + 1]: label → its column inside the bin's slice (0 = others / background). */
  readonly label2binlabel: readonly Int32Array[];
  /** pred_slice: [start, length] of each bin's slice in the raw scores. */
  readonly predSlice: readonly (readonly [number, number])[];
  /** The classes (1..C) of each bin; bin 0 is empty (background only). */
  readonly bins: readonly Int32Array[];
  /** Raw score columns: C + 1 + number of bins. */
  readonly numOutputs: number;
}

export function bagsGroups(instanceCounts: ArrayLike<number>, thresholds: readonly number[] = [10, 100, 1000]): BagsGroups {
  const op = 'bagsGroups';
  checkPerClass(op, 'instanceCounts', instanceCounts);
  check(thresholds.length > 0 && thresholds.every((t, i) => Number.isFinite(t) && t > 0 && (i === 0 || t > thresholds[i - 1])), op, `thresholds must be increasing positive numbers, got [${thresholds}]`);
  const C = instanceCounts.length;
  const K = thresholds.length + 1;
  const label2binlabel = Array.from({ length: K + 1 }, () => new Int32Array(C + 1));
  label2binlabel[0].fill(1, 1); // bin 0: background → 0, every foreground class → 1
  const bins: number[][] = Array.from({ length: K + 1 }, () => []);
  for (let k = 1; k <= C; k++) {
    const b = 1 + thresholds.filter((t) => instanceCounts[k - 1] >= t).length;
    bins[b].push(k);
    label2binlabel[b][k] = bins[b].length;
  }
  const predSlice: [number, number][] = [];
  let start = 0;
  for (let b = 0; b <= K; b++) {
    const length = b === 0 ? 2 : bins[b].length + 1;
    predSlice.push([start, length]);
    start += length;
  }
  return { numClasses: C, label2binlabel, predSlice, bins: bins.map((b) => Int32Array.from(b)), numOutputs: start };
}

/**
 * The BAGS box classifier: Linear(D, C + 1 + bins) initialised as mmdet's bbox head fc_cls (weight
 * N(0, 0.01²), bias 0). Their LVIS config (configs/bags/gs_mask_rcnn_r50_fpn_1x_lvis.py) fine-tunes it
 * from a trained baseline (load_from the 12-epoch model, selectp = 1) for 12 epochs, SGD lr 0.01,
 * ×0.1 at epochs 8 and 11, others_sample_ratio 8.
 */
export function bagsClassifier(inFeatures: number, groups: BagsGroups, { device = backend() }: DeviceOption = {}): Linear {
  const fc = new Linear(inFeatures, groups.numOutputs, { device });
  normal(fc.weight, 0, 0.01);
  constant(fc.bias!, 0);
  return fc;
}

/**
 * The group-softmax loss Σ_b CE_b (GSBBoxHeadWith0.loss with _remap_labels / _sample_others): each
 * bin's slice is a softmax over [others, its classes]; labels map through label2binlabel. Bin 0 uses
 * every proposal (background vs foreground), averaged over N. A bin b ≥ 1 uses its own classes'
 * proposals plus int(n_b·ratio) others drawn without replacement (all others when fewer), averaged
 * over that count; a bin with no proposal of its classes in the batch contributes 0. ratio = 8 (their
 * others_sample_ratio). `rng` draws the others (their np.random.choice).
 */
export function bagsLoss(raw: Tensor, labels: ArrayLike<number>, groups: BagsGroups, rng: Rng, othersRatio = 8): Tensor {
  const op = 'bagsLoss';
  check(raw.dtype === 'f32' && raw.rank === 2 && raw.shape[1] === groups.numOutputs, op, () => `expects raw scores [N, ${groups.numOutputs}] (C + 1 + bins), got ${raw.dtype} ${fmtShape(raw.shape)}`);
  const N = raw.shape[0];
  checkBoxLabels(op, labels, N, groups.numClasses);
  check(N > 0, op, 'no proposals');
  check(Number.isFinite(othersRatio) && othersRatio >= 0, op, `othersRatio must be a non-negative number, got ${othersRatio}`);
  let loss: Tensor | null = null;
  groups.predSlice.forEach(([start, length], b) => {
    const mapping = groups.label2binlabel[b];
    const mapped = Int32Array.from(labels, (y) => mapping[y]);
    let kept = N;
    if (b > 0) {
      const others: number[] = [];
      let fg = 0;
      mapped.forEach((m, i) => (m > 0 ? fg++ : others.push(i)));
      if (fg === 0) return;
      const take = Math.floor(fg * othersRatio);
      if (take < others.length) {
        // a uniform draw of `take` others without replacement; the rest are ignored (−1)
        for (let k = 0; k < take; k++) {
          const r = k + rng.int(others.length - k);
          [others[k], others[r]] = [others[r], others[k]];
        }
        for (let k = take; k < others.length; k++) mapped[others[k]] = -1;
        kept = fg + take;
      }
    }
    const ce = mulScalar(sum(softmaxKL(narrow(raw, 1, start, length), { labels: idx(mapped, raw) })), 1 / Math.max(kept, 1));
    loss = loss ? add(loss, ce) : ce;
  });
  return loss!;
}

/**
 * Class scores from the group softmax (GSBBoxHeadWith0._merge_score, the one their get_det_bboxes
 * uses): p_0 = softmax(bin 0)[background]; p_k = softmax(bin 0)[foreground] · softmax(bin of k)[k's
 * column], for k = 1..C. Returns probabilities [N, C + 1] (not logits), ready for post-processing.
 */
export function bagsScores(raw: Tensor, groups: BagsGroups): Tensor {
  const op = 'bagsScores';
  check(raw.dtype === 'f32' && raw.rank === 2 && raw.shape[1] === groups.numOutputs, op, () => `expects raw scores [N, ${groups.numOutputs}], got ${raw.dtype} ${fmtShape(raw.shape)}`);
  const C = groups.numClasses;
  const logp = concat(groups.predSlice.map(([s, l]) => logSoftmax(narrow(raw, 1, s, l))), 1); // laid out as raw
  const own = new Int32Array(C + 1); // column of each label's own probability
  own[0] = 0;
  groups.bins.forEach((members, b) => members.forEach((k) => (own[k] = groups.predSlice[b][0] + groups.label2binlabel[b][k])));
  const fgFactor = gather(logp, idx(new Int32Array(C + 1).fill(1), raw), 1); // log p(foreground) of bin 0
  const mask = row(Float32Array.from({ length: C + 1 }, (_, k) => (k === 0 ? 0 : 1)), raw);
  return exp(add(gather(logp, idx(own, raw), 1), mul(fgFactor, mask)));
}

// ============================================================================ SimCal

/**
 * SimCal's bi-level sampling (Wang et al., "The Devil is in Classification: A Simple Framework for
 * Long-tail Instance Segmentation", ECCV 2020; twangnh/SimCal): level 1 draws a category uniformly
 * among those present, level 2 an image containing it (longtail/samplers.ts BilevelSampler, whose
 * draws carry the category); level 3 keeps that image's proposals of the drawn category
 * (simcalBatch). `imageCategories[i]` lists the 1-based foreground labels of image i.
 */
export function simcalSampler(imageCategories: ReadonlyArray<ArrayLike<number>>, numClasses: number, opts: SamplerOptions = {}): BilevelSampler {
  // BilevelSampler counts classes from 0: label k is class k (class 0, the background, never occurs)
  return new BilevelSampler(imageCategories, { ...opts, numClasses: numClasses + 1 });
}

/** A SimCal calibration batch: rows of (drawn image, proposal) with their training labels. */
export interface SimcalBatch {
  /** Which draw (image of the batch) each row comes from. */
  readonly draw: Int32Array;
  /** The proposal index inside that image's sampled proposals. */
  readonly proposal: Int32Array;
  /** The label each row is trained on: 0 (background) or the drawn category. */
  readonly labels: Int32Array;
}

/**
 * Level 3 of bi-level sampling, as SimCal's compose_training_data (mmdet/apis/train_new.py): from each
 * drawn image keep the proposals assigned to that draw's category (`categories[k]`); then draw as many
 * background proposals (label 0), uniformly without replacement from the whole batch's background
 * proposals, as there are kept positives ("sample bg to be the same as fg"). Rows are laid out as
 * theirs: the background first, then each draw's positives in draw order. The calibration head is
 * then trained with the plain mean cross-entropy over these rows (their loss_target), 12 epochs, lr
 * ×0.1 at epoch 8 and ×0.01 at 11.
 */
export function simcalBatch(proposalLabels: ReadonlyArray<ArrayLike<number>>, categories: ArrayLike<number>, rng: Rng): SimcalBatch {
  const op = 'simcalBatch';
  check(proposalLabels.length === categories.length, op, `${proposalLabels.length} images for ${categories.length} drawn categories`);
  const posDraw: number[] = [], posProp: number[] = [], posLabel: number[] = [];
  const bgDraw: number[] = [], bgProp: number[] = [];
  proposalLabels.forEach((labels, k) => {
    const c = categories[k];
    check(Number.isInteger(c) && c > 0, op, `draw ${k}: the drawn category must be a foreground label >= 1, got ${c}`);
    for (let i = 0; i < labels.length; i++) {
      if (labels[i] === c) { posDraw.push(k); posProp.push(i); posLabel.push(c); }
      else if (labels[i] === BG) { bgDraw.push(k); bgProp.push(i); }
    }
  });
  // torch.randperm(#neg)[:#pos]: a uniform draw without replacement (all of them when fewer)
  const order = Int32Array.from(bgDraw, (_, i) => i);
  rng.shuffle(order);
  const take = Math.min(order.length, posDraw.length);
  const pick = order.subarray(0, take);
  return {
    draw: Int32Array.from([...Array.from(pick, (i) => bgDraw[i]), ...posDraw]),
    proposal: Int32Array.from([...Array.from(pick, (i) => bgProp[i]), ...posProp]),
    labels: Int32Array.from([...new Array<number>(take).fill(BG), ...posLabel]),
  };
}

/**
 * SimCal's combination of the original and the calibrated heads (their bbox_head.get_det_bboxes):
 * both softmaxed over [N, C + 1]; classes with fewer than `threshold` training instances take the
 * calibrated probability, the others and the background keep the original (threshold 300 for LVIS,
 * 400 for COCO in their code). Returns probabilities [N, C + 1].
 */
export function simcalCombine(original: Tensor, calibrated: Tensor, instanceCounts: ArrayLike<number>, threshold = 300): Tensor {
  const op = 'simcalCombine';
  const [, C] = checkBoxLogits(op, original, instanceCounts.length);
  check(calibrated.shape.join() === original.shape.join(), op, () => `the calibrated logits ${fmtShape(calibrated.shape)} must match the original ${fmtShape(original.shape)}`);
  checkPerClass(op, 'instanceCounts', instanceCounts, C);
  const useCal = Float32Array.from({ length: C + 1 }, (_, k) => (k > 0 && instanceCounts[k - 1] < threshold ? 1 : 0));
  const m = row(useCal, original);
  const p = softmax(original), q = softmax(calibrated);
  return add(p, mul(sub(q, p), m));
}

/**
 * SimCal's calibrated box classifier: a second cls_score, Linear(D, C + 1), that starts as a copy of
 * the detector's trained one (initFrom) and trains alone on the frozen detector's bi-level sampled
 * ROIs (MaskRCNN.simcalLoss: simcalBatch rows, plain mean CE); at inference simcalCombine merges its
 * probabilities with the original head's.
 */
export class SimcalBoxHead extends Module {
  cls_score: Linear;

  constructor(readonly inFeatures: number, readonly numClasses: number, { device = backend() }: DeviceOption = {}) {
    super();
    check(Number.isInteger(inFeatures) && inFeatures > 0 && Number.isInteger(numClasses) && numClasses > 0, 'SimcalBoxHead', `needs positive integer sizes, got D = ${inFeatures}, C = ${numClasses}`);
    this.cls_score = new Linear(inFeatures, numClasses + 1, { device });
  }

  /** Copies the detector's trained classifier (weight and bias) into the calibrated one. */
  initFrom(cls: Linear | CosineBoxClassifier): void {
    check(cls instanceof Linear && cls.bias !== null, 'SimcalBoxHead', 'SimCal calibrates the linear classifier with a bias (not the cosine one)');
    this.cls_score.loadStateDict(cls.stateDict());
  }

  /** x [N, D] box features → calibrated logits [N, C + 1]. */
  forward(x: Tensor): Tensor {
    check(x.dtype === 'f32' && x.rank === 2 && x.shape[1] === this.inFeatures, 'SimcalBoxHead', () => `features must be f32 [N, ${this.inFeatures}], got ${x.dtype} ${fmtShape(x.shape)}`);
    return this.cls_score.forward(x);
  }
}

// ============================================================================ DisAlign

/**
 * DisAlign on the box classifier (Zhang et al., "Distribution Alignment: A Unified Framework for
 * Long-tail Visual Recognition", CVPR 2021; cvpods DisAlignFastRCNNOutputLayers.forward): on the
 * foreground columns ẑ = σ(x)·(α ⊙ z + β) + (1 − σ(x))·z with σ(x) = sigmoid(confidence_layer(x));
 * the background column is passed through unchanged (theirs is the last column, here column 0).
 * Parameters as cvpods: logit_scale α [C] (ones), logit_bias β [C] (zeros), confidence_layer
 * Linear(D, 1) (weight N(0, 0.01²), bias 0), so the initial head reproduces z exactly. Stage 2
 * trains only these on a frozen detector: pass the frozen box features and logits.
 */
export class DisAlignBoxHead extends Module {
  logit_scale: Parameter;
  logit_bias: Parameter;
  confidence_layer: Linear;

  constructor(readonly inFeatures: number, readonly numClasses: number, { device = backend() }: DeviceOption = {}) {
    super();
    check(Number.isInteger(inFeatures) && inFeatures > 0 && Number.isInteger(numClasses) && numClasses > 0, 'DisAlignBoxHead', `needs positive integer sizes, got D = ${inFeatures}, C = ${numClasses}`);
    this.logit_scale = parameter(full([numClasses], 1, { device }));
    this.logit_bias = parameter(full([numClasses], 0, { device }));
    this.confidence_layer = new Linear(inFeatures, 1, { device });
    normal(this.confidence_layer.weight, 0, 0.01);
    constant(this.confidence_layer.bias!, 0);
  }

  /** σ(x) [N, 1]. */
  confidence(x: Tensor): Tensor {
    this.checkX(x);
    return sigmoid(this.confidence_layer.forward(x));
  }

  private checkX(x: Tensor): void {
    check(x.dtype === 'f32' && x.rank === 2 && x.shape[1] === this.inFeatures, 'DisAlignBoxHead', () => `features must be f32 [N, ${this.inFeatures}], got ${x.dtype} ${fmtShape(x.shape)}`);
  }

  /** x [N, D] box features, z [N, C + 1] the frozen detector's box logits (no gradient flows into z's producer unless the caller keeps one). */
  forward(x: Tensor, z: Tensor): Tensor {
    const op = 'DisAlignBoxHead';
    const [N] = checkBoxLogits(op, z, this.numClasses);
    check(x.shape[0] === N, op, () => `features ${fmtShape(x.shape)} and logits ${fmtShape(z.shape)} must have the same N`);
    this.checkX(x);
    return disalignBoxLogits(x, z, this.confidence_layer.weight, this.confidence_layer.bias!, this.logit_scale, this.logit_bias);
  }
}

/**
 * The DisAlign box logits as a function: foreground ẑ = z + σ·(α ⊙ z + β − z) (= σ·(αz + β) + (1 − σ)·z),
 * σ = sigmoid(x·vᵀ + b) [N, 1]; column 0 (background) is z's. x [N, D], z [N, C + 1], v [1, D], b [1],
 * α and β [C].
 */
export function disalignBoxLogits(x: Tensor, z: Tensor, v: Tensor, b: Tensor, alpha: Tensor, beta: Tensor): Tensor {
  const op = 'disalignBoxLogits';
  const [N, C] = checkBoxLogits(op, z);
  check(x.rank === 2 && x.shape[0] === N, op, () => `features ${fmtShape(x.shape)} and logits ${fmtShape(z.shape)} must have the same N`);
  const D = x.shape[1];
  check(v.shape.join() === `1,${D}` && b.size === 1, op, () => `the confidence layer must be weight [1, ${D}] and bias [1], got ${fmtShape(v.shape)}, ${fmtShape(b.shape)}`);
  check(alpha.shape.join() === `${C}` && beta.shape.join() === `${C}`, op, () => `logit_scale and logit_bias must be [${C}], got ${fmtShape(alpha.shape)}, ${fmtShape(beta.shape)}`);
  const s = sigmoid(add(matmul(x, v, { transB: true }), b)); // [N, 1]
  const zf = foregroundLogits(z);
  const fg = add(zf, mul(s, sub(add(mul(zf, alpha), beta), zf)));
  return concat([narrow(z, 1, 0, 1), fg], 1);
}

/**
 * G-RW weights for the detector's [C + 1] columns: w_k = (1/r_k)^ρ normalised to sum to C over the
 * foreground (r_k = n_k / Σ n over the per-class shot counts), with the background weighted 1
 * (DisAlign's LVIS code, segmentation/lvis1.0/…disalign.1x/roi_heads/fast_rcnn.py
 * GRWFastRCNNOutputs._init_weights: final_reweight = ones(C + 1), foreground = exp_reweight; theirs
 * puts the background last, column 0 here). ρ = GRW_SCALE, 0.8 in their LVIS v1 config.
 */
export function grwBoxWeights(instanceCounts: ArrayLike<number>, rho = 0.8): Float64Array {
  const fg = grwWeights(instanceCounts, rho);
  const w = new Float64Array(fg.length + 1);
  w[0] = 1;
  w.set(fg, 1);
  return w;
}

/**
 * The G-RW weighted cross-entropy of DisAlign's stage 2 on box logits [N, C + 1]: Σ_i w_{y_i}·CE_i /
 * Σ_i w_{y_i} (F.cross_entropy with weight, reduction mean: GRWFastRCNNOutputs.softmax_cross_entropy_loss),
 * background proposals weighted by w_0 = 1. `weights` from grwBoxWeights. Their stage 2 freezes the
 * backbone, the RPN and the box head's features (FREEZE, FREEZE_FEAT) and trains 9000 iterations at
 * lr 0.02 (×0.1 at 8000), 16 images a batch.
 */
export function grwBoxLoss(zhat: Tensor, labels: ArrayLike<number>, weights: ArrayLike<number>): Tensor {
  const op = 'grwBoxLoss';
  const [N, C] = checkBoxLogits(op, zhat, weights.length - 1);
  checkBoxLabels(op, labels, N, C);
  let den = 0;
  for (let i = 0; i < N; i++) den += weights[labels[i]];
  check(den > 0, op, 'the weights of the batch sum to 0');
  // −w_y log q_y = w_y·CE: gather the log-probabilities of the labels, weight them
  const logq = logSoftmax(zhat);
  const sel = new Float32Array(N * (C + 1));
  for (let i = 0; i < N; i++) sel[i * (C + 1) + labels[i]] = weights[labels[i]];
  return mulScalar(neg(sum(mul(logq, tensor(sel, [N, C + 1], { device: zhat.device })))), 1 / den);
}

export interface DisAlignBoxTrainOptions extends Stage2Options {
  /** ρ of the G-RW weights (default 0.8, their LVIS v1 GRW_SCALE). */
  rho?: number;
}

/**
 * DisAlign's stage 2 on a frozen detector, from cached box features [N, D] and the frozen box logits
 * [N, C + 1] of the same proposals (labels in [0, C], 0 = background): trains only the DisAlign
 * parameters with the G-RW weighted CE. SGD momentum 0.9, weight decay 1e-4, lr 0.02 (their LVIS
 * config; cosine per epoch here instead of their single step at 8000 of 9000 iterations), instance
 * sampling of proposals, at least STAGE2_MIN_ITERATIONS steps. Returns the head and each epoch's
 * mean loss.
 */
export async function trainDisAlignBoxHead(
  features: Tensor, logits: Tensor, labels: ArrayLike<number>, instanceCounts: ArrayLike<number>, opts: DisAlignBoxTrainOptions = {},
): Promise<{ head: DisAlignBoxHead; epochLosses: number[] }> {
  const op = 'trainDisAlignBoxHead';
  const C = instanceCounts.length;
  checkBoxLogits(op, logits, C);
  check(features.dtype === 'f32' && features.rank === 2 && features.shape[0] === logits.shape[0], op, () => `features ${features.dtype} ${fmtShape(features.shape)} and logits ${fmtShape(logits.shape)} must be f32 with the same N`);
  const D = features.shape[1];
  const y = checkCachedFeatures(op, features, labels, C + 1);
  const o = resolveStage2Options(op, opts, { epochs: 12, minIterations: STAGE2_MIN_ITERATIONS, batchSize: 512, lr: 0.02, momentum: 0.9, weightDecay: 1e-4, sampler: 'instance', seed: 0 });
  const head = new DisAlignBoxHead(D, C, { device: features.device });
  seededInit(head.confidence_layer.weight, 'normal', 0, 0.01, o.seed, INIT_STREAMS.detectionDisalignConfidence);
  const weights = grwBoxWeights(instanceCounts, opts.rho ?? 0.8);
  // the frozen logits travel with the features: one cached matrix [x | z], split per batch
  const cached = noGrad(() => concat([features, logits], 1));
  try {
    const epochLosses = await trainOnCachedFeatures(op, cached, y, C + 1, head.namedParameters(), (b) =>
      grwBoxLoss(head.forward(narrow(b.features, 1, 0, D), narrow(b.features, 1, D, C + 1)), b.labelValues, weights), o);
    return { head, epochLosses };
  } finally {
    cached.dispose();
  }
}

// ============================================================================ post-hoc and the cosine classifier

/**
 * τ-normalised box classifier (Kang et al., "Decoupling Representation and Classifier", ICLR 2020;
 * the seed's τ-norm): foreground rows w_k ← w_k / ‖w_k‖^τ, the background row and every bias left
 * as trained. Returns the logits x·Ŵᵀ + b [N, C + 1]. No gradient (post-hoc).
 */
export function tauNormBoxLogits(x: Tensor, fc: Linear, tau: number): Tensor {
  const op = 'tauNormBoxLogits';
  check(Number.isFinite(tau), op, `τ must be a finite number, got ${tau}`);
  check(fc.weight.shape[0] >= 2, op, `the classifier needs C + 1 >= 2 rows, got ${fmtShape(fc.weight.shape)}`);
  return noGrad(() => {
    const W = fc.weight;
    const R = W.shape[0];
    const norms = pow(sum(mul(W, W), 1, true), tau / 2); // ‖w_k‖^τ, [R, 1]
    // the background row is divided by 1: denom = mask·1 + (1 − mask)·‖w‖^τ
    const bgMask = tensor(Float32Array.from({ length: R }, (_, k) => (k === 0 ? 1 : 0)), [R, 1], { device: W.device });
    const denom = add(mul(norms, affine(bgMask, -1, 1)), bgMask);
    const Wn = mul(W, pow(denom, -1));
    const z = matmul(x, Wn, { transB: true });
    return fc.bias ? add(z, fc.bias) : z;
  });
}

/**
 * Post-hoc logit adjustment of box logits (Menon et al., "Long-tail learning via logit adjustment",
 * ICLR 2021): ẑ_k = z_k − τ·log π_k on the foreground columns with π_k = n_k / Σ n (instance counts),
 * the background column untouched.
 */
export function logitAdjustBoxLogits(z: Tensor, instanceCounts: ArrayLike<number>, tau = 1): Tensor {
  const op = 'logitAdjustBoxLogits';
  const [, C] = checkBoxLogits(op, z, instanceCounts.length);
  checkPerClass(op, 'instanceCounts', instanceCounts, C);
  check(Number.isFinite(tau), op, `τ must be a finite number, got ${tau}`);
  let total = 0;
  for (let k = 0; k < C; k++) {
    check(instanceCounts[k] > 0, op, `class ${k + 1} has no training instances; log π is undefined`);
    total += instanceCounts[k];
  }
  const shift = Float32Array.from({ length: C + 1 }, (_, k) => (k === 0 ? 0 : tau * Math.log(instanceCounts[k - 1] / total)));
  return sub(z, row(shift, z));
}

/**
 * The cosine box classifier (cvpods NormalizedLinear in CosineFastRCNNOutputLayers): z = s·x̂·Ŵᵀ over
 * all C + 1 classes, x̂ = x/‖x‖, ŵ_k = w_k/‖w_k‖, no bias, scale s learnt from 20 (scale_mode 'learn',
 * scale_init 20); weight N(0, 0.01²). Parameters `weight` [C + 1, D] and `scale` [1] as theirs, so
 * it loads as `cls_score`.
 */
export class CosineBoxClassifier extends Module {
  weight: Parameter;
  scale: Parameter | number;

  constructor(readonly inFeatures: number, readonly outFeatures: number, { scale = 20, learnScale = true, device = backend() }: DeviceOption & { scale?: number; learnScale?: boolean } = {}) {
    super();
    check(Number.isInteger(inFeatures) && inFeatures > 0 && Number.isInteger(outFeatures) && outFeatures > 1, 'CosineBoxClassifier', `needs D >= 1 and C + 1 >= 2, got ${inFeatures}, ${outFeatures}`);
    check(Number.isFinite(scale) && scale > 0, 'CosineBoxClassifier', `the scale must be a positive number, got ${scale}`);
    this.weight = new Linear(inFeatures, outFeatures, { bias: false, device }).weight;
    normal(this.weight, 0, 0.01);
    this.scale = learnScale ? parameter(full([1], scale, { device })) : scale;
  }

  forward(x: Tensor): Tensor {
    check(x.dtype === 'f32' && x.rank === 2 && x.shape[1] === this.inFeatures, 'CosineBoxClassifier', () => `features must be f32 [N, ${this.inFeatures}], got ${x.dtype} ${fmtShape(x.shape)}`);
    const cos = matmul(normalize(x, 1), normalize(this.weight, 1), { transB: true });
    return typeof this.scale === 'number' ? mulScalar(cos, this.scale) : mul(cos, this.scale);
  }
}

// ============================================================================ registry

/** The long-tail methods a detector picks by name (`--lt rfs|eql|focal|bags|simcal|disalign|cosine|tau-norm|logit-adjust`). */
export const DETECTION_LT_METHODS = ['baseline', 'rfs', 'eql', 'focal', 'bags', 'simcal', 'disalign', 'cosine', 'tau-norm', 'logit-adjust'] as const;
export type DetectionLtMethod = (typeof DETECTION_LT_METHODS)[number];

/** Validates a method name, with a one-line error listing the choices. */
export function detectionLtMethod(name: string): DetectionLtMethod {
  check((DETECTION_LT_METHODS as readonly string[]).includes(name), 'detectionLtMethod', `unknown long-tail method "${name}"; expected one of ${DETECTION_LT_METHODS.join(', ')}`);
  return name as DetectionLtMethod;
}

// ============================================================================ the box classifier of a detector, by name

/** How the ROI head's box classifier is trained and scored (MaskRCNNOptions.boxClassification). */
export interface BoxClassificationOptions {
  /**
   * The training loss, which also fixes the inference scores: 'softmax' (CE; softmax scores, the
   * baseline), 'eql' and 'focal' (sigmoid; sigmoid scores with background 0, the classifier bias
   * initialised at the prior), 'bags' (group softmax over C + 1 + bins outputs; merged scores).
   */
  loss?: 'softmax' | 'eql' | 'focal' | 'bags';
  /** The cosine classifier (CosineBoxClassifier) instead of the linear cls_score (softmax loss only). */
  cosine?: boolean;
  /** DisAlign: a DisAlignBoxHead wraps the box logits (roi_heads.disalign); its stage 2 trains it with G-RW. */
  disalign?: boolean;
  /**
   * SimCal: a calibrated copy of cls_score (roi_heads.simcal), trained by MaskRCNN.simcalLoss on the
   * frozen detector; at inference classes with fewer than simcalThreshold training instances take
   * its probability (simcalCombine).
   */
  simcal?: boolean;
  /** SimCal's instance-count threshold (300, their LVIS value). */
  simcalThreshold?: number;
  /** Post-hoc at inference only: τ-norm of the linear classifier's foreground rows, or logit adjustment by log π. */
  posthoc?: { kind: 'tau-norm' | 'logit-adjust'; tau: number };
  /** Training instances per foreground class (C entries): BAGS groups, G-RW, logit adjustment. */
  instanceCounts?: ArrayLike<number>;
  /** Image frequency per foreground class (C entries): EQL's T_λ. */
  frequencies?: ArrayLike<number>;
  eqlLambda?: number;
  focal?: { gamma?: number; alpha?: number };
  bagsThresholds?: readonly number[];
  bagsOthersRatio?: number;
  /** ρ of DisAlign's G-RW weights (0.8, their LVIS v1 GRW_SCALE). */
  grwRho?: number;
  /** Seed of BAGS's draws of "others". */
  seed?: number;
}

/**
 * One box-classification strategy: the classifier it needs, its loss on the sampled ROIs and its
 * inference probabilities [N, C + 1] (column 0 the background). Labels are 0..C, 0 = background.
 */
export class BoxClassification {
  readonly loss: NonNullable<BoxClassificationOptions['loss']>;
  readonly groups: BagsGroups | null;
  private readonly grw: Float64Array | null;
  private readonly othersRng: Rng;

  constructor(readonly numClasses: number, readonly opts: BoxClassificationOptions = {}) {
    const op = 'BoxClassification';
    const C = numClasses;
    this.loss = opts.loss ?? 'softmax';
    check(['softmax', 'eql', 'focal', 'bags'].includes(this.loss), op, `unknown box loss "${this.loss}"; expected softmax, eql, focal or bags`);
    check(!opts.cosine || this.loss === 'softmax', op, `the cosine classifier goes with the softmax loss, not ${this.loss}`);
    check(!opts.posthoc || this.loss === 'softmax', op, `post-hoc ${opts.posthoc?.kind} adjusts softmax logits, not ${this.loss}`);
    check(opts.posthoc?.kind !== 'tau-norm' || !opts.cosine, op, 'τ-norm needs the linear classifier, not the cosine one');
    const need = (what: 'instanceCounts' | 'frequencies') => {
      check(opts[what] !== undefined, op, `${this.describe()} needs ${what} (one entry per foreground class)`);
      checkPerClass(op, what, opts[what]!, C);
      return opts[what]!;
    };
    if (this.loss === 'eql') need('frequencies');
    this.groups = this.loss === 'bags' ? bagsGroups(need('instanceCounts'), opts.bagsThresholds) : null;
    this.grw = opts.disalign ? grwBoxWeights(need('instanceCounts'), opts.grwRho ?? 0.8) : null;
    if (opts.posthoc?.kind === 'logit-adjust') need('instanceCounts');
    if (opts.simcal) {
      check(this.loss === 'softmax' && !opts.cosine && !opts.disalign && !opts.posthoc, op, `SimCal calibrates the plain softmax classifier, not ${this.describe()}`);
      need('instanceCounts');
      const t = opts.simcalThreshold ?? 300;
      check(Number.isFinite(t) && t > 0, op, `the SimCal threshold must be a positive number, got ${t}`);
    }
    this.othersRng = new Rng(opts.seed ?? 0, 0, STREAMS.groupSoftmaxOthers);
  }

  /** e.g. "eql", "softmax + cosine + disalign". */
  describe(): string {
    const o = this.opts;
    return [this.loss, o.cosine ? 'cosine' : '', o.disalign ? 'disalign' : '', o.simcal ? 'simcal' : '', o.posthoc?.kind ?? ''].filter(Boolean).join(' + ');
  }

  /** The classifier (cls_score) on features of width D: C + 1 outputs, C + 1 + bins for BAGS; initialised as the method's official code. */
  classifier(inFeatures: number, { device = backend() }: DeviceOption = {}): Linear | CosineBoxClassifier {
    if (this.opts.cosine) return new CosineBoxClassifier(inFeatures, this.numClasses + 1, { device });
    if (this.groups) return bagsClassifier(inFeatures, this.groups, { device });
    const fc = new Linear(inFeatures, this.numClasses + 1, { device });
    if (this.loss === 'eql' || this.loss === 'focal') initSigmoidClassifier(fc);
    return fc;
  }

  /** The DisAlign head of this strategy (or null). */
  disalignHead(inFeatures: number, { device = backend() }: DeviceOption = {}): DisAlignBoxHead | null {
    return this.opts.disalign ? new DisAlignBoxHead(inFeatures, this.numClasses, { device }) : null;
  }

  /** The SimCal calibrated classifier of this strategy (or null); initialise it from the trained cls_score (SimcalBoxHead.initFrom). */
  simcalHead(inFeatures: number, { device = backend() }: DeviceOption = {}): SimcalBoxHead | null {
    return this.opts.simcal ? new SimcalBoxHead(inFeatures, this.numClasses, { device }) : null;
  }

  /**
   * loss_classifier on the sampled ROIs: raw classifier outputs, box features x [N, D] and labels.
   * With a DisAlign head, the G-RW weighted CE of ẑ = head(x, z) (DisAlign's stage 2).
   */
  lossOf(raw: Tensor, x: Tensor, labels: Int32Array, disalign: DisAlignBoxHead | null): Tensor {
    if (disalign) {
      check(this.grw !== null, 'BoxClassification', 'a DisAlign head needs boxClassification.disalign');
      return grwBoxLoss(disalign.forward(x, raw), labels, this.grw!);
    }
    switch (this.loss) {
      case 'eql': return eqlBoxLoss(raw, labels, this.opts.frequencies!, this.opts.eqlLambda ?? EQL_LAMBDA);
      case 'focal': return sigmoidFocalBoxLoss(raw, labels, this.opts.focal);
      case 'bags': return bagsLoss(raw, labels, this.groups!, this.othersRng, this.opts.bagsOthersRatio ?? 8);
      default: return crossEntropyMean(raw, labels);
    }
  }

  /** Inference probabilities [N, C + 1]: the method's own scores (softmax, sigmoid, BAGS merge), after DisAlign or a post-hoc adjustment, or SimCal's combination. */
  scores(raw: Tensor, x: Tensor, cls: Linear | CosineBoxClassifier, disalign: DisAlignBoxHead | null, simcal: SimcalBoxHead | null = null): Tensor {
    return noGrad(() => {
      check(!simcal || this.opts.simcal === true, 'BoxClassification', 'a SimCal head needs boxClassification.simcal');
      if (simcal) return simcalCombine(raw, simcal.forward(x), this.opts.instanceCounts!, this.opts.simcalThreshold ?? 300);
      let z = raw;
      const ph = this.opts.posthoc;
      if (ph?.kind === 'tau-norm') z = tauNormBoxLogits(x, cls as Linear, ph.tau);
      if (disalign) z = disalign.forward(x, z);
      if (ph?.kind === 'logit-adjust') z = logitAdjustBoxLogits(z, this.opts.instanceCounts!, ph.tau);
      if (this.groups) return bagsScores(z, this.groups);
      if (this.loss === 'eql' || this.loss === 'focal') return sigmoidBoxScores(z);
      return softmax(z);
    });
  }
}
