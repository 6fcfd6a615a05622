// torchvision's MaskRCNN (models/detection/mask_rcnn.py, generalized_rcnn.py), with its module tree
// and state-dict names: backbone (body + fpn), rpn (head), roi_heads (box_head, box_predictor,
// mask_head, mask_predictor); the transform (GeneralizedRCNNTransform: normalise, resize the
// shorter side to min_size with the longer ≤ max_size, pad to a multiple of 32) has no weights and
// is data/detection-transforms.ts. Inference returns per image boxes, scores, labels and masks
// pasted into the original image (paste_masks_in_image), and toCocoResults turns them into the
// COCO result format (RLE masks) for detection/eval.
//
//   const model = maskrcnnResnet50Fpn({ numClasses: 91 });
//   model.loadStateDict(torchvisionStateDict);          // no missing, no unexpected key
//   const [det] = await model.eval().detect([{ image, height, width }]);

import { backend } from '../kernels/device.js';
import { check } from '../kernels/errors.js';
import { tensor } from '../kernels/creation.js';
import { scopeAsync, type Tensor } from '../kernels/tensor.js';
import { noGrad } from '../autograd/tape.js';
import { detectionBatch, type DetectionSample, type ImageList } from '../data/detection-transforms.js';
import { maskFromRowMajor, rleEncode, rleToString } from '../data/masks.js';
import { dropFrozenBatchCounters } from '../nn/frozen-batchnorm.js';
import type { DeviceOption } from '../nn/layers.js';
import { Module, type LoadResult, type StateDict } from '../nn/module.js';
import { AnchorGenerator } from './anchors.js';
import { BackboneWithFPN, type NormKind, type ResnetArch } from './backbone.js';
import { FastRCNNPredictor, MaskRCNNHeads, MaskRCNNPredictor, RoIHeads, TwoMLPHead, type Detections, type RoIHeadsOptions } from './roi-heads.js';
import { tick } from './host-time.js';
import { RegionProposalNetwork, RPNHead, type RPNOptions } from './rpn.js';
import { roiAlign as roiAlignRaw } from '../kernels/roi-align.js';
import { add, concat, mulScalar, reshape, sum } from '../autograd/ops.js';
import { Rng, type DataRng } from '../data/rng.js';
import { BoxClassification, simcalBatch, type BoxClassificationOptions } from './longtail.js';
import { bceWithLogitsMean, boxIouHost, crossEntropyMean, encodeBoxesHost, Matcher, pickRows, sampleBalanced, smoothL1Sum } from './training.js';

const f = Math.fround;

/** torchvision's MaskRCNN keyword arguments (rpn_* and box_* prefixed as there). */
export interface MaskRCNNOptions extends DeviceOption {
  numClasses?: number;
  rpnPreNmsTopNTrain?: number;
  rpnPreNmsTopNTest?: number;
  rpnPostNmsTopNTrain?: number;
  rpnPostNmsTopNTest?: number;
  rpnNmsThresh?: number;
  rpnScoreThresh?: number;
  rpnFgIouThresh?: number;
  rpnBgIouThresh?: number;
  rpnBatchSizePerImage?: number;
  rpnPositiveFraction?: number;
  boxScoreThresh?: number;
  boxNmsThresh?: number;
  /** 100 (300 for LVIS evaluation) */
  boxDetectionsPerImg?: number;
  boxFgIouThresh?: number;
  boxBgIouThresh?: number;
  boxBatchSizePerImage?: number;
  boxPositiveFraction?: number;
  minSize?: number;
  maxSize?: number;
  imageMean?: readonly number[];
  imageStd?: readonly number[];
  /** TwoMLPHead width (1024) */
  representationSize?: number;
  /** MaskRCNNHeads widths (4 × 256) and the predictor's reduced dim (256) */
  maskLayers?: readonly number[];
  maskDimReduced?: number;
  anchorSizes?: readonly (readonly number[])[];
  aspectRatios?: readonly (readonly number[])[];
  /** The box classifier's long-tail method (detection/longtail.ts BoxClassification); softmax CE by default. */
  boxClassification?: BoxClassificationOptions;
}

