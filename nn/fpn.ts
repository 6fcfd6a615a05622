// Feature Pyramid Network (Lin et al. 2017, CVPR) as torchvision.ops.FeaturePyramidNetwork: a 1x1
// lateral ("inner") convolution per input level and a 3x3 output ("layer") convolution; the top-down
// path adds the nearest-neighbour upsampled coarser map to each lateral; LastLevelMaxPool adds a
// "pool" level, max_pool2d(kernel 1, stride 2) of the coarsest output (the P6 of Mask R-CNN's RPN).
// State-dict names are torchvision 0.14's: inner_blocks.N.0.weight, layer_blocks.N.0.weight (each
// block is a Conv2dNormActivation without norm and activation, a Sequential holding the conv).
// Init as torchvision: kaiming_uniform(a=1), bias 0.

import { backend } from '../kernels/device.js';
import { check } from '../kernels/errors.js';
import type { Tensor } from '../kernels/tensor.js';
import { add } from '../autograd/ops.js';
import { maxPool2d } from '../autograd/nn-ops.js';
import { upsampleNearest } from '../autograd/pixel-ops.js';
import { constant, kaimingUniform } from './init.js';
import { Conv2d, type DeviceOption } from './layers.js';
import { Module, ModuleList, Sequential } from './module.js';

export interface FeaturePyramidOptions extends DeviceOption {
  /** add the "pool" level (LastLevelMaxPool), default true */
  lastLevelMaxPool?: boolean;
}

export class FeaturePyramidNetwork extends Module {
  inner_blocks: ModuleList<Sequential>;
  layer_blocks: ModuleList<Sequential>;
  readonly lastLevelMaxPool: boolean;

  constructor(
    readonly inChannelsList: readonly number[],
    readonly outChannels: number,
    { lastLevelMaxPool = true, device = backend() }: FeaturePyramidOptions = {},
  ) {
    super();
    check(inChannelsList.length > 0 && inChannelsList.every((c) => c > 0), 'FeaturePyramidNetwork', `in_channels=0 is currently not supported (got [${inChannelsList.join(', ')}])`);
    this.inner_blocks = new ModuleList(inChannelsList.map((c) => new Sequential(new Conv2d(c, outChannels, 1, { device }))));
    this.layer_blocks = new ModuleList(inChannelsList.map(() => new Sequential(new Conv2d(outChannels, outChannels, 3, { padding: 1, device }))));
    for (const m of this.modules()) {
      if (m instanceof Conv2d) {
        kaimingUniform(m.weight, { a: 1 });
        constant(m.bias!, 0);
      }
    }
    this.lastLevelMaxPool = lastLevelMaxPool;
  }

  /** Ordered feature maps (finest first) by name -> the FPN outputs by the same names (+ "pool"). */
  forward(x: Record<string, Tensor>): Record<string, Tensor> {
    const names = Object.keys(x);
    const feats = names.map((n) => x[n]);
    check(feats.length === this.inner_blocks.length, 'FeaturePyramidNetwork', `expects ${this.inner_blocks.length} feature maps, got ${feats.length}`);
    const L = feats.length;
    let lastInner = this.inner_blocks.at(L - 1).forward(feats[L - 1]);
    const results: Tensor[] = [this.layer_blocks.at(L - 1).forward(lastInner)];
    for (let idx = L - 2; idx >= 0; idx--) {
      const lateral = this.inner_blocks.at(idx).forward(feats[idx]);
      const topDown = upsampleNearest(lastInner, { size: [lateral.shape[2], lateral.shape[3]] });
      lastInner = add(lateral, topDown);
      results.unshift(this.layer_blocks.at(idx).forward(lastInner));
    }
    const out: Record<string, Tensor> = {};
    names.forEach((n, i) => (out[n] = results[i]));
    if (this.lastLevelMaxPool) out.pool = maxPool2d(results[L - 1], { kernelSize: 1, stride: 2, padding: 0 });
    return out;
  }
}
