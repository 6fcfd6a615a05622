// torchvision's resnet_fpn_backbone / _resnet_fpn_extractor (models/detection/backbone_utils.py):
// a torchvision ResNet without avgpool and fc ("body", its IntermediateLayerGetter) returning
// layer1..layer4 as "0".."3", and a FeaturePyramidNetwork over them with LastLevelMaxPool ("fpn").
// Detection backbones use FrozenBatchNorm2d (the default here, as every pretrained torchvision
// detector) or plain BatchNorm2d (what maskrcnn_resnet50_fpn builds without pretrained weights).
// trainableLayers k ∈ [0, 5] keeps the last k of layer4, layer3, layer2, layer1, conv1 (+ bn1 at 5)
// trainable and freezes the rest (requiresGrad false), as torchvision.

import { backend } from '../kernels/device.js';
import { check, fmtShape } from '../kernels/errors.js';
import type { Tensor } from '../kernels/tensor.js';
import { relu } from '../autograd/ops.js';
import { FeaturePyramidNetwork } from '../nn/fpn.js';
import { FrozenBatchNorm2d } from '../nn/frozen-batchnorm.js';
import { BatchNorm2d, type DeviceOption } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { BasicBlock, Bottleneck, ResNet } from '../nn/resnet.js';

export type NormKind = 'frozen' | 'batchnorm';

export interface ResnetFpnOptions extends DeviceOption {
  /** 'frozen' (default): FrozenBatchNorm2d; 'batchnorm': nn.BatchNorm2d */
  norm?: NormKind;
  /** 0..5, default 3 (torchvision's default for detection) */
  trainableLayers?: number;
  /** FPN channels, default 256 */
  outChannels?: number;
  /** ResNet stem / layer1 width (default 64, torchvision's); smaller gives a narrow backbone for small tasks */
  baseChannels?: number;
}

const ARCHS = {
  resnet18: [BasicBlock, [2, 2, 2, 2]],
  resnet34: [BasicBlock, [3, 4, 6, 3]],
  resnet50: [Bottleneck, [3, 4, 6, 3]],
  resnet101: [Bottleneck, [3, 4, 23, 3]],
} as const;

export type ResnetArch = keyof typeof ARCHS | { block: 'basic' | 'bottleneck'; layers: readonly [number, number, number, number] };

/** Replaces every BatchNorm2d below m with a FrozenBatchNorm2d of the same width (the names stay). */
function freezeBatchNorms(m: Module, device: ReturnType<typeof backend>): void {
  for (const [name, child] of m.namedChildren()) {
    if (child instanceof BatchNorm2d) {
      m.registerModule(name, new FrozenBatchNorm2d(child.numFeatures, { eps: child.eps, device }));
      for (const t of [...child.parameters(), ...child.buffers()]) t.dispose();
    }
    else freezeBatchNorms(child, device);
  }
}

export class BackboneWithFPN extends Module {
  body: ResNet;
  fpn: FeaturePyramidNetwork;
  readonly outChannels: number;

  constructor(arch: ResnetArch, { norm = 'frozen', trainableLayers = 3, outChannels = 256, baseChannels = 64, device = backend() }: ResnetFpnOptions = {}) {
    super();
    check(Number.isInteger(trainableLayers) && trainableLayers >= 0 && trainableLayers <= 5, 'resnetFpnBackbone', `trainable layers should be in the range [0,5], got ${trainableLayers}`);
    const [block, layers] = typeof arch === 'string' ? ARCHS[arch] : [arch.block === 'basic' ? BasicBlock : Bottleneck, arch.layers];
    const body = new ResNet(block, layers, { baseChannels, device });
    body.registerModule('avgpool', null);
    body.registerModule('fc', null);
    if (norm === 'frozen') freezeBatchNorms(body, device);
    const train = ['layer4', 'layer3', 'layer2', 'layer1', 'conv1'].slice(0, trainableLayers);
    if (trainableLayers === 5) train.push('bn1');
    for (const [name, p] of body.namedParameters()) if (!train.some((l) => name.startsWith(l))) p.requiresGrad = false;
    this.body = body;
    const e = block.expansion;
    this.fpn = new FeaturePyramidNetwork([baseChannels * e, 2 * baseChannels * e, 4 * baseChannels * e, 8 * baseChannels * e], outChannels, { device });
    this.outChannels = outChannels;
  }

  /** images [N, 3, H, W] -> {"0", "1", "2", "3", "pool"}: strides 4, 8, 16, 32, 64. */
  forward(x: Tensor): Record<string, Tensor> {
    check(x.rank === 4 && x.shape[1] === 3, 'BackboneWithFPN', () => `expects images [N, 3, H, W], got ${fmtShape(x.shape)}`);
    const b = this.body;
    let y = b.maxpool.forward(relu(b.bn1.forward(b.conv1.forward(x))));
    const feats: Record<string, Tensor> = {};
    [b.layer1, b.layer2, b.layer3, b.layer4].forEach((layer, i) => {
      y = layer.forward(y);
      feats[String(i)] = y;
    });
    return this.fpn.forward(feats);
  }
}
