// The detection entries of the op table (autograd/table.ts): ROI align and its multi-level form
// (MultiScaleRoIAlign's pooling), differentiable with respect to the features. The ROIs and the
// level assignment are data, not parameters: they get no gradient (as in torchvision, where boxes
// come out of a non-differentiable proposal stage).

import { roiAlign as roiAlignRaw, roiAlignBackward, roiAlignLevel, type RoiAlignOptions } from '../kernels/roi-align.js';
import { zeros } from '../kernels/creation.js';
import { check, fmtShape } from '../kernels/errors.js';
import type { Tensor } from '../kernels/tensor.js';
import { defineOp } from './table.js';

const roiAlignOp = defineOp<RoiAlignOptions>('roiAlign', {
  forward: ([x, rois], a) => roiAlignRaw(x, rois, a),
  // dx[b, c, y, x] = Σ over the samples of every ROI of image b of g[k, c, ph, pw] · w_bilinear / count
  backward: (g, { inputs: [x, rois], attrs: a }) => [x.requiresGrad ? roiAlignBackward(g, rois, x.shape, a) : null, null],
}, 'detection');

/**
 * torchvision.ops.roi_align, differentiable with respect to x: x [N, C, H, W], rois [K, 5]
 * (batch index, x1, y1, x2, y2) -> [K, C, PH, PW].
 */
export function roiAlign(x: Tensor, rois: Tensor, opts: RoiAlignOptions): Tensor {
  return roiAlignOp([x, rois], opts);
}

interface MultiAttrs {
  outputSize: readonly [number, number];
  scales: readonly number[];
  samplingRatio: number;
  aligned: boolean;
}

const multiScaleOp = defineOp<MultiAttrs>('multiScaleRoiAlign', {
  forward: ([rois, levels, ...features], a) => {
    const out = zeros([rois.shape[0], features[0].shape[1], a.outputSize[0], a.outputSize[1]], { device: rois.device });
    features.forEach((f, level) => roiAlignLevel(f, rois, { outputSize: a.outputSize, spatialScale: a.scales[level], samplingRatio: a.samplingRatio, aligned: a.aligned }, { levels, level }, out));
    return out;
  },
  // each level's features get the gradient of the rows assigned to that level
  backward: (g, { inputs: [rois, levels, ...features], attrs: a }) => [
    null,
    null,
    ...features.map((f, level) => (f.requiresGrad
      ? roiAlignBackward(g, rois, f.shape, { outputSize: a.outputSize, spatialScale: a.scales[level], samplingRatio: a.samplingRatio, aligned: a.aligned }, { levels, level })
      : null)),
  ],
}, 'detection');

/**
 * Pools each ROI from the feature map of its level (levels: i32 [K], values in [0, features.length)),
 * output [K, C, PH, PW] in ROI order: MultiScaleRoIAlign's _multiscale_roi_align, in one pass per
 * level without reading the assignment back.
 */
export function multiScaleRoiAlign(
  features: readonly Tensor[],
  rois: Tensor,
  levels: Tensor,
  opts: { outputSize: number | readonly [number, number]; scales: readonly number[]; samplingRatio?: number; aligned?: boolean },
): Tensor {
  const op = 'multiScaleRoiAlign';
  check(features.length > 0 && features.length === opts.scales.length, op, `needs one scale per feature map, got ${features.length} maps and ${opts.scales.length} scales`);
  const C = features[0].shape[1];
  for (const f of features) check(f.rank === 4 && f.shape[1] === C, op, () => `feature maps must be [N, ${C}, H, W], got ${features.map((t) => fmtShape(t.shape)).join(', ')}`);
  const outputSize: [number, number] = typeof opts.outputSize === 'number' ? [opts.outputSize, opts.outputSize] : [opts.outputSize[0], opts.outputSize[1]];
  return multiScaleOp([rois, levels, ...features], { outputSize, scales: opts.scales, samplingRatio: opts.samplingRatio ?? -1, aligned: Boolean(opts.aligned) });
}