/** One image's result, in the original image's coordinates. */
export interface MaskRCNNResult extends Detections {
  /** [D, H, W] mask probabilities pasted into the original image (threshold at 0.5 for binary masks) */
  pastedMasks: Float32Array;
  height: number;
  width: number;
}

export class MaskRCNN extends Module {
  backbone: BackboneWithFPN;
  rpn: RegionProposalNetwork;
  roi_heads: RoIHeads;
  readonly minSize: number;
  readonly maxSize: number;
  readonly imageMean: readonly number[];
  readonly imageStd: readonly number[];

  constructor(backbone: BackboneWithFPN, opts: MaskRCNNOptions = {}) {
    super();
    const { numClasses = 91, device = backend(), representationSize = 1024, maskLayers = [256, 256, 256, 256], maskDimReduced = 256 } = opts;
    const C = backbone.outChannels;
    this.backbone = backbone;
    const anchors = new AnchorGenerator(opts.anchorSizes ?? [[32], [64], [128], [256], [512]], opts.aspectRatios);
    const rpnOpts: RPNOptions = {
      preNmsTopNTrain: opts.rpnPreNmsTopNTrain, preNmsTopNTest: opts.rpnPreNmsTopNTest, postNmsTopNTrain: opts.rpnPostNmsTopNTrain,
      postNmsTopNTest: opts.rpnPostNmsTopNTest, nmsThresh: opts.rpnNmsThresh, scoreThresh: opts.rpnScoreThresh,
      fgIouThresh: opts.rpnFgIouThresh, bgIouThresh: opts.rpnBgIouThresh, batchSizePerImage: opts.rpnBatchSizePerImage, positiveFraction: opts.rpnPositiveFraction,
    };
    const roiOpts: RoIHeadsOptions = {
      scoreThresh: opts.boxScoreThresh, nmsThresh: opts.boxNmsThresh, detectionsPerImg: opts.boxDetectionsPerImg,
      fgIouThresh: opts.boxFgIouThresh, bgIouThresh: opts.boxBgIouThresh, batchSizePerImage: opts.boxBatchSizePerImage, positiveFraction: opts.boxPositiveFraction,
    };
    this.rpn = new RegionProposalNetwork(anchors, new RPNHead(C, anchors.numAnchorsPerLocation()[0], { device }), rpnOpts);
    const boxClassification = new BoxClassification(numClasses - 1, opts.boxClassification);
    this.roi_heads = new RoIHeads({
      boxHead: new TwoMLPHead(C * 7 * 7, representationSize, { device }),
      boxPredictor: new FastRCNNPredictor(representationSize, numClasses, { device, classifier: boxClassification.classifier(representationSize, { device }) }),
      boxClassification,
      maskHead: new MaskRCNNHeads(C, maskLayers, { device }),
      maskPredictor: new MaskRCNNPredictor(maskLayers[maskLayers.length - 1], maskDimReduced, numClasses, { device }),
    }, roiOpts);
    this.minSize = opts.minSize ?? 800;
    this.maxSize = opts.maxSize ?? 1333;
    this.imageMean = opts.imageMean ?? [0.485, 0.456, 0.406];
    this.imageStd = opts.imageStd ?? [0.229, 0.224, 0.225];
  }

  /** Accepts torchvision checkpoints: num_batches_tracked of FrozenBatchNorm2d layers is dropped as torchvision does. */
  loadStateDict(source: StateDict | Record<string, Tensor>, opts: { strict?: boolean } = {}): LoadResult {
    return super.loadStateDict(dropFrozenBatchCounters(this, source), opts);
  }

  /** The parameters an optimizer should update (the frozen backbone layers excluded). */
  trainableParameters(): [string, Tensor][] {
    return this.namedParameters().filter(([, p]) => p.requiresGrad);
  }

