// torchvision's region proposal network (models/detection/rpn.py), inference path:
// - RPNHead: a shared 3x3 conv + ReLU, then per anchor an objectness logit (1x1 conv) and four box
//   deltas (1x1 conv), on every FPN level; init N(0, 0.01²), bias 0. State-dict names of 0.14:
//   conv.0.0.weight (a Sequential holding one Conv2dNormActivation), cls_logits, bbox_pred.
// - filter_proposals: the deltas decoded against the anchors (BoxCoder weights (1, 1, 1, 1)), per
//   image and level the pre-NMS top-n by objectness, sigmoid, clipped to the image, boxes with a
//   side < min_size removed, scores < score_thresh removed, NMS 0.7 per level (batched_nms), the
//   post-NMS top-n kept. Train: 2000/2000, test: 1000/1000 (torchvision's defaults).
// The head runs on the GPU, its outputs flattened there and read back once (two readbacks per
// batch); the variable-length filtering (top-n, NMS) runs on the host in float32 arithmetic
// (Math.fround) with torchvision's CPU semantics, so its kept set is torchvision's. On lavapipe
// that is the cheaper way: for 4 images of 128 px (1452 boxes each after the per-level top-600),
// host NMS took ~10 ms of CPU per image, while detection/topk.ts's GPU top-k took ~35 ms for the
// batch and kernels/nms.ts's GPU batched NMS ~20 ms per image (the path for real GPUs).

import { backend } from '../kernels/device.js';
import { check } from '../kernels/errors.js';
import type { Tensor } from '../kernels/tensor.js';
import { concat, permute, relu, reshape } from '../autograd/ops.js';
import { constant, normal } from '../nn/init.js';
import { Conv2d, type DeviceOption } from '../nn/layers.js';
import { Module, Sequential } from '../nn/module.js';
import { BBOX_XFORM_CLIP, greedyNmsCPU, type BoxWeights } from '../kernels/index.js';
import { AnchorGenerator } from './anchors.js';
import { tick } from './host-time.js';

const f = Math.fround;

class ConvReLU extends Sequential {
  constructor(conv: Conv2d) {
    super(conv);
  }

  forward(x: Tensor): Tensor {
    return relu(this.at(0).forward(x));
  }
}

export class RPNHead extends Module {
  conv: Sequential;
  cls_logits: Conv2d;
  bbox_pred: Conv2d;

  constructor(inChannels: number, numAnchors: number, { device = backend() }: DeviceOption = {}) {
    super();
    this.conv = new Sequential(new ConvReLU(new Conv2d(inChannels, inChannels, 3, { padding: 1, device })));
    this.cls_logits = new Conv2d(inChannels, numAnchors, 1, { device });
    this.bbox_pred = new Conv2d(inChannels, numAnchors * 4, 1, { device });
    for (const m of this.modules()) {
      if (m instanceof Conv2d) {
        normal(m.weight, 0, 0.01);
        constant(m.bias!, 0);
      }
    }
  }

  /** per level: objectness [N, A, H, W] and deltas [N, 4A, H, W] */
  forward(features: readonly Tensor[]): { logits: Tensor[]; deltas: Tensor[] } {
    const logits: Tensor[] = [], deltas: Tensor[] = [];
    for (const x of features) {
      const t = this.conv.forward(x);
      logits.push(this.cls_logits.forward(t));
      deltas.push(this.bbox_pred.forward(t));
    }
    return { logits, deltas };
  }
}

/** torchvision's BoxCoder.decode_single in float32 on host arrays: codes [N, 4C] against boxes [N, 4] -> [N, 4C]. */
export function decodeBoxesHost(codes: ArrayLike<number>, boxes: ArrayLike<number>, n: number, weights: BoxWeights, clip = BBOX_XFORM_CLIP): Float32Array {
  const C = n > 0 ? codes.length / (n * 4) : 0;
  const out = new Float32Array(n * C * 4);
  const [wx, wy, ww, wh] = weights.map(f);
  const fclip = f(clip);
  for (let i = 0; i < n; i++) {
    const w = f(boxes[i * 4 + 2] - boxes[i * 4]), h = f(boxes[i * 4 + 3] - boxes[i * 4 + 1]);
    const cx = f(boxes[i * 4] + f(0.5 * w)), cy = f(boxes[i * 4 + 1] + f(0.5 * h));
    for (let c = 0; c < C; c++) {
      const o = (i * C + c) * 4;
      const dx = f(codes[o] / wx), dy = f(codes[o + 1] / wy);
      const dw = Math.min(f(codes[o + 2] / ww), fclip), dh = Math.min(f(codes[o + 3] / wh), fclip);
      const px = f(f(dx * w) + cx), py = f(f(dy * h) + cy);
      const pw = f(f(Math.exp(dw)) * w), ph = f(f(Math.exp(dh)) * h);
      const hw = f(0.5 * pw), hh = f(0.5 * ph);
      out[o] = f(px - hw);
      out[o + 1] = f(py - hh);
      out[o + 2] = f(px + hw);
      out[o + 3] = f(py + hh);
    }
  }
  return out;
}

