// Per-pixel losses for semantic segmentation: cross-entropy over logits [N, C, H, W] with an ignore
// index and class weights, the auxiliary-head loss (torchvision's references / mmseg: weight 0.4),
// and the class weights of generalized re-weighting (G-RW, DisAlign) from pixel frequencies.
// The cross-entropy is the fused per-pixel op of autograd/pixel-ops.ts (log-softmax along the
// class axis); this layer takes host labels (what the loader produces), checks them, and adds
// mmseg's reduction.
import { check, fmtShape } from '../kernels/errors.js';
import { tensor } from '../kernels/creation.js';
import type { Tensor } from '../kernels/tensor.js';
import { add, mulScalar } from '../autograd/ops.js';
import { pixelCrossEntropy } from '../autograd/pixel-ops.js';
import type { SegOutput } from './models.js';

/**
 * 'mean': torch's F.cross_entropy — Σ_p w_{y_p} ℓ_p / Σ_p w_{y_p} over non-ignored pixels;
 * 'mmseg': mmseg 0.x's default (avg_non_ignore=False) — Σ_p w_{y_p} ℓ_p / (all pixels, ignored ones included);
 * 'sum'.
 */
export type PixelReduction = 'mean' | 'mmseg' | 'sum';

export interface SegCEOptions {
  ignoreIndex?: number;
  /** w_c, length C */
  classWeights?: ArrayLike<number>;
  reduction?: PixelReduction;
}

/**
 * Cross-entropy of logits [N, C, H, W] against host labels [N·H·W] (values in [0, C) or the ignore
 * index). With every pixel ignored the loss is 0 (torch's 'mean' gives NaN; a batch of ignored crops
 * should not stop a run).
 */
export function segCrossEntropy(logits: Tensor, labels: ArrayLike<number>, opts: SegCEOptions = {}): Tensor {
  const op = 'segCrossEntropy';
  const { ignoreIndex = 255, classWeights, reduction = 'mean' } = opts;
  check(logits.rank === 4, op, () => `logits must be [N, C, H, W], got ${fmtShape(logits.shape)}`);
  const [n, c, h, w] = logits.shape;
  const pixels = n * h * w;
  check(labels.length === pixels, op, () => `${labels.length} labels for logits ${fmtShape(logits.shape)} (${pixels} pixels)`);
  if (classWeights) check(classWeights.length === c, op, `${classWeights.length} class weights for ${c} classes`);
  let denom = 0;
  for (let p = 0; p < pixels; p++) {
    const y = labels[p];
    if (y === ignoreIndex) continue;
    check(Number.isInteger(y) && y >= 0 && y < c, op, `label ${y} at pixel ${p} is outside [0, ${c}) and not the ignore index ${ignoreIndex}`);
    denom += classWeights ? classWeights[y] : 1;
  }
  const target = tensor(Int32Array.from(labels), [n, h, w], { dtype: 'i32', device: logits.device });
  const total = pixelCrossEntropy(logits, target, { ignoreIndex, weight: classWeights, reduction: 'sum' });
  const d = reduction === 'sum' ? 1 : reduction === 'mmseg' ? pixels : denom;
  return d === 1 ? total : mulScalar(total, d > 0 ? 1 / d : 0);
}

export interface SegLossOptions extends SegCEOptions {
  /** weight of the auxiliary head's loss (torchvision's references and mmseg: 0.4) */
  auxWeight?: number;
}

/** CE(out) + auxWeight · CE(aux): the training loss of FCN / DeepLab with an auxiliary FCN head. */
export function segmentationLoss(output: SegOutput, labels: ArrayLike<number>, opts: SegLossOptions = {}): Tensor {
  const { auxWeight = 0.4, ...ce } = opts;
  const main = segCrossEntropy(output.out, labels, ce);
  if (!output.aux || auxWeight === 0) return main;
  return add(main, mulScalar(segCrossEntropy(output.aux, labels, ce), auxWeight));
}

/** Pixels of each class in label maps (the ignore index and values ≥ C are not counted). */
export function pixelCounts(labels: Iterable<ArrayLike<number>>, numClasses: number): Float64Array {
  const counts = new Float64Array(numClasses);
  for (const l of labels) for (let i = 0; i < l.length; i++) if (l[i] < numClasses) counts[l[i]]++;
  return counts;
}

/**
 * G-RW class weights of DisAlign's segmentation loss (grw_cross_entropy_loss.py,
 * get_class_grw_weight): w_c = r_c^(−ρ), normalised to Σ_c w_c = C, with r_c the class's share of
 * training pixels (objectInfo150's Ratio on ADE20K) and ρ = exp_scale (0.2 in its ADE20K config).
 * A class with no pixel would get an infinite weight: it is an error.
 */
export function grwPixelWeights(pixelShare: ArrayLike<number>, rho = 0.2): Float64Array {
  const c = pixelShare.length;
  const w = new Float64Array(c);
  for (let i = 0; i < c; i++) {
    check(pixelShare[i] > 0, 'grwPixelWeights', `class ${i} has pixel share ${pixelShare[i]}: G-RW needs every class present`);
    w[i] = pixelShare[i] ** -rho;
  }
  const s = w.reduce((a, b) => a + b, 0);
  return w.map((v) => (v / s) * c);
}
