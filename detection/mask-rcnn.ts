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
import { RegionProposalNetwork, RPNHead, type RPNOptions } from './rpn.js';

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
    this.roi_heads = new RoIHeads({
      boxHead: new TwoMLPHead(C * 7 * 7, representationSize, { device }),
      boxPredictor: new FastRCNNPredictor(representationSize, numClasses, { device }),
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

  /** Inference on a batch of images (eval mode): detections in each original image. */
  async detect(images: readonly Pick<DetectionSample, 'image' | 'height' | 'width'>[]): Promise<MaskRCNNResult[]> {
    check(!this.training, 'MaskRCNN', 'detect() runs in eval mode; call model.eval() first');
    const list = this.transform(images);
    return scopeAsync(async () => {
      const x = this.batchTensor(list);
      const features = noGrad(() => this.backbone.forward(x));
      const rpn = await noGrad(() => this.rpn.forward(features, [list.height, list.width], list.imageSizes));
      const dets = await noGrad(() => this.roi_heads.forward(features, rpn.proposals, list.imageSizes));
      return dets.map((d, i) => postprocessResult(d, list.imageSizes[i], list.originalSizes[i]));
    });
  }
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
}

/** A Mask R-CNN on a ResNet-FPN backbone (torchvision's maskrcnn_resnet50_fpn for 'resnet50'). */
export function maskrcnnResnetFpn(arch: ResnetArch, opts: ResnetFpnMaskRCNNOptions = {}): MaskRCNN {
  const backbone = new BackboneWithFPN(arch, { norm: opts.norm, trainableLayers: opts.trainableLayers, outChannels: opts.outChannels, device: opts.device });
  return new MaskRCNN(backbone, opts);
}

/** torchvision.models.detection.maskrcnn_resnet50_fpn (91 classes by default). */
export const maskrcnnResnet50Fpn = (opts: ResnetFpnMaskRCNNOptions = {}): MaskRCNN => maskrcnnResnetFpn('resnet50', opts);
