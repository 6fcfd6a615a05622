// The training side of torchvision's Mask R-CNN (models/detection/_utils.py, rpn.py, roi_heads.py):
// - Matcher: each prediction takes the ground truth of highest IoU; IoU < low -> background (−1),
//   low ≤ IoU < high -> between (−2, ignored); allow_low_quality_matches (RPN) re-admits, for every
//   ground truth, the predictions that reach its best IoU. RPN 0.7/0.3 with low-quality matches,
//   ROI heads 0.5/0.5.
// - BalancedPositiveNegativeSampler: up to batch·fraction positives, the rest negatives, each drawn
//   by a random permutation (torch.randperm there; a seeded DataRng here, so a seed reproduces it).
// - Losses: RPN objectness BCE-with-logits over the sampled anchors and smooth-L1 (β = 1/9, summed)
//   on the positives' deltas, divided by the sampled count; ROI classifier CE (mean over the sampled
//   ROIs) and smooth-L1 (β = 1/9, summed) on the positives' class-specific regression divided by
//   the sampled count; mask BCE-with-logits on the 28x28 ROI-aligned ground-truth masks of the
//   positives at their class channel (torchvision's project_masks_on_boxes: roi_align, scale 1,
//   adaptive sampling, aligned false).
// Matching and sampling run on read-back boxes (host arrays); the losses are autograd ops on the GPU.

import { check } from '../kernels/errors.js';
import { tensor } from '../kernels/creation.js';
import { compare } from '../kernels/elementwise.js';
import type { Tensor } from '../kernels/tensor.js';
import { abs, add, addScalar, exp, log, mean, mul, mulScalar, neg, relu, reshape, sub, sum, where, logSoftmax } from '../autograd/ops.js';
import { segmentSum } from '../autograd/segment-ops.js';
import { shuffleInPlace, type DataRng } from '../data/rng.js';

const f = Math.fround;
export const BELOW_LOW_THRESHOLD = -1;
export const BETWEEN_THRESHOLDS = -2;

/** IoU matrix [G, N] of host boxes (float32 arithmetic as torchvision's box_iou). */
export function boxIouHost(gt: ArrayLike<number>, boxes: ArrayLike<number>): Float32Array {
  const G = gt.length / 4, N = boxes.length / 4;
  const out = new Float32Array(G * N);
  for (let g = 0; g < G; g++) {
    const ga = f(f(gt[g * 4 + 2] - gt[g * 4]) * f(gt[g * 4 + 3] - gt[g * 4 + 1]));
    for (let n = 0; n < N; n++) {
      const w = Math.max(0, f(Math.min(gt[g * 4 + 2], boxes[n * 4 + 2]) - Math.max(gt[g * 4], boxes[n * 4])));
      const h = Math.max(0, f(Math.min(gt[g * 4 + 3], boxes[n * 4 + 3]) - Math.max(gt[g * 4 + 1], boxes[n * 4 + 1])));
      const inter = f(w * h);
      const na = f(f(boxes[n * 4 + 2] - boxes[n * 4]) * f(boxes[n * 4 + 3] - boxes[n * 4 + 1]));
      out[g * N + n] = f(inter / f(f(ga + na) - inter));
    }
  }
  return out;
}

export class Matcher {
  constructor(
    readonly highThreshold: number,
    readonly lowThreshold: number,
    readonly allowLowQualityMatches = false,
  ) {
    check(lowThreshold <= highThreshold, 'Matcher', `low threshold ${lowThreshold} must not exceed the high threshold ${highThreshold}`);
  }

  /** quality [G, N] -> per prediction the matched ground-truth index, or −1 / −2. */
  match(quality: Float32Array, G: number, N: number): Int32Array {
    check(G > 0, 'Matcher', 'No ground-truth boxes available for one of the images during training');
    const matches = new Int32Array(N);
    const best = new Float32Array(N);
    for (let n = 0; n < N; n++) {
      let m = -Infinity, arg = 0;
      for (let g = 0; g < G; g++) if (quality[g * N + n] > m) { m = quality[g * N + n]; arg = g; }
      best[n] = m;
      matches[n] = m < this.lowThreshold ? BELOW_LOW_THRESHOLD : m < this.highThreshold ? BETWEEN_THRESHOLDS : arg;
    }
    if (this.allowLowQualityMatches) {
      for (let g = 0; g < G; g++) {
        let m = -Infinity;
        for (let n = 0; n < N; n++) m = Math.max(m, quality[g * N + n]);
        // every prediction reaching this ground truth's best quality gets its all-gt argmax back
        for (let n = 0; n < N; n++) {
          if (quality[g * N + n] !== m) continue;
          let bm = -Infinity, arg = 0;
          for (let h = 0; h < G; h++) if (quality[h * N + n] > bm) { bm = quality[h * N + n]; arg = h; }
          matches[n] = arg;
        }
      }
    }
    return matches;
  }
}

