// The matching and accumulation that pycocotools' COCOeval and lvis-api's LVISEval share
// (cocoeval.py evaluateImg / accumulate / summarize, lvis/eval.py evaluate_img / accumulate /
// _summarize), re-written from reading them. Browser-safe, plain TypeScript, float64 throughout.
//
// Per image and category: detections sorted by score (stable, as numpy's mergesort argsort), ground
// truths sorted ignore-last (stable); at each IoU threshold t every detection in turn takes the
// unmatched gt of highest IoU ≥ min(t, 1 − 1e−10), preferring non-ignored gts (once matched to a
// regular gt it stops at the first ignored one). A detection matched to an ignored gt is ignored;
// an unmatched detection outside the area range is ignored. Per category and area range the
// images' detections are merged by score, cumulative TP/FP give recall = TP/#non-ignored-gt and
// precision = TP/(TP+FP+eps); precision is made monotone from the right and read at the 101 recall
// thresholds by searchsorted('left'), 0 past the last recall reached; −1 marks a category without
// non-ignored gt, left out of every mean.

/** numpy.linspace(start, stop, num) as numpy computes it: i·step + start, the last value exactly stop. */
export function linspace(start: number, stop: number, num: number): number[] {
  const step = (stop - start) / (num - 1);
  return Array.from({ length: num }, (_, i) => (i === num - 1 ? stop : i * step + start));
}

/** IoU thresholds 0.50:0.05:0.95 and recall thresholds 0:0.01:1, as pycocotools' Params. */
export const IOU_THRESHOLDS = linspace(0.5, 0.95, Math.round((0.95 - 0.5) / 0.05) + 1);
export const RECALL_THRESHOLDS = linspace(0, 1, Math.round((1 - 0) / 0.01) + 1);
/** Area ranges all / small / medium / large, in pixels². */
export const AREA_RANGES: readonly (readonly [number, number])[] = [
  [0, 1e5 ** 2],
  [0, 32 ** 2],
  [32 ** 2, 96 ** 2],
  [96 ** 2, 1e5 ** 2],
];
export const AREA_LABELS = ['all', 'small', 'medium', 'large'] as const;
export type AreaLabel = (typeof AREA_LABELS)[number];

/** np.spacing(1): the eps in precision = tp / (tp + fp + eps). */
const EPS = 2 ** -52;

/** The result of matching one image and category in one area range (pycocotools' evalImgs entry). */
export interface ImageEval {
  /** Scores of the (sorted, truncated) detections. */
  dtScores: number[];
  /** [T × D] 1 where the detection matched a gt at threshold t. */
  dtMatched: Uint8Array;
  /** [T × D] 1 where the detection is ignored at threshold t. */
  dtIgnore: Uint8Array;
  /** [G] 1 for an ignored gt (crowd, `ignore`, or outside the area range). */
  gtIgnore: Uint8Array;
}

export interface MatchGt {
  area: number;
  /** COCO: a crowd region, matched by any number of detections (and IoU over the detection's area). */
  iscrowd: boolean;
  /** Ignored whatever its area: COCO's crowd flag, LVIS's `ignore`. */
  ignore: boolean;
}

export interface MatchDt {
  area: number;
  score: number;
}

/** Indices sorted by descending score, stable (numpy argsort(-score, kind='mergesort')). */
export function argsortByScore(scores: readonly number[]): number[] {
  return Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a]);
}

/**
 * evaluateImg for one image, category and area range. `dts` are already sorted by score and
 * truncated; `ious` is D×G row-major (detection rows, gts in their original order).
 * `ignoreUnmatched`: LVIS's not-exhaustive category (every unmatched detection is ignored).
 */
