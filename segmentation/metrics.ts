// Semantic-segmentation metrics as mmsegmentation computes them (mmseg/core/evaluation/metrics.py:
// intersect_and_union, total_area_to_metrics), from one confusion matrix accumulated over the whole
// set, plus the head / body / tail means of the DisAlign paper (Zhang et al. 2021, CVPR).
//
//   aAcc = Σ_c I_c / Σ_c L_c                 (pixel accuracy over all labelled pixels)
//   IoU_c = I_c / (L_c + P_c − I_c)          Acc_c = I_c / L_c
//   mIoU, mAcc = nanmean over classes        (a 0/0 class is NaN and left out of every mean)
//
// with I_c the pixels of class c predicted as c, L_c the ground-truth pixels of c, P_c the pixels
// predicted as c. A class absent from both ground truth and predictions has IoU = Acc = NaN; a class
// only predicted has IoU 0 (it counts) and Acc NaN (left out), exactly as mmseg's np.nanmean.
import { check } from '../kernels/errors.js';
import { ADE20K_SPLIT_BOUNDS } from './ade20k-split.js';

export type SegSplit = 'head' | 'body' | 'tail';

/** A confusion matrix over labelled pixels: row = ground truth, column = prediction. */
export class ConfusionMatrix {
  readonly counts: Float64Array;

  constructor(readonly numClasses: number, readonly ignoreIndex = 255) {
    check(Number.isSafeInteger(numClasses) && numClasses > 0, 'ConfusionMatrix', `numClasses must be a positive integer, got ${numClasses}`);
    this.counts = new Float64Array(numClasses * numClasses);
  }

  /**
   * Adds one image (or batch) of pixels. `gt` pixels equal to the ignore index are skipped; any other
   * label or prediction outside [0, numClasses) is an error naming `what` and the pixel.
   */
  update(pred: ArrayLike<number>, gt: ArrayLike<number>, what = 'image'): this {
    const n = this.numClasses, ign = this.ignoreIndex;
    check(pred.length === gt.length, 'ConfusionMatrix.update', `${what}: ${pred.length} predicted pixels for ${gt.length} labelled pixels`);
    for (let i = 0; i < gt.length; i++) {
      const y = gt[i];
      if (y === ign) continue;
      const p = pred[i];
      check(Number.isInteger(y) && y >= 0 && y < n, 'ConfusionMatrix.update', `${what}: label ${y} at pixel ${i} is outside [0, ${n}) and not the ignore index ${ign}`);
      check(Number.isInteger(p) && p >= 0 && p < n, 'ConfusionMatrix.update', `${what}: prediction ${p} at pixel ${i} is outside [0, ${n})`);
      this.counts[y * n + p]++;
    }
    return this;
  }

  /** Adds another matrix (e.g. from a worker) of the same size. */
  merge(other: ConfusionMatrix): this {
    check(other.numClasses === this.numClasses, 'ConfusionMatrix.merge', `${other.numClasses} classes into ${this.numClasses}`);
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i];
    return this;
  }
}

/** Mean over the finite entries (np.nanmean); NaN when there are none. */
export function nanmean(values: ArrayLike<number>, begin = 0, end = values.length): number {
  let s = 0, k = 0;
  for (let i = begin; i < end; i++) {
    if (!Number.isNaN(values[i])) {
      s += values[i];
      k++;
    }
  }
  return k > 0 ? s / k : NaN;
}

export interface SplitMeans {
  mIoU: number;
  mAcc: number;
  /** Classes in the split. */
  classes: number;
}

export interface SegMetrics {
  aAcc: number;
  mIoU: number;
  mAcc: number;
  /** Per class, NaN where 0/0. */
  iou: Float64Array;
  acc: Float64Array;
  /** I_c, L_c, P_c per class. */
  intersect: Float64Array;
  areaLabel: Float64Array;
  areaPred: Float64Array;
  head: SplitMeans;
  body: SplitMeans;
  tail: SplitMeans;
}

/** Class index → split: ranges on a frequency-sorted order, or any explicit assignment. */
export type ClassSplits = readonly SegSplit[];

/** DisAlign's ADE20K split: classes [0, 20) head, [20, 75) body, [75, 150) tail (ade_lt.py). */
export function ade20kSplits(): SegSplit[] {
  const out: SegSplit[] = [];
  for (const s of ['head', 'body', 'tail'] as const) for (let c = ADE20K_SPLIT_BOUNDS[s][0]; c < ADE20K_SPLIT_BOUNDS[s][1]; c++) out.push(s);
  return out;
}

/**
 * The same split for another class set, from training pixel counts: classes sorted by pixel count
 * (descending, ties by index), the first ⌈headShare·C⌉ head, the next up to ⌈(head+body)·C⌉ body,
 * the rest tail. The defaults are ADE20K's proportions, 20/150 and 75/150.
 */
