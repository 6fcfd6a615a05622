// torchvision's RoIHeads for Mask R-CNN (models/detection/roi_heads.py, faster_rcnn.py,
// mask_rcnn.py), inference path:
// - box branch: MultiScaleRoIAlign(["0".."3"], 7, sampling 2) -> TwoMLPHead (fc6, fc7 with ReLU,
//   1024 wide in Mask R-CNN) -> FastRCNNPredictor (cls_score, bbox_pred with 4 per class);
// - postprocess_detections: softmax (or the box classification method's scores), boxes decoded per class (BoxCoder (10, 10, 5, 5)), clipped,
//   background dropped, score > 0.05, sides ≥ 0.01, class-wise NMS 0.5, the top 100 by score;
// - mask branch: MultiScaleRoIAlign(14, sampling 2) on the detected boxes -> MaskRCNNHeads (four
//   3x3 conv + ReLU, names mask_head.N.0.weight) -> MaskRCNNPredictor (conv5_mask: transposed
//   2x2/2 conv + ReLU, mask_fcn_logits: 1x1 conv per class) -> 28x28 logits; inference keeps the
//   sigmoid of each detection's class channel.

import { backend } from '../kernels/device.js';
import { check, fmtShape } from '../kernels/errors.js';
import { tensor } from '../kernels/creation.js';
import type { Tensor } from '../kernels/tensor.js';
import { relu, reshape } from '../autograd/ops.js';
import { constant, kaimingNormal } from '../nn/init.js';
import { Conv2d, ConvTranspose2d, Linear, type DeviceOption } from '../nn/layers.js';
import { Module, Sequential } from '../nn/module.js';
import { MultiScaleRoIAlign } from './poolers.js';
import { BoxClassification, type CosineBoxClassifier, type DisAlignBoxHead, type SimcalBoxHead } from './longtail.js';
import { batchedNmsHost, clipBoxesHost, decodeBoxesHost, definedOnly } from './rpn.js';

const f = Math.fround;

export class TwoMLPHead extends Module {
  fc6: Linear;
  fc7: Linear;

  constructor(inChannels: number, representationSize: number, { device = backend() }: DeviceOption = {}) {
    super();
    this.fc6 = new Linear(inChannels, representationSize, { device });
    this.fc7 = new Linear(representationSize, representationSize, { device });
  }

  forward(x: Tensor): Tensor {
    const flat = reshape(x, [x.shape[0], -1]);
    return relu(this.fc7.forward(relu(this.fc6.forward(flat))));
  }
}

export class FastRCNNPredictor extends Module {
  /** Linear (torchvision), or a long-tail method's classifier (BoxClassification.classifier: cosine, BAGS's wider one). */
  cls_score: Linear | CosineBoxClassifier;
  bbox_pred: Linear;

  constructor(inChannels: number, readonly numClasses: number, { device = backend(), classifier }: DeviceOption & { classifier?: Linear | CosineBoxClassifier } = {}) {
    super();
    this.cls_score = classifier ?? new Linear(inChannels, numClasses, { device });
    this.bbox_pred = new Linear(inChannels, numClasses * 4, { device });
  }

  forward(x: Tensor): { classLogits: Tensor; boxRegression: Tensor } {
    const flat = x.rank === 2 ? x : reshape(x, [x.shape[0], -1]);
    return { classLogits: this.cls_score.forward(flat), boxRegression: this.bbox_pred.forward(flat) };
  }
}

class ConvReLU extends Sequential {
  forward(x: Tensor): Tensor {
    return relu(this.at(0).forward(x));
  }
}

/** Four (by default) 3x3 conv + ReLU blocks: torchvision's MaskRCNNHeads (dilation 1). */
export class MaskRCNNHeads extends Sequential {
  constructor(inChannels: number, layers: readonly number[], { device = backend() }: DeviceOption = {}) {
    super();
    let c = inChannels;
    for (const w of layers) {
      const conv = new Conv2d(c, w, 3, { padding: 1, device });
      kaimingNormal(conv.weight, { mode: 'fan_out', nonlinearity: 'relu' });
      constant(conv.bias!, 0);
      this.push(new ConvReLU(conv));
      c = w;
    }
  }
}

export class MaskRCNNPredictor extends Module {
  conv5_mask: ConvTranspose2d;
  mask_fcn_logits: Conv2d;

  constructor(inChannels: number, dimReduced: number, numClasses: number, { device = backend() }: DeviceOption = {}) {
    super();
    this.conv5_mask = new ConvTranspose2d(inChannels, dimReduced, 2, { stride: 2, device });
    this.mask_fcn_logits = new Conv2d(dimReduced, numClasses, 1, { device });
    for (const m of [this.conv5_mask, this.mask_fcn_logits]) {
      kaimingNormal(m.weight, { mode: 'fan_out', nonlinearity: 'relu' });
      constant(m.bias!, 0);
    }
  }

