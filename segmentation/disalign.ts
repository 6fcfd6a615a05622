// DisAlign per pixel (Zhang et al., "Distribution Alignment: A Unified Framework for Long-tail
// Visual Recognition", CVPR 2021), as the official segmentation head
// (Megvii-BaseDetection/DisAlign, semantic_seg/disalign/models/decode_heads/fcn_head_disalign.py):
//
//   σ(x) = sigmoid(ReLU(BN(conv1x1(x))))          x: the head's features before cls_seg, one channel
//   ẑ   = σ ⊙ (z ⊙ α + β) + (1 − σ) ⊙ z           α = logit_scale [1, C, 1, 1] (ones), β = logit_bias (zeros)
//
// (the confidence layer is mmcv's ConvModule with the head's norm and activation, so the ReLU
// comes before the sigmoid and σ ≥ 1/2, as in the official code). Stage 2 trains only α, β and the
// confidence layer on the frozen stage-1 model (its train.py --disalign), with the G-RW weighted
// cross-entropy (losses.ts grwPixelWeights; ρ = 0.2 in its ADE20K config) and no auxiliary loss.
// One deliberate difference: the frozen model stays in eval mode here, so its BN statistics do not
// move during stage 2 (mmseg keeps the whole model in train mode).
//
// Post-hoc baselines on the same frozen model: logit adjustment z_c − τ log π_c with π the training
// pixel prior (Menon et al., ICLR 2021) and τ-normalisation of the classifier weights
// w_c / ‖w_c‖^τ (Kang et al., ICLR 2020; the bias of the 1×1 conv is kept).
import { check, fmtShape } from '../kernels/errors.js';
import { full, tensor } from '../kernels/creation.js';
import type { Tensor } from '../kernels/tensor.js';
import { add, mul, relu, sigmoid, sub } from '../autograd/ops.js';
import { upsampleBilinear } from '../autograd/nn-ops.js';
import { noGrad } from '../autograd/tape.js';
import { BatchNorm2d, Conv2d } from '../nn/layers.js';
import { Module, parameter, type Parameter } from '../nn/module.js';
import type { SegmentationModel, SegOutput } from './models.js';

/** ẑ = σ(c) ⊙ (z ⊙ α + β) + (1 − σ(c)) ⊙ z, with z [N, C, H, W], c [N, 1, H, W], α and β [1, C, 1, 1]. */
export function disalignPixelLogits(z: Tensor, c: Tensor, alpha: Tensor, beta: Tensor): Tensor {
  const op = 'disalignPixelLogits';
  check(z.rank === 4 && c.rank === 4, op, () => `logits [N, C, H, W] and confidence [N, 1, H, W] expected, got ${fmtShape(z.shape)} and ${fmtShape(c.shape)}`);
  const [n, C, h, w] = z.shape;
  check(c.shape.join() === `${n},1,${h},${w}`, op, () => `confidence must be [${n}, 1, ${h}, ${w}], got ${fmtShape(c.shape)}`);
  check(alpha.shape.join() === `1,${C},1,1` && beta.shape.join() === `1,${C},1,1`, op, () => `α and β must be [1, ${C}, 1, 1], got ${fmtShape(alpha.shape)} and ${fmtShape(beta.shape)}`);
  const s = sigmoid(c);
  // σ(zα + β) + (1 − σ)z = z + σ·(zα + β − z)
  return add(z, mul(s, sub(add(mul(z, alpha), beta), z)));
}

/** mmcv ConvModule(channels → 1, 1×1, norm BN, act ReLU): conv (no bias), bn, ReLU. */
export class ConfidenceLayer extends Module {
  conv: Conv2d;
  bn: BatchNorm2d;

  constructor(channels: number, device = undefined as 'cpu' | 'webgpu' | undefined) {
    super();
    this.conv = new Conv2d(channels, 1, 1, { bias: false, device });
    this.bn = new BatchNorm2d(1, { device });
  }

  forward(x: Tensor): Tensor {
    return relu(this.bn.forward(this.conv.forward(x)));
  }
}

/**
 * A frozen segmentation model calibrated by DisAlign: `model` (not trained; run without a graph),
 * `confidence_layer`, `logit_scale` α and `logit_bias` β — the official head's names.
 */
export class SegDisAlign extends Module {
  model: SegmentationModel;
  confidence_layer: ConfidenceLayer;
  logit_scale: Parameter;
  logit_bias: Parameter;

  constructor(model: SegmentationModel) {
    super();
    this.model = model;
    const conv = model.classifier.finalConv;
    const device = conv.weight.device;
    this.confidence_layer = new ConfidenceLayer(conv.inChannels, device);
    this.logit_scale = parameter(full([1, conv.outChannels, 1, 1], 1, { device }));
    this.logit_bias = parameter(full([1, conv.outChannels, 1, 1], 0, { device }));
  }

  /** The parameters stage 2 trains (α, β, the confidence layer), as train.py --disalign leaves trainable. */
  trainableParameters(): Parameter[] {
    return [this.logit_scale, this.logit_bias, ...this.confidence_layer.parameters()];
  }

  /** Keeps the frozen model in eval mode whatever the mode of the calibration layers. */
  train(mode = true): this {
    super.train(mode);
    this.model.eval();
    return this;
  }

  /** Calibrated logits at the head's resolution. */
  logits(x: Tensor): Tensor {
    const { features, logits } = noGrad(() => this.model.classifier.forwardWithFeatures(this.model.backbone.forward(x)));
    return disalignPixelLogits(logits, this.confidence_layer.forward(features), this.logit_scale, this.logit_bias);
  }

  forward(x: Tensor): SegOutput {
    return { out: upsampleBilinear(this.logits(x), { size: [x.shape[2], x.shape[3]], alignCorners: false }) };
  }
}

/**
 * Logit adjustment per pixel: z_c − τ log π_c, π the training pixel prior from counts or shares
 * (normalised here); a class with no pixel gets half the smallest non-zero prior.
 */
export function logitAdjustPixels(z: Tensor, pixelCounts: ArrayLike<number>, tau = 1): Tensor {
  const C = z.shape[1];
  check(z.rank === 4 && pixelCounts.length === C, 'logitAdjustPixels', () => `logits [N, ${pixelCounts.length}, H, W] expected, got ${fmtShape(z.shape)}`);
  const counts = Array.from(pixelCounts);
  check(counts.every((n) => n >= 0), 'logitAdjustPixels', 'pixel counts must be non-negative');
  const total = counts.reduce((a, b) => a + b, 0);
  check(total > 0, 'logitAdjustPixels', 'no pixel in the prior');
  const floor = Math.min(...counts.filter((n) => n > 0)) / 2;
  const shift = counts.map((n) => -tau * Math.log((n > 0 ? n : floor) / total));
  return add(z, tensor(shift, [1, C, 1, 1], { device: z.device }));
}

/** τ-norm weights of a 1×1 classifier conv [C, D, 1, 1]: w_c / ‖w_c‖^τ (host computation). */
export async function tauNormWeights(weight: Tensor, tau = 1): Promise<Tensor> {
  check(weight.rank === 4, 'tauNormWeights', () => `a conv weight [C, D, kh, kw] expected, got ${fmtShape(weight.shape)}`);
  const w = await weight.data();
  const [C] = weight.shape, d = w.length / C;
  const out = new Float32Array(w.length);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += w[c * d + k] ** 2;
    const scale = Math.sqrt(s) ** -tau;
    for (let k = 0; k < d; k++) out[c * d + k] = w[c * d + k] * (Number.isFinite(scale) ? scale : 0);
  }
  return tensor(out, [...weight.shape], { device: weight.device });
}