/** labels: 1 positive, 0 negative, −1 ignored -> sampled positive and negative positions. */
export function sampleBalanced(labels: Int32Array, batchSizePerImage: number, positiveFraction: number, rng: DataRng): { pos: number[]; neg: number[] } {
  const posAll: number[] = [], negAll: number[] = [];
  labels.forEach((l, i) => (l >= 1 ? posAll.push(i) : l === 0 ? negAll.push(i) : 0));
  const numPos = Math.min(Math.floor(batchSizePerImage * positiveFraction), posAll.length);
  const numNeg = Math.min(batchSizePerImage - numPos, negAll.length);
  const pick = (a: number[], k: number) => Array.from(shuffleInPlace(Int32Array.from(a), rng).subarray(0, k)).sort((x, y) => x - y);
  return { pos: pick(posAll, numPos), neg: pick(negAll, numNeg) };
}

/** BoxCoder.encode_single on host arrays: targets of gt [N, 4] relative to proposals [N, 4]. */
export function encodeBoxesHost(gt: ArrayLike<number>, proposals: ArrayLike<number>, weights: readonly [number, number, number, number]): Float32Array {
  const N = proposals.length / 4;
  const out = new Float32Array(N * 4);
  const [wx, wy, ww, wh] = weights.map(f);
  for (let i = 0; i < N; i++) {
    const pw = f(proposals[i * 4 + 2] - proposals[i * 4]), ph = f(proposals[i * 4 + 3] - proposals[i * 4 + 1]);
    const px = f(proposals[i * 4] + f(0.5 * pw)), py = f(proposals[i * 4 + 1] + f(0.5 * ph));
    const gw = f(gt[i * 4 + 2] - gt[i * 4]), gh = f(gt[i * 4 + 3] - gt[i * 4 + 1]);
    const gx = f(gt[i * 4] + f(0.5 * gw)), gy = f(gt[i * 4 + 1] + f(0.5 * gh));
    out[i * 4] = f(wx * f(f(gx - px) / pw));
    out[i * 4 + 1] = f(wy * f(f(gy - py) / ph));
    out[i * 4 + 2] = f(ww * f(Math.log(f(gw / pw))));
    out[i * 4 + 3] = f(wh * f(Math.log(f(gh / ph))));
  }
  return out;
}

/** Σ smooth-L1(x − t) with β: 0.5·d²/β where |d| < β, else |d| − 0.5·β (torchvision's det_utils.smooth_l1_loss, summed). */
export function smoothL1Sum(x: Tensor, target: Tensor, beta = 1 / 9): Tensor {
  const d = sub(x, target);
  const a = abs(d);
  const betaT = tensor([beta], [1], { device: x.device });
  const small = compare('lt', a, betaT);
  const loss = where(small, mulScalar(mul(d, d), 0.5 / beta), addScalar(a, -0.5 * beta));
  betaT.dispose();
  // `small` stays alive: where's backward reads it (the enclosing scope frees it)
  return sum(loss);
}

/** mean over elements of BCE-with-logits: max(x, 0) − x·t + log(1 + e^(−|x|)). */
export function bceWithLogitsMean(x: Tensor, target: Tensor): Tensor {
  return mean(addScalarLog(sub(relu(x), mul(x, target)), x));
}

function addScalarLog(base: Tensor, x: Tensor): Tensor {
  // base + log(1 + exp(−|x|))
  return addTensor(base, log(addScalar(exp(neg(abs(x))), 1)));
}

function addTensor(a: Tensor, b: Tensor): Tensor {
  return add(a, b);
}

/**
 * Rows `idx` of x [N, ...F], the indices distinct and known on the host: a segment sum with one
 * row per segment, whose backward writes each row's gradient straight back, where gather's
 * backward would first sort the indices (radix passes) to add up repeats that cannot occur here.
 */
export function pickRows(x: Tensor, idx: ArrayLike<number>): Tensor {
  const N = x.shape[0], K = idx.length;
  const perm = new Int32Array(N), seen = new Uint8Array(N);
  for (let k = 0; k < K; k++) {
    const i = idx[k];
    check(Number.isInteger(i) && i >= 0 && i < N && !seen[i], 'pickRows', () => `index ${i} at ${k} is out of range for ${N} rows or repeated`);
    seen[i] = 1;
    perm[k] = i;
  }
  // positions K.. of perm lie after the last segment: never read
  const offsets = Int32Array.from({ length: K + 1 }, (_, k) => k);
  return segmentSum(x, tensor(offsets, [K + 1], { dtype: 'i32', device: x.device }), tensor(perm, [N], { dtype: 'i32', device: x.device }));
}

/** Cross-entropy (mean) of logits [S, C] for i32 labels on the host. */
export function crossEntropyMean(logits: Tensor, labels: Int32Array): Tensor {
  const S = logits.shape[0], C = logits.shape[1];
  const lp = logSoftmax(logits);
  const picked = pickRows(reshape(lp, [S * C, 1]), Int32Array.from(labels, (l, i) => i * C + l));
  return mulScalar(sum(picked), -1 / Math.max(S, 1));
}