/** Clamps boxes in place to [0, width] × [0, height] (clip_boxes_to_image). */
export function clipBoxesHost(b: Float32Array, height: number, width: number): Float32Array {
  for (let i = 0; i < b.length; i += 4) {
    b[i] = Math.min(Math.max(b[i], 0), width);
    b[i + 1] = Math.min(Math.max(b[i + 1], 0), height);
    b[i + 2] = Math.min(Math.max(b[i + 2], 0), width);
    b[i + 3] = Math.min(Math.max(b[i + 3], 0), height);
  }
  return b;
}

/** torchvision.ops.batched_nms on the CPU: the coordinate trick up to 4000 coordinates, per-class NMS above. */
export function batchedNmsHost(boxes: Float32Array, scores: Float32Array, idxs: Int32Array, thr: number): number[] {
  const n = scores.length;
  if (n === 0) return [];
  return greedyNmsCPU(boxes, scores, idxs, thr, n * 4 <= 4000);
}

/** torch.topk order (descending, ties by the lower index) of values[start, start + n) -> the first k positions. */
function topIndices(values: Float32Array, start: number, n: number, k: number): Int32Array {
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = start + i;
  idx.sort((a, b) => values[b] - values[a] || a - b);
  return idx.subarray(0, k);
}

export interface RPNOptions {
  preNmsTopNTrain?: number;
  preNmsTopNTest?: number;
  postNmsTopNTrain?: number;
  postNmsTopNTest?: number;
  nmsThresh?: number;
  minSize?: number;
  scoreThresh?: number;
  /** training: the anchor matcher (0.7 / 0.3, low-quality matches allowed) and sampler (256, half positive) */
  fgIouThresh?: number;
  bgIouThresh?: number;
  batchSizePerImage?: number;
  positiveFraction?: number;
}

/** Drops undefined entries, so that defaults survive a spread. */
export const definedOnly = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

export interface RPNOutputs {
  /** per level, the raw head outputs (on the device) */
  logits: Tensor[];
  deltas: Tensor[];
  /** all levels flattened in (level, y, x, anchor) order: [B, T] logits and [B, 4T] deltas (on the tape in training) */
  objectness: Tensor;
  boxDeltas: Tensor;
  /** the anchors [T, 4] of the padded batch (the same for every image) */
  anchors: Float32Array;
  /** per image, the proposals [P, 4] (float32, image coordinates) */
  proposals: Float32Array[];
  /** per image, their objectness probabilities */
  scores: Float32Array[];
}

export class RegionProposalNetwork extends Module {
  head: RPNHead;
  readonly anchorGenerator: AnchorGenerator;
  readonly opts: Required<RPNOptions>;

  constructor(anchorGenerator: AnchorGenerator, head: RPNHead, opts: RPNOptions = {}) {
    super();
    this.anchorGenerator = anchorGenerator;
    this.head = head;
    this.opts = {
      preNmsTopNTrain: 2000, preNmsTopNTest: 1000, postNmsTopNTrain: 2000, postNmsTopNTest: 1000,
      nmsThresh: 0.7, minSize: 1e-3, scoreThresh: 0, fgIouThresh: 0.7, bgIouThresh: 0.3, batchSizePerImage: 256, positiveFraction: 0.5, ...definedOnly(opts),
    };
  }

  preNmsTopN(): number {
    return this.training ? this.opts.preNmsTopNTrain : this.opts.preNmsTopNTest;
  }

  postNmsTopN(): number {
    return this.training ? this.opts.postNmsTopNTrain : this.opts.postNmsTopNTest;
  }