export function evaluateImage(
  gts: readonly MatchGt[],
  dts: readonly MatchDt[],
  ious: Float64Array,
  area: readonly [number, number],
  iouThrs: readonly number[],
  ignoreUnmatched = false,
): ImageEval {
  const G = gts.length;
  const D = dts.length;
  const T = iouThrs.length;
  const ignoredGt = gts.map((g) => (g.ignore || g.area < area[0] || g.area > area[1] ? 1 : 0));
  // gts sorted ignore-last, stable
  const gtOrder = Array.from(gts.keys()).sort((a, b) => ignoredGt[a] - ignoredGt[b]);
  const gtIgnore = Uint8Array.from(gtOrder, (g) => ignoredGt[g]);
  const crowd = gtOrder.map((g) => gts[g].iscrowd);
  const gtMatched = new Uint8Array(T * G);
  const dtMatched = new Uint8Array(T * D);
  const dtIgnore = new Uint8Array(T * D);
  if (G > 0 && D > 0) {
    for (let t = 0; t < T; t++) {
      for (let d = 0; d < D; d++) {
        let best = Math.min(iouThrs[t], 1 - 1e-10);
        let m = -1;
        for (let j = 0; j < G; j++) {
          if (gtMatched[t * G + j] && !crowd[j]) continue;
          if (m > -1 && gtIgnore[m] === 0 && gtIgnore[j] === 1) break;
          const iou = ious[d * G + gtOrder[j]];
          if (iou < best) continue;
          best = iou;
          m = j;
        }
        if (m === -1) continue;
        dtIgnore[t * D + d] = gtIgnore[m];
        dtMatched[t * D + d] = 1;
        gtMatched[t * G + m] = 1;
      }
    }
  }
  for (let d = 0; d < D; d++) {
    const outside = ignoreUnmatched || dts[d].area < area[0] || dts[d].area > area[1];
    if (!outside) continue;
    for (let t = 0; t < T; t++) if (!dtMatched[t * D + d]) dtIgnore[t * D + d] = 1;
  }
  return { dtScores: dts.map((d) => d.score), dtMatched, dtIgnore, gtIgnore };
}

/** precision [T, R, K, A, M] and recall [T, K, A, M], C order, −1 where a category has no non-ignored gt. */
export interface Accumulated {
  T: number;
  R: number;
  K: number;
  A: number;
  M: number;
  precision: Float64Array;
  recall: Float64Array;
}

/**
 * accumulate: `evals[k][a]` lists the non-empty ImageEvals of category k in area range a, in image
 * order; `maxDets[m]` truncates each image's detections (Infinity: all, as LVIS).
 */
export function accumulate(evals: readonly (readonly (readonly ImageEval[])[])[], A: number, maxDets: readonly number[], iouThrs: readonly number[], recThrs: readonly number[]): Accumulated {
  const T = iouThrs.length;
  const R = recThrs.length;
  const K = evals.length;
  const M = maxDets.length;
  const precision = new Float64Array(T * R * K * A * M).fill(-1);
  const recall = new Float64Array(T * K * A * M).fill(-1);
  for (let k = 0; k < K; k++) {
    for (let a = 0; a < A; a++) {
      const E = evals[k][a];
      if (E.length === 0) continue;
      for (let m = 0; m < M; m++) {
        const maxDet = maxDets[m];
        const scores: number[] = [];
        const owner: number[] = []; // (image, detection) of each concatenated entry
        const det: number[] = [];
        let npig = 0;
        E.forEach((e, i) => {
          const n = Math.min(e.dtScores.length, maxDet);
          for (let d = 0; d < n; d++) {
            scores.push(e.dtScores[d]);
            owner.push(i);
            det.push(d);
          }
          for (const g of e.gtIgnore) if (g === 0) npig++;
        });
        if (npig === 0) continue;
        const order = argsortByScore(scores);
        const nd = order.length;
        for (let t = 0; t < T; t++) {
          const rc = new Float64Array(nd);
          const pr = new Array<number>(nd);
          let tp = 0;
          let fp = 0;
          for (let j = 0; j < nd; j++) {
            const e = E[owner[order[j]]];
            const D = e.dtScores.length;
            const d = det[order[j]];
            const matched = e.dtMatched[t * D + d];
            const ignored = e.dtIgnore[t * D + d];
            if (matched && !ignored) tp++;
            if (!matched && !ignored) fp++;
            rc[j] = tp / npig;
            pr[j] = tp / (fp + tp + EPS);
          }
          recall[((t * K + k) * A + a) * M + m] = nd ? rc[nd - 1] : 0;
          for (let i = nd - 1; i > 0; i--) if (pr[i] > pr[i - 1]) pr[i - 1] = pr[i];
          // searchsorted(rc, recThrs, 'left'); past the end, the rest stay 0
          let i = 0;
          for (let r = 0; r < R; r++) {
            while (i < nd && rc[i] < recThrs[r]) i++;
            if (i >= nd) {
              for (let rr = r; rr < R; rr++) precision[((((t * R + rr) * K + k) * A + a) * M) + m] = 0;
              break;
            }
            precision[((((t * R + r) * K + k) * A + a) * M) + m] = pr[i];
          }
        }
      }
    }
  }
  return { T, R, K, A, M, precision, recall };
}