  /** GeneralizedRCNNTransform (evaluation): normalise, resize, pad; images CHW in [0, 1]. */
  transform(images: readonly Pick<DetectionSample, 'image' | 'height' | 'width'>[]): ImageList {
    const samples: DetectionSample[] = images.map((im) => {
      check(im.image.length === 3 * im.height * im.width, 'MaskRCNN', `an image of ${im.height}x${im.width} needs 3·h·w = ${3 * im.height * im.width} values, got ${im.image.length}`);
      return { image: im.image, channels: 3, height: im.height, width: im.width, originalSize: [im.height, im.width], target: { boxes: new Float32Array(0), labels: new Int32Array(0) } };
    });
    return detectionBatch(samples, { minSize: [this.minSize], maxSize: this.maxSize, mean: this.imageMean, std: this.imageStd });
  }

  /** The batch tensor of an ImageList on the model's device. */
  batchTensor(list: ImageList): Tensor {
    const dev = this.backbone.body.conv1.weight.device;
    return tensor(list.tensor, [list.batch, list.channels, list.height, list.width], { device: dev });
  }

  /**
   * The training losses of torchvision's MaskRCNN (train mode) for a batch from detectionBatch
   * (targets at the resized size, with masks): loss_objectness, loss_rpn_box_reg, loss_classifier,
   * loss_box_reg, loss_mask, each a scalar tensor on the tape. `rng` draws the samplers' subsets.
   */
  async losses(list: ImageList, rng: DataRng): Promise<Record<string, Tensor>> {
    check(this.training, 'MaskRCNN', 'losses() needs train mode (model.train())');
    checkTargets(list);
    const dev = this.backbone.body.conv1.weight.device;
    const x = this.batchTensor(list);
    const feats = this.backbone.forward(x);
    const B = list.batch;
    const rpn = await this.rpn.forward(feats, [list.height, list.width], list.imageSizes);
    // objectness [B·T] and deltas [B·T, 4] in (image, level, y, x, anchor) order, on the tape
    const T = rpn.objectness.shape[1];
    let t0 = performance.now();
    const anchors = rpn.anchors;
    const ro = this.rpn.opts;
    const rpnMatcher = new Matcher(ro.fgIouThresh, ro.bgIouThresh, true);
    const objIdx: number[] = [], objLbl: number[] = [], posIdx: number[] = [], posTgt: number[] = [];
    list.targets.forEach((t, b) => {
      const G = t.labels.length;
      const m = rpnMatcher.match(boxIouHost(t.boxes, anchors), G, T);
      const labels = Int32Array.from(m, (v) => (v >= 0 ? 1 : v === -1 ? 0 : -1));
      const { pos, neg } = sampleBalanced(labels, ro.batchSizePerImage, ro.positiveFraction, rng);
      for (const i of pos) { objIdx.push(b * T + i); objLbl.push(1); }
      for (const i of neg) { objIdx.push(b * T + i); objLbl.push(0); }
      const gt = new Float32Array(pos.length * 4), an = new Float32Array(pos.length * 4);
      pos.forEach((i, k) => {
        gt.set(t.boxes.subarray(m[i] * 4, m[i] * 4 + 4), k * 4);
        an.set(anchors.subarray(i * 4, i * 4 + 4), k * 4);
        posIdx.push(b * T + i);
      });
      posTgt.push(...encodeBoxesHost(gt, an, [1, 1, 1, 1]));
    });
    t0 = tick('rpn targets', t0);
    const up = (v: ArrayLike<number>, shape: number[], dtype: 'f32' | 'i32' = 'f32') => tensor(dtype === 'i32' ? Int32Array.from(v) : Float32Array.from(v), shape, { device: dev, dtype });
    const objFlat = reshape(rpn.objectness, [B * T, 1]);
    const losses: Record<string, Tensor> = {};
    losses.loss_objectness = bceWithLogitsMean(pickRows(objFlat, objIdx), up(objLbl, [objLbl.length, 1]));
    const delFlat = reshape(rpn.boxDeltas, [B * T, 4]);
    const rpnBox = posIdx.length ? smoothL1Sum(pickRows(delFlat, posIdx), up(posTgt, [posIdx.length, 4])) : null;
    losses.loss_rpn_box_reg = rpnBox ? mulScalarT(rpnBox, 1 / objIdx.length) : mulScalarT(sumAll(delFlat), 0);

    // ROI heads: proposals + ground truth, matched 0.5/0.5, 512 sampled with 25% positives
    const C = this.roi_heads.box_predictor.numClasses;
    const sampled: Tensor[] = [], labelsAll: number[] = [], regIdx: number[] = [], regTgt: number[] = [];
    const posBoxes: Tensor[] = [], maskTargets: Tensor[] = [], maskLabels: number[] = [];
    let S = 0;
    for (let b = 0; b < B; b++) {
      const t = list.targets[b];
      const G = t.labels.length;
      const { props, m, labels, pos, keep } = this.sampleProposals(rpn.proposals[b], t, rng);
      const boxes = new Float32Array(keep.length * 4), gt = new Float32Array(keep.length * 4);
      keep.forEach((i, k) => {
        boxes.set(props.subarray(i * 4, i * 4 + 4), k * 4);
        const g = Math.max(m[i], 0);
        gt.set(t.boxes.subarray(g * 4, g * 4 + 4), k * 4);
        labelsAll.push(labels[i]);
        if (labels[i] > 0) regIdx.push((S + k) * C + labels[i]);
      });
      const tg = encodeBoxesHost(gt, boxes, [10, 10, 5, 5]);
      keep.forEach((i, k) => (labels[i] > 0 ? regTgt.push(...tg.subarray(k * 4, k * 4 + 4)) : 0));
      sampled.push(up(boxes, [keep.length, 4]));
      S += keep.length;
      // mask targets: the matched gt masks ROI-aligned to the positive proposals
      const pb = new Float32Array(pos.length * 4), rois = new Float32Array(pos.length * 5);
      pos.forEach((i, k) => {
        pb.set(props.subarray(i * 4, i * 4 + 4), k * 4);
        rois.set([m[i], ...props.subarray(i * 4, i * 4 + 4)], k * 5);
        maskLabels.push(labels[i]);
      });
      posBoxes.push(up(pb, [pos.length, 4]));
      if (pos.length) {
        const [h, w] = list.imageSizes[b];
        const gm = up(Float32Array.from(t.masks!), [G, 1, h, w]);
        const r = up(rois, [pos.length, 5]);
        maskTargets.push(roiAlignRaw(gm, r, { outputSize: 28, spatialScale: 1, samplingRatio: -1, aligned: false }));
        gm.dispose();
        r.dispose();
      }
    }
    tick('roi targets', t0);
    const { classLogits, boxRegression, boxFeatures } = this.roi_heads.boxForward(feats, sampled, list.imageSizes);
    losses.loss_classifier = this.roi_heads.classifierLoss(classLogits, boxFeatures, Int32Array.from(labelsAll));
    losses.loss_box_reg = regIdx.length
      ? mulScalarT(smoothL1Sum(pickRows(reshape(boxRegression, [S * C, 4]), regIdx), up(regTgt, [regIdx.length, 4])), 1 / S)
      : mulScalarT(sumAll(boxRegression), 0);
    const P = maskLabels.length;
    if (P > 0) {
      const ml = this.roi_heads.maskForward(feats, posBoxes, list.imageSizes);
      const M = ml.shape[2] * ml.shape[3];
      const picked = pickRows(reshape(ml, [P * C, M]), maskLabels.map((l, p) => p * C + l));
      const tgt = maskTargets.length === 1 ? maskTargets[0] : concat(maskTargets, 0);
      losses.loss_mask = bceWithLogitsMean(picked, reshape(tgt, [P, M]));
    } else {
      losses.loss_mask = mulScalarT(sumAll(classLogits), 0);
    }
    return losses;
  }