  forward(x: Tensor): Tensor {
    return this.mask_fcn_logits.forward(relu(this.conv5_mask.forward(x)));
  }
}

export interface RoIHeadsOptions {
  scoreThresh?: number;
  nmsThresh?: number;
  detectionsPerImg?: number;
  /** training (section 3 of the issue) */
  fgIouThresh?: number;
  bgIouThresh?: number;
  batchSizePerImage?: number;
  positiveFraction?: number;
}

export interface Detections {
  /** [D, 4] x1, y1, x2, y2 */
  boxes: Float32Array;
  scores: Float32Array;
  /** class index in [1, numClasses) */
  labels: Int32Array;
  /** [D, 28, 28] mask probabilities of each detection's class (when the model has a mask branch) */
  masks?: Float32Array;
}

export class RoIHeads extends Module {
  box_roi_pool: MultiScaleRoIAlign;
  box_head: TwoMLPHead;
  box_predictor: FastRCNNPredictor;
  mask_roi_pool: MultiScaleRoIAlign;
  mask_head: MaskRCNNHeads;
  mask_predictor: MaskRCNNPredictor;
  /** DisAlign's calibration of the box logits (registered only when the strategy has one, so the baseline keeps torchvision's names). */
  declare disalign?: DisAlignBoxHead;
  /** SimCal's calibrated classifier (registered only when the strategy has one). */
  declare simcal?: SimcalBoxHead;
  /** How the box classifier is trained and scored (softmax CE by default, as torchvision). */
  readonly boxClassification: BoxClassification;
  readonly opts: Required<RoIHeadsOptions>;

  constructor(parts: { boxHead: TwoMLPHead; boxPredictor: FastRCNNPredictor; maskHead: MaskRCNNHeads; maskPredictor: MaskRCNNPredictor; boxClassification?: BoxClassification }, opts: RoIHeadsOptions = {}) {
    super();
    this.boxClassification = parts.boxClassification ?? new BoxClassification(parts.boxPredictor.numClasses - 1);
    const da = this.boxClassification.disalignHead(parts.boxHead.fc7.outFeatures, { device: parts.boxHead.fc7.weight.device });
    if (da) this.disalign = da;
    const sc = this.boxClassification.simcalHead(parts.boxHead.fc7.outFeatures, { device: parts.boxHead.fc7.weight.device });
    if (sc) this.simcal = sc;
    this.box_roi_pool = new MultiScaleRoIAlign({ featmapNames: ['0', '1', '2', '3'], outputSize: 7, samplingRatio: 2 });
    this.box_head = parts.boxHead;
    this.box_predictor = parts.boxPredictor;
    this.mask_roi_pool = new MultiScaleRoIAlign({ featmapNames: ['0', '1', '2', '3'], outputSize: 14, samplingRatio: 2 });
    this.mask_head = parts.maskHead;
    this.mask_predictor = parts.maskPredictor;
    this.opts = {
      scoreThresh: 0.05, nmsThresh: 0.5, detectionsPerImg: 100,
      fgIouThresh: 0.5, bgIouThresh: 0.5, batchSizePerImage: 512, positiveFraction: 0.25, ...definedOnly(opts),
    };
  }

  /** The box branch on given proposals (per image [P_i, 4] on the device): logits [ΣP, C] (raw classifier outputs), regression [ΣP, 4C], the box head's features [ΣP, D]. */
  boxForward(features: Record<string, Tensor>, proposals: readonly Tensor[], imageSizes: readonly (readonly [number, number])[]): { classLogits: Tensor; boxRegression: Tensor; boxFeatures: Tensor } {
    const pooled = this.box_roi_pool.forward(features, proposals, imageSizes);
    const boxFeatures = this.box_head.forward(pooled);
    return { ...this.box_predictor.forward(boxFeatures), boxFeatures };
  }

  /** loss_classifier of the box classification strategy on sampled ROIs (labels 0..C, 0 = background). */
  classifierLoss(classLogits: Tensor, boxFeatures: Tensor, labels: Int32Array): Tensor {
    return this.boxClassification.lossOf(classLogits, boxFeatures, labels, this.disalign ?? null);
  }

  /** Inference class probabilities [N, C + 1] of the strategy (softmax, sigmoid, BAGS merge; DisAlign, post-hoc; SimCal's combination). */
  classScores(classLogits: Tensor, boxFeatures: Tensor): Tensor {
    return this.boxClassification.scores(classLogits, boxFeatures, this.box_predictor.cls_score, this.disalign ?? null, this.simcal ?? null);
  }