/**
 * numpy's mean of a 1-D float64 array: the sum from 0 by pairwise summation (blocks of 8 partial
 * sums, halves above 128 elements) within 8192-element buffer chunks, divided by n.
 */
export function numpyMean(values: readonly number[]): number {
  const pairwise = (lo: number, n: number): number => {
    if (n < 8) {
      let res = 0;
      for (let i = 0; i < n; i++) res += values[lo + i];
      return res;
    }
    if (n <= 128) {
      const r = values.slice(lo, lo + 8);
      let i = 8;
      for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] += values[lo + i + j];
      let res = r[0] + r[1] + (r[2] + r[3]) + (r[4] + r[5] + (r[6] + r[7]));
      for (; i < n; i++) res += values[lo + i];
      return res;
    }
    let n2 = Math.floor(n / 2);
    n2 -= n2 % 8;
    return pairwise(lo, n2) + pairwise(lo + n2, n - n2);
  };
  let sum = 0;
  for (let lo = 0; lo < values.length; lo += 8192) sum += pairwise(lo, Math.min(8192, values.length - lo));
  return sum / values.length;
}

/** The mean of the entries > −1 (−1 when there are none), over the selected indices of each axis, C order. */
export function meanOver(arr: Float64Array, shape: readonly number[], select: readonly (readonly number[] | null)[]): number {
  const axes = shape.map((n, i) => select[i] ?? Array.from({ length: n }, (_, j) => j));
  if (axes.some((a) => a.length === 0)) return -1;
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((p, q) => p * q, 1));
  const vals: number[] = [];
  // an odometer over the selected indices, the last axis fastest (C order)
  const pos = new Array<number>(shape.length).fill(0);
  const last = shape.length - 1;
  const lastAxis = axes[last];
  for (;;) {
    let base = 0;
    for (let i = 0; i < last; i++) base += axes[i][pos[i]] * strides[i];
    for (const j of lastAxis) {
      const v = arr[base + j * strides[last]];
      if (v > -1) vals.push(v);
    }
    let i = last - 1;
    while (i >= 0 && ++pos[i] === axes[i].length) pos[i--] = 0;
    if (i < 0) break;
  }
  return vals.length ? numpyMean(vals) : -1;
}

/** Python's '{:0.3f}': correctly rounded, ties (exact binary halves) to even — JS toFixed rounds them up. */
export function formatFixed3(v: number): string {
  if (Number.isFinite(v) && Number.isInteger(v * 16) && !Number.isInteger(v * 1000)) {
    const q = Math.abs(v) * 10000; // n·625: an exact integer ending in 5 when v is an odd multiple of 1/16
    if (q % 10 === 5) {
      let t = Math.floor(q / 10);
      if (t % 2 === 1) t++;
      return `${v < 0 ? '-' : ''}${(t / 1000).toFixed(3)}`;
    }
  }
  return v.toFixed(3);
}