  /**
   * torchvision's select_training_samples for one image: its proposals plus the ground truth,
   * matched (fg / bg IoU 0.5) and sampled (batchSizePerImage, positiveFraction). Returns the
   * candidates, their matches and labels (0 background, −1 ignored), the sampled positives and
   * every sampled index in order.
   */
  private sampleProposals(proposals: Float32Array, t: ImageList['targets'][number], rng: DataRng): { props: Float32Array; m: Int32Array; labels: Int32Array; pos: number[]; keep: number[] } {
    const oh = this.roi_heads.opts;
    const props = new Float32Array(proposals.length + t.boxes.length);
    props.set(proposals);
    props.set(t.boxes, proposals.length);
    const m = new Matcher(oh.fgIouThresh, oh.bgIouThresh, false).match(boxIouHost(t.boxes, props), t.labels.length, props.length / 4);
    const labels = Int32Array.from(m, (v) => (v >= 0 ? t.labels[v] : v === -1 ? 0 : -1));
    const { pos, neg } = sampleBalanced(labels, oh.batchSizePerImage, oh.positiveFraction, rng);
    return { props, m, labels, pos, keep: [...pos, ...neg].sort((p, q) => p - q) };
  }

  /**
   * SimCal's calibration loss on the frozen detector (train mode; Wang et al., ECCV 2020): each
   * image's training proposals plus its ground truth are matched and sampled as in losses(), with no
   * gradient; level 3 of bi-level sampling (simcalBatch) keeps image b's sampled proposals of its
   * drawn category `categories[b]` (1..C, simcalSampler's draw) and as many background ones of the
   * batch; the loss is the calibrated classifier's mean CE on those rows (their loss_target). Only
   * roi_heads.simcal gets a gradient. `rng` draws the samplers' subsets and the background rows.
   */
  async simcalLoss(list: ImageList, categories: ArrayLike<number>, rng: DataRng): Promise<Tensor> {
    check(this.training, 'MaskRCNN', 'simcalLoss() needs train mode (model.train())');
    const head = this.roi_heads.simcal;
    check(head !== undefined, 'MaskRCNN', 'simcalLoss() needs a model built with boxClassification.simcal');
    check(categories.length === list.batch, 'MaskRCNN', `${categories.length} drawn categories for a batch of ${list.batch} images`);
    checkTargets(list);
    const dev = this.backbone.body.conv1.weight.device;
    const x = this.batchTensor(list);
    const feats = noGrad(() => this.backbone.forward(x));
    const rpn = await noGrad(() => this.rpn.forward(feats, [list.height, list.width], list.imageSizes));
    const sampled = list.targets.map((t, b) => this.sampleProposals(rpn.proposals[b], t, rng));
    const rows = simcalBatch(sampled.map((s) => s.keep.map((i) => s.labels[i])), categories, new Rng(rng.nextU32()));
    // the rows' boxes image by image (the mean CE does not depend on the row order)
    const boxes: Tensor[] = [], labels: number[] = [];
    sampled.forEach((s, b) => {
      const mine = [...rows.draw.keys()].filter((r) => rows.draw[r] === b);
      const bx = new Float32Array(mine.length * 4);
      mine.forEach((r, k) => {
        const i = s.keep[rows.proposal[r]];
        bx.set(s.props.subarray(i * 4, i * 4 + 4), k * 4);
        labels.push(rows.labels[r]);
      });
      boxes.push(tensor(bx, [mine.length, 4], { device: dev }));
    });
    // no row (the drawn categories' positives all sampled away): a zero loss that keeps the step uniform
    if (labels.length === 0) return mulScalar(sum(head!.cls_score.weight), 0);
    const features = noGrad(() => this.roi_heads.box_head.forward(this.roi_heads.box_roi_pool.forward(feats, boxes, list.imageSizes)));
    return crossEntropyMean(head!.forward(features), Int32Array.from(labels));
  }