  /** The mask branch on given boxes: logits [ΣD, C, 28, 28]. */
  maskForward(features: Record<string, Tensor>, boxes: readonly Tensor[], imageSizes: readonly (readonly [number, number])[]): Tensor {
    const pooled = this.mask_roi_pool.forward(features, boxes, imageSizes);
    return this.mask_predictor.forward(this.mask_head.forward(pooled));
  }

  /** postprocess_detections for one image after the class probabilities [P, C] (column 0 the background; classScores): decode, threshold, NMS, top-k. */
  detectionsFromScores(scores: Float32Array, regression: Float32Array, proposals: Float32Array, [height, width]: readonly [number, number]): Detections {
    const P = proposals.length / 4;
    const C = P > 0 ? scores.length / P : 0;
    const boxes = clipBoxesHost(decodeBoxesHost(regression, proposals, P, [10, 10, 5, 5]), height, width);
    const cand: number[] = [];
    const thr = f(this.opts.scoreThresh), minSize = f(1e-2);
    // proposal-major, class-minor, background (class 0) dropped: torchvision's flattening order
    for (let i = 0; i < P; i++) {
      for (let c = 1; c < C; c++) {
        const k = i * C + c;
        if (!(scores[k] > thr)) continue;
        if (f(boxes[k * 4 + 2] - boxes[k * 4]) >= minSize && f(boxes[k * 4 + 3] - boxes[k * 4 + 1]) >= minSize) cand.push(k);
      }
    }
    const cb = new Float32Array(cand.length * 4), cs = new Float32Array(cand.length), cl = new Int32Array(cand.length);
    cand.forEach((k, j) => {
      cb.set(boxes.subarray(k * 4, k * 4 + 4), j * 4);
      cs[j] = scores[k];
      cl[j] = k % C;
    });
    const keep = batchedNmsHost(cb, cs, cl, this.opts.nmsThresh).slice(0, this.opts.detectionsPerImg);
    const out: Detections = { boxes: new Float32Array(keep.length * 4), scores: new Float32Array(keep.length), labels: new Int32Array(keep.length) };
    keep.forEach((k, j) => {
      out.boxes.set(cb.subarray(k * 4, k * 4 + 4), j * 4);
      out.scores[j] = cs[k];
      out.labels[j] = cl[k];
    });
    return out;
  }

  /** Inference: detections per image, with 28x28 mask probabilities. */
  async forward(features: Record<string, Tensor>, proposals: readonly Float32Array[], imageSizes: readonly (readonly [number, number])[]): Promise<Detections[]> {
    check(!this.training, 'RoIHeads', 'training mode needs targets (use the training losses)');
    const dev = Object.values(features)[0].device;
    const props = proposals.map((p) => tensor(p, [p.length / 4, 4], { device: dev }));
    const { classLogits, boxRegression, boxFeatures } = this.boxForward(features, props, imageSizes);
    const probs = this.classScores(classLogits, boxFeatures);
    const pr = (await probs.data()) as Float32Array, rg = (await boxRegression.data()) as Float32Array;
    for (const t of [...props, classLogits, boxRegression, boxFeatures, probs]) t.dispose();
    const C = this.box_predictor.numClasses;
    const dets: Detections[] = [];
    let off = 0;
    proposals.forEach((p, b) => {
      const n = p.length / 4;
      dets.push(this.detectionsFromScores(pr.subarray(off * C, (off + n) * C), rg.subarray(off * C * 4, (off + n) * C * 4), p, imageSizes[b]));
      off += n;
    });
    const total = dets.reduce((s, d) => s + d.scores.length, 0);
    if (total === 0) {
      for (const d of dets) d.masks = new Float32Array(0);
      return dets;
    }
    const boxes = dets.map((d) => tensor(d.boxes, [d.scores.length, 4], { device: dev }));
    const logits = this.maskForward(features, boxes, imageSizes);
    check(logits.shape[1] === C, 'RoIHeads', () => `mask logits ${fmtShape(logits.shape)} do not have ${C} classes`);
    const ml = (await logits.data()) as Float32Array;
    for (const t of [...boxes, logits]) t.dispose();
    const M = logits.shape[2] * logits.shape[3];
    let r = 0;
    for (const d of dets) {
      d.masks = new Float32Array(d.scores.length * M);
      for (let j = 0; j < d.scores.length; j++, r++) {
        const base = (r * C + d.labels[j]) * M;
        for (let q = 0; q < M; q++) d.masks[j * M + q] = 1 / (1 + Math.exp(-ml[base + q]));
      }
    }
    return dets;
  }
}