export function frequencySplits(pixelCounts: ArrayLike<number>, headShare = 20 / 150, headBodyShare = 75 / 150): SegSplit[] {
  const c = pixelCounts.length;
  check(c > 0, 'frequencySplits', 'no classes');
  check(headShare > 0 && headShare <= headBodyShare && headBodyShare <= 1, 'frequencySplits', `needs 0 < headShare ≤ headBodyShare ≤ 1, got ${headShare}, ${headBodyShare}`);
  const order = Array.from({ length: c }, (_, i) => i).sort((a, b) => pixelCounts[b] - pixelCounts[a] || a - b);
  const nHead = Math.ceil(headShare * c - 1e-9), nHeadBody = Math.ceil(headBodyShare * c - 1e-9);
  const out: SegSplit[] = new Array(c);
  order.forEach((cls, rank) => (out[cls] = rank < nHead ? 'head' : rank < nHeadBody ? 'body' : 'tail'));
  return out;
}

/** aAcc, mIoU, mAcc, per-class IoU/Acc and head/body/tail means (defaults to ADE20K's split when C = 150). */
export function segmentationMetrics(cm: ConfusionMatrix, splits?: ClassSplits): SegMetrics {
  const n = cm.numClasses;
  const sp = splits ?? (n === 150 ? ade20kSplits() : undefined);
  check(sp === undefined || sp.length === n, 'segmentationMetrics', `split table has ${sp?.length} entries for ${n} classes`);
  const intersect = new Float64Array(n), areaLabel = new Float64Array(n), areaPred = new Float64Array(n);
  for (let y = 0; y < n; y++) {
    for (let p = 0; p < n; p++) {
      const v = cm.counts[y * n + p];
      areaLabel[y] += v;
      areaPred[p] += v;
      if (y === p) intersect[y] += v;
    }
  }
  const iou = new Float64Array(n), acc = new Float64Array(n);
  let totI = 0, totL = 0;
  for (let c = 0; c < n; c++) {
    const union = areaLabel[c] + areaPred[c] - intersect[c];
    iou[c] = union > 0 ? intersect[c] / union : NaN;
    acc[c] = areaLabel[c] > 0 ? intersect[c] / areaLabel[c] : NaN;
    totI += intersect[c];
    totL += areaLabel[c];
  }
  const splitMeans = (s: SegSplit): SplitMeans => {
    if (!sp) return { mIoU: NaN, mAcc: NaN, classes: 0 };
    const ious: number[] = [], accs: number[] = [];
    for (let c = 0; c < n; c++) if (sp[c] === s) {
      ious.push(iou[c]);
      accs.push(acc[c]);
    }
    return { mIoU: nanmean(ious), mAcc: nanmean(accs), classes: ious.length };
  };
  return {
    aAcc: totL > 0 ? totI / totL : NaN,
    mIoU: nanmean(iou),
    mAcc: nanmean(acc),
    iou,
    acc,
    intersect,
    areaLabel,
    areaPred,
    head: splitMeans('head'),
    body: splitMeans('body'),
    tail: splitMeans('tail'),
  };
}

/** Per-pixel argmax over the channel axis of [N, C, H, W] scores (first maximum on ties) → [N·H·W]. */
export function argmaxChannels(scores: ArrayLike<number>, shape: readonly number[]): Int32Array {
  check(shape.length === 4, 'argmaxChannels', `expects [N, C, H, W], got [${shape.join(', ')}]`);
  const [nb, c, h, w] = shape;
  check(scores.length === nb * c * h * w, 'argmaxChannels', `${scores.length} scores for shape [${shape.join(', ')}]`);
  const hw = h * w, out = new Int32Array(nb * hw);
  for (let b = 0; b < nb; b++) {
    const base = b * c * hw;
    for (let i = 0; i < hw; i++) {
      let best = 0, bv = scores[base + i];
      for (let k = 1; k < c; k++) {
        const v = scores[base + k * hw + i];
        if (v > bv) {
          bv = v;
          best = k;
        }
      }
      out[b * hw + i] = best;
    }
  }
  return out;
}

const pct = (x: number): string => (Number.isFinite(x) ? (x * 100).toFixed(2) : '-');

export interface SegResultRow {
  method: string;
  m: SegMetrics;
}

/** The DisAlign README's table: aAcc, mIoU, mAcc, head/body/tail IoU and Acc, in percent. */
export function segResultsMarkdown(rows: readonly SegResultRow[]): string {
  const head = '| Method | aAcc | mIoU | mAcc | mHeadIoU | mBodyIoU | mTailIoU | mHeadAcc | mBodyAcc | mTailAcc |\n|---|---|---|---|---|---|---|---|---|---|';
  const lines = rows.map(({ method, m }) =>
    `| ${method} | ${[m.aAcc, m.mIoU, m.mAcc, m.head.mIoU, m.body.mIoU, m.tail.mIoU, m.head.mAcc, m.body.mAcc, m.tail.mAcc].map(pct).join(' | ')} |`,
  );
  return [head, ...lines].join('\n');
}