  /**
   * features: the FPN maps (all levels, "pool" included) of a padded batch [N, C, H, W];
   * imageSizes: each image's [height, width] before padding.
   */
  async forward(features: Record<string, Tensor>, batchSize: readonly [number, number], imageSizes: readonly (readonly [number, number])[]): Promise<RPNOutputs> {
    const feats = Object.values(features);
    const { logits, deltas } = this.head.forward(feats);
    const grids = feats.map((t) => [t.shape[2], t.shape[3]] as [number, number]);
    const { anchors, perLevel } = this.anchorGenerator.gridAnchors(grids, batchSize);
    const B = feats[0].shape[0];
    check(imageSizes.length === B, 'RegionProposalNetwork', `${imageSizes.length} image sizes for a batch of ${B}`);
    const total = perLevel.reduce((a, b) => a + b, 0);
    // (b, level, y, x, a) order, as torchvision's concat_box_prediction_layers, flattened on the
    // device, so that one readback each brings them over
    const cat = (ts: Tensor[]) => (ts.length === 1 ? ts[0] : concat(ts, 1));
    const objectness = cat(logits.map((l) => reshape(permute(l, [0, 2, 3, 1]), [B, -1])));
    const boxDeltas = cat(deltas.map((d) => {
      const [n, a4, h, w] = d.shape;
      return reshape(permute(reshape(d, [n, a4 / 4, 4, h, w]), [0, 3, 4, 1, 2]), [B, -1]);
    }));
    let t0 = performance.now();
    const obj = (await objectness.data()) as Float32Array, del = (await boxDeltas.data()) as Float32Array;
    t0 = tick('readback', t0);
    const proposals: Float32Array[] = [], scores: Float32Array[] = [];
    for (let b = 0; b < B; b++) {
      const r = this.filterProposals(obj.subarray(b * total, (b + 1) * total), del.subarray(b * total * 4, (b + 1) * total * 4), anchors, perLevel, imageSizes[b]);
      proposals.push(r.boxes);
      scores.push(r.scores);
    }
    tick('proposals', t0);
    return { logits, deltas, objectness, boxDeltas, anchors, proposals, scores };
  }

  /** One image's filter_proposals: objectness [A] (logits), deltas [A, 4] against anchors [A, 4]. */
  filterProposals(objectness: Float32Array, deltas: Float32Array, anchors: Float32Array, perLevel: readonly number[], [height, width]: readonly [number, number]): { boxes: Float32Array; scores: Float32Array } {
    const K = perLevel.reduce((a, n) => a + Math.min(this.preNmsTopN(), n), 0);
    const sel = new Int32Array(K), lv = new Int32Array(K);
    let start = 0, k = 0;
    perLevel.forEach((n, level) => {
      for (const i of topIndices(objectness, start, n, Math.min(this.preNmsTopN(), n))) {
        sel[k] = i;
        lv[k++] = level;
      }
      start += n;
    });
    // only the selected anchors are decoded
    const codes = new Float32Array(K * 4), base = new Float32Array(K * 4), prob = new Float32Array(K);
    for (let j = 0; j < K; j++) {
      const i = sel[j];
      codes.set(deltas.subarray(i * 4, i * 4 + 4), j * 4);
      base.set(anchors.subarray(i * 4, i * 4 + 4), j * 4);
      prob[j] = 1 / (1 + Math.exp(-objectness[i]));
    }
    const boxes = clipBoxesHost(decodeBoxesHost(codes, base, K, [1, 1, 1, 1]), height, width);
    const minSize = f(this.opts.minSize), thr = f(this.opts.scoreThresh);
    const keep: number[] = [];
    for (let j = 0; j < K; j++) {
      const ok = f(boxes[j * 4 + 2] - boxes[j * 4]) >= minSize && f(boxes[j * 4 + 3] - boxes[j * 4 + 1]) >= minSize;
      if (ok && prob[j] >= thr) keep.push(j);
    }
    const kb = new Float32Array(keep.length * 4), ks = new Float32Array(keep.length), kl = new Int32Array(keep.length);
    keep.forEach((j, m) => {
      kb.set(boxes.subarray(j * 4, j * 4 + 4), m * 4);
      ks[m] = prob[j];
      kl[m] = lv[j];
    });
    const kept = batchedNmsHost(kb, ks, kl, this.opts.nmsThresh).slice(0, this.postNmsTopN());
    const out = new Float32Array(kept.length * 4), sc = new Float32Array(kept.length);
    kept.forEach((j, m) => {
      out.set(kb.subarray(j * 4, j * 4 + 4), m * 4);
      sc[m] = ks[j];
    });
    return { boxes: out, scores: sc };
  }
}
