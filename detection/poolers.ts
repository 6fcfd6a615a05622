// torchvision's MultiScaleRoIAlign (ops/poolers.py): each box is pooled from the FPN level its size
// maps to, k = clamp(⌊k0 + log2(√(wh)/s0) + 1e-6⌋, k_min, k_max) with s0 = 224, k0 = 4, the levels'
// scales inferred from the feature and image sizes as 2^round(log2(feature / image)), and the output
// in the order of the boxes. The level assignment and the pooling stay on the GPU (one pass per
// level over all ROIs, each writing its own rows), and the op is differentiable with respect to
// the feature maps.

import { multiScaleRoiAlign, roiAlign } from '../autograd/detection-ops.js';
import { fpnLevels } from '../kernels/boxes.js';
import { full } from '../kernels/creation.js';
import { check, fmtShape } from '../kernels/errors.js';
import { concat } from '../kernels/layout.js';
import type { Tensor } from '../kernels/tensor.js';
import { Module } from '../nn/module.js';

/** torchvision's _infer_scale: 2^round(log2(feature / image)) from the height (the first dimension). */
export function inferScale(featureShape: readonly number[], originalSize: readonly [number, number]): number {
  const h = featureShape[featureShape.length - 2];
  // torch.round rounds half to even; log2 of a size ratio is never exactly x.5 in practice
  const e = Math.log2(Math.fround(h / originalSize[0]));
  const r = Math.abs(e % 1) === 0.5 ? 2 * Math.round(e / 2) : Math.round(e);
  return 2 ** r;
}

/** The FPN level mapper of the paper's Eqn. (1), as torchvision's LevelMapper. */
export class LevelMapper {
  constructor(
    readonly kMin: number,
    readonly kMax: number,
    readonly canonicalScale = 224,
    readonly canonicalLevel = 4,
    readonly eps = 1e-6,
  ) {}

  /** boxes [K, 4] (all images concatenated) -> level index in [0, kMax − kMin] as i32 [K]. */
  map(boxes: Tensor): Tensor {
    return fpnLevels(boxes, { kMin: this.kMin, kMax: this.kMax, canonicalScale: this.canonicalScale, canonicalLevel: this.canonicalLevel, eps: this.eps });
  }
}

/** torchvision's _convert_to_roi_format: per-image boxes [n_i, 4] -> rois [Σn_i, 5] (image index, box). */
export function boxesToRois(boxes: readonly Tensor[]): Tensor {
  check(boxes.length > 0, 'boxesToRois', 'needs at least one box list');
  const parts = boxes.map((b, i) => {
    check(b.rank === 2 && b.shape[1] === 4, 'boxesToRois', () => `boxes of image ${i} must be [N, 4], got ${fmtShape(b.shape)}`);
    return concat([full([b.shape[0], 1], i, { device: b.device }), b], 1);
  });
  const rois = parts.length === 1 ? parts[0] : concat(parts, 0);
  if (parts.length > 1) for (const p of parts) p.dispose();
  return rois;
}

export interface MultiScaleRoIAlignOptions {
  /** names of the feature maps to pool from, in order of increasing stride */
  featmapNames: readonly string[];
  outputSize: number | readonly [number, number];
  samplingRatio: number;
  canonicalScale?: number;
  canonicalLevel?: number;
}

/** torchvision.ops.MultiScaleRoIAlign (no parameters; aligned = false, as torchvision). */
export class MultiScaleRoIAlign extends Module {
  readonly featmapNames: readonly string[];
  readonly outputSize: readonly [number, number];
  readonly samplingRatio: number;
  readonly canonicalScale: number;
  readonly canonicalLevel: number;
  /** set by the first forward, as torchvision's setup_scales */
  scales: number[] | null = null;
  mapper: LevelMapper | null = null;

  constructor(opts: MultiScaleRoIAlignOptions) {
    super();
    this.featmapNames = [...opts.featmapNames];
    this.outputSize = typeof opts.outputSize === 'number' ? [opts.outputSize, opts.outputSize] : [opts.outputSize[0], opts.outputSize[1]];
    this.samplingRatio = opts.samplingRatio;
    this.canonicalScale = opts.canonicalScale ?? 224;
    this.canonicalLevel = opts.canonicalLevel ?? 4;
  }

  /** torchvision's _setup_scales: scales from the feature sizes against the largest image size. */
  setupScales(features: readonly Tensor[], imageShapes: readonly (readonly [number, number])[]): void {
    check(imageShapes.length > 0, 'MultiScaleRoIAlign', 'images list should not be empty');
    const original: [number, number] = [Math.max(...imageShapes.map((s) => s[0])), Math.max(...imageShapes.map((s) => s[1]))];
    this.scales = features.map((f) => inferScale(f.shape, original));
    const lvlMin = -Math.log2(this.scales[0]);
    const lvlMax = -Math.log2(this.scales[this.scales.length - 1]);
    this.mapper = new LevelMapper(Math.trunc(lvlMin), Math.trunc(lvlMax), this.canonicalScale, this.canonicalLevel);
  }

  /**
   * x: the feature maps by name ([N, C, H_l, W_l]), boxes: per image [n_i, 4] in image coordinates,
   * imageShapes: per image [height, width] -> [Σn_i, C, PH, PW] in box order.
   */
  forward(x: Record<string, Tensor>, boxes: readonly Tensor[], imageShapes: readonly (readonly [number, number])[]): Tensor {
    const features = Object.keys(x).filter((k) => this.featmapNames.includes(k)).map((k) => x[k]);
    check(features.length > 0, 'MultiScaleRoIAlign', () => `none of the feature maps ${this.featmapNames.join(', ')} is in the input (${Object.keys(x).join(', ')})`);
    this.setupScales(features, imageShapes);
    const rois = boxesToRois(boxes);
    if (features.length === 1) {
      return roiAlign(features[0], rois, { outputSize: this.outputSize, spatialScale: this.scales![0], samplingRatio: this.samplingRatio });
    }
    const all = boxes.length === 1 ? boxes[0] : concat(boxes, 0);
    const levels = this.mapper!.map(all);
    if (all !== boxes[0]) all.dispose();
    // rois and levels are inputs of the recorded op: the tape keeps them for the backward
    return multiScaleRoiAlign(features, rois, levels, { outputSize: this.outputSize, scales: this.scales!, samplingRatio: this.samplingRatio });
  }
}