  /** Inference on a batch of images (eval mode): detections in each original image. */
  async detect(images: readonly Pick<DetectionSample, 'image' | 'height' | 'width'>[]): Promise<MaskRCNNResult[]> {
    check(!this.training, 'MaskRCNN', 'detect() runs in eval mode; call model.eval() first');
    const list = this.transform(images);
    return scopeAsync(async () => {
      const x = this.batchTensor(list);
      const features = noGrad(() => this.backbone.forward(x));
      const rpn = await noGrad(() => this.rpn.forward(features, [list.height, list.width], list.imageSizes));
      let t0 = performance.now();
      const dets = await noGrad(() => this.roi_heads.forward(features, rpn.proposals, list.imageSizes));
      t0 = tick('roi heads (with readbacks)', t0);
      const out = dets.map((d, i) => postprocessResult(d, list.imageSizes[i], list.originalSizes[i]));
      tick('paste masks', t0);
      return out;
    });
  }
}

/** Training targets torchvision accepts: at least one box per image, each with positive area, and masks. */
function checkTargets(list: ImageList): void {
  list.targets.forEach((t, i) => {
    check(t.labels.length > 0, 'MaskRCNN', `image ${i} of the batch has no annotation; drop it before batching (torchvision needs at least one box per training image)`);
    check(t.masks !== undefined, 'MaskRCNN', `image ${i} of the batch has no masks`);
    for (let k = 0; k < t.labels.length; k++) {
      const b = t.boxes.subarray(k * 4, k * 4 + 4);
      check(b[2] > b[0] && b[3] > b[1], 'MaskRCNN', `image ${i}, box ${k} [${Array.from(b).join(', ')}] has no positive area`);
    }
  });
}

const mulScalarT = (t: Tensor, s: number): Tensor => mulScalar(t, s);
const sumAll = (t: Tensor): Tensor => sum(t);

/** The sum of the loss terms (what torchvision's reference training loop back-propagates). */
export function totalLoss(losses: Record<string, Tensor>): Tensor {
  return Object.values(losses).reduce((a, b) => add(a, b));
}

/** GeneralizedRCNNTransform.postprocess: boxes to the original size, masks pasted (paste_masks_in_image). */
export function postprocessResult(d: Detections, resized: readonly [number, number], original: readonly [number, number]): MaskRCNNResult {
  const rh = f(f(original[0]) / f(resized[0])), rw = f(f(original[1]) / f(resized[1]));
  const boxes = new Float32Array(d.boxes.length);
  for (let i = 0; i < boxes.length; i += 4) {
    boxes[i] = f(d.boxes[i] * rw);
    boxes[i + 1] = f(d.boxes[i + 1] * rh);
    boxes[i + 2] = f(d.boxes[i + 2] * rw);
    boxes[i + 3] = f(d.boxes[i + 3] * rh);
  }
  const [H, W] = original;
  const pastedMasks = d.masks ? pasteMasksInImage(d.masks, boxes, H, W) : new Float32Array(0);
  return { ...d, boxes, pastedMasks, height: H, width: W };
}

/** Bilinear resize of one M×M map to h×w (PyTorch's upsample_bilinear2d, align_corners false, float32 index math). */
function resizeBilinear(src: Float32Array, inH: number, inW: number, outH: number, outW: number): Float32Array {
  const axis = (n: number, o: number) => {
    const scale = f(n / o);
    const i0 = new Int32Array(o), i1 = new Int32Array(o), l = new Float32Array(o);
    for (let k = 0; k < o; k++) {
      let s = f(scale * (k + 0.5) - 0.5);
      if (s < 0) s = 0;
      const i = Math.trunc(s);
      i0[k] = i;
      i1[k] = i < n - 1 ? i + 1 : i;
      l[k] = f(s - i);
    }
    return { i0, i1, l };
  };
  const ys = axis(inH, outH), xs = axis(inW, outW);
  const out = new Float32Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    const h1 = ys.l[y], h0 = f(1 - h1);
    for (let x = 0; x < outW; x++) {
      const w1 = xs.l[x], w0 = f(1 - w1);
      const a = ys.i0[y] * inW, b = ys.i1[y] * inW;
      out[y * outW + x] = f(f(h0 * f(f(w0 * src[a + xs.i0[x]]) + f(w1 * src[a + xs.i1[x]]))) + f(h1 * f(f(w0 * src[b + xs.i0[x]]) + f(w1 * src[b + xs.i1[x]]))));
    }
  }
  return out;
}

/**
 * torchvision's paste_masks_in_image (padding 1): each M×M mask padded by one zero pixel, its box
 * scaled by (M + 2)/M about the centre and truncated to integers, the mask resized bilinearly to
 * the box (w = x2 − x1 + 1, h = y2 − y1 + 1) and pasted into an H×W canvas. masks [D, M, M] -> [D, H, W].
 */
export function pasteMasksInImage(masks: Float32Array, boxes: Float32Array, H: number, W: number, padding = 1): Float32Array {
  const D = boxes.length / 4;
  const out = new Float32Array(D * H * W);
  if (D === 0) return out;
  const M = Math.round(Math.sqrt(masks.length / D));
  check(M * M * D === masks.length, 'pasteMasksInImage', `${masks.length} mask values do not make ${D} square masks`);
  const P = M + 2 * padding;
  const scale = f((M + 2 * padding) / M);
  for (let d = 0; d < D; d++) {
    const padded = new Float32Array(P * P);
    for (let y = 0; y < M; y++) for (let x = 0; x < M; x++) padded[(y + padding) * P + x + padding] = masks[d * M * M + y * M + x];
    const b = boxes.subarray(d * 4, d * 4 + 4);
    const wh = f(f(b[2] - b[0]) * 0.5), hh = f(f(b[3] - b[1]) * 0.5);
    const xc = f(f(b[2] + b[0]) * 0.5), yc = f(f(b[3] + b[1]) * 0.5);
    const sw = f(wh * scale), sh = f(hh * scale);
    const x0 = Math.trunc(f(xc - sw)), x1 = Math.trunc(f(xc + sw)), y0 = Math.trunc(f(yc - sh)), y1 = Math.trunc(f(yc + sh));
    const w = Math.max(x1 - x0 + 1, 1), h = Math.max(y1 - y0 + 1, 1);
    const r = resizeBilinear(padded, P, P, h, w);
    const xa = Math.max(x0, 0), xb = Math.min(x1 + 1, W), ya = Math.max(y0, 0), yb = Math.min(y1 + 1, H);
    for (let y = ya; y < yb; y++) for (let x = xa; x < xb; x++) out[d * H * W + y * W + x] = r[(y - y0) * w + (x - x0)];
  }
  return out;
}

/** COCO result entries (bbox as x, y, w, h; RLE segmentation of mask > 0.5) for one image. */
export function toCocoResults(result: MaskRCNNResult, imageId: number, categoryOf: (label: number) => number = (l) => l): { image_id: number; category_id: number; bbox: number[]; score: number; segmentation?: { size: [number, number]; counts: string } }[] {
  const { height: H, width: W } = result;
  return Array.from(result.scores, (score, i) => {
    const [x1, y1, x2, y2] = result.boxes.subarray(i * 4, i * 4 + 4);
    const entry: ReturnType<typeof toCocoResults>[number] = { image_id: imageId, category_id: categoryOf(result.labels[i]), bbox: [x1, y1, x2 - x1, y2 - y1], score };
    if (result.pastedMasks.length) {
      const bin = Uint8Array.from(result.pastedMasks.subarray(i * H * W, (i + 1) * H * W), (v) => (v > 0.5 ? 1 : 0));
      const rle = rleEncode(maskFromRowMajor(bin, H, W), H, W);
      entry.segmentation = { size: [H, W], counts: rleToString(rle) };
    }
    return entry;
  });
}

export interface ResnetFpnMaskRCNNOptions extends MaskRCNNOptions {
  norm?: NormKind;
  trainableLayers?: number;
  outChannels?: number;
  /** ResNet width (default 64) */
  baseChannels?: number;
}

/** A Mask R-CNN on a ResNet-FPN backbone (torchvision's maskrcnn_resnet50_fpn for 'resnet50'). */
export function maskrcnnResnetFpn(arch: ResnetArch, opts: ResnetFpnMaskRCNNOptions = {}): MaskRCNN {
  const backbone = new BackboneWithFPN(arch, { norm: opts.norm, trainableLayers: opts.trainableLayers, outChannels: opts.outChannels, baseChannels: opts.baseChannels, device: opts.device });
  return new MaskRCNN(backbone, opts);
}

/** torchvision.models.detection.maskrcnn_resnet50_fpn (91 classes by default). */
export const maskrcnnResnet50Fpn = (opts: ResnetFpnMaskRCNNOptions = {}): MaskRCNN => maskrcnnResnetFpn('resnet50', opts);
