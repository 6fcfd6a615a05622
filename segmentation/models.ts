// Semantic-segmentation models with torchvision's module structure and state-dict names
// (torchvision 0.14, models/segmentation/{fcn,deeplabv3,_utils}.py), so that the state dicts of
// fcn_resnet50 / deeplabv3_resnet50 (aux_loss=True) load with no missing or unexpected key:
//
//   SegmentationModel      _SimpleSegmentationModel: backbone → classifier (+ aux_classifier on
//                          layer3), each output bilinearly upsampled to the input size
//   ResNetBackbone         IntermediateLayerGetter on a (dilated) ResNet: conv1 … layer4, no avgpool/fc
//   FCNHead                3×3 conv (in/4) + BN + ReLU + Dropout(0.1) + 1×1 conv   (Long et al. 2015)
//   ASPP / DeepLabHead     1×1 + three atrous 3×3 (rates 12/24/36 at output stride 8, 6/12/18 at 16)
//                          + image pooling, concat, 1×1 project + BN + ReLU + Dropout(0.5); then
//                          3×3 conv + BN + ReLU + 1×1 conv                          (Chen et al. 2017)
//   DeepLabV3PlusHead      DeepLabV3+ decoder (Chen et al. 2018, ECCV) in the torchvision-style
//                          variant of VainF/DeepLabV3Plus-Pytorch (DeepLabHeadV3Plus): the stride-4
//                          layer1 features projected to 48 channels (1×1 conv + BN + ReLU), ASPP
//                          output upsampled to them, concatenated, one 3×3 conv (256) + BN + ReLU and
//                          a 1×1 classifier. The official decoder (and mmseg's
//                          DepthwiseSeparableASPPHead) uses two depthwise-separable 3×3 convs instead.
import { check, fmtShape } from '../kernels/errors.js';
import type { Tensor } from '../kernels/tensor.js';
import { backend, type Backend } from '../kernels/device.js';
import { concat, relu } from '../autograd/ops.js';
import { upsampleBilinear } from '../autograd/nn-ops.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, ReLU } from '../nn/layers.js';
import { Module, ModuleList, Sequential } from '../nn/module.js';
import { Bottleneck, ResNet, type ResNetOptions } from '../nn/resnet.js';

/** Backbone outputs: layer1 (stride 4), layer3 (aux) and layer4 ("out"). */
export interface SegFeatures {
  low: Tensor;
  aux: Tensor;
  out: Tensor;
}

/** torchvision's IntermediateLayerGetter over a ResNet: its children up to layer4, under the same names. */
export class ResNetBackbone extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu: ReLU;
  maxpool: Module & { forward(x: Tensor): Tensor };
  layer1: Sequential;
  layer2: Sequential;
  layer3: Sequential;
  layer4: Sequential;
  /** Channels of layer1, layer3 and layer4. */
  readonly channels: { low: number; aux: number; out: number };

  constructor(resnet: ResNet) {
    super();
    this.conv1 = resnet.conv1;
    this.bn1 = resnet.bn1;
    this.relu = resnet.relu;
    this.maxpool = resnet.maxpool;
    this.layer1 = resnet.layer1;
    this.layer2 = resnet.layer2;
    this.layer3 = resnet.layer3;
    this.layer4 = resnet.layer4;
    this.channels = { low: resnet.featureDim / 8, aux: resnet.featureDim / 2, out: resnet.featureDim };
  }

  forward(x: Tensor): SegFeatures {
    check(x.rank === 4 && x.shape[1] === 3, 'ResNetBackbone', () => `expects images [N, 3, H, W], got ${fmtShape(x.shape)}`);
    const low = this.layer1.forward(this.maxpool.forward(relu(this.bn1.forward(this.conv1.forward(x)))));
    const aux = this.layer3.forward(this.layer2.forward(low));
    return { low, aux, out: this.layer4.forward(aux) };
  }
}

/** A head reads the backbone features and returns logits at its own resolution. */
export interface SegHead extends Module {
  forwardFeatures(f: SegFeatures): Tensor;
  /** The input of the final 1×1 classifier conv and the logits (what DisAlign's confidence reads). */
  forwardWithFeatures(f: SegFeatures): { features: Tensor; logits: Tensor };
  /** The final 1×1 classifier conv (cls_seg). */
  readonly finalConv: Conv2d;
}

/** Runs a Sequential head up to its last layer (features), then the last layer (logits). */
function splitLast(seq: Sequential, x: Tensor): { features: Tensor; logits: Tensor } {
  const layers = [...seq];
  const features = layers.slice(0, -1).reduce((y, l) => l.forward(y), x);
  return { features, logits: layers[layers.length - 1].forward(features) };
}

/** torchvision FCNHead: Conv3x3(in → in/4) + BN + ReLU + Dropout(0.1) + Conv1x1(→ classes). */
export class FCNHead extends Sequential implements SegHead {
  constructor(inChannels: number, channels: number, { device = backend(), feature = 'out' as 'out' | 'aux' } = {}) {
    const inter = Math.floor(inChannels / 4);
    super(
      new Conv2d(inChannels, inter, 3, { padding: 1, bias: false, device }),
      new BatchNorm2d(inter, { device }),
      new ReLU(),
      new Dropout(0.1),
      new Conv2d(inter, channels, 1, { device }),
    );
    this.feature = feature;
  }

  declare feature: 'out' | 'aux';

  forwardFeatures(f: SegFeatures): Tensor {
    return this.forward(f[this.feature]);
  }

  forwardWithFeatures(f: SegFeatures): { features: Tensor; logits: Tensor } {
    return splitLast(this, f[this.feature]);
  }

  get finalConv(): Conv2d {
    return this.at(-1) as Conv2d;
  }
}

const convBnRelu = (inC: number, outC: number, k: number, device: Backend, dilation = 1): Layer[] => [
  new Conv2d(inC, outC, k, { padding: k === 3 ? dilation : 0, dilation, bias: false, device }),
  new BatchNorm2d(outC, { device }),
  new ReLU(),
];
type Layer = Module & { forward(x: Tensor): Tensor };

/** One atrous branch: Conv3x3(dilation = rate, padding = rate) + BN + ReLU. */
export class ASPPConv extends Sequential {
  constructor(inChannels: number, outChannels: number, dilation: number, device: Backend) {
    super(...convBnRelu(inChannels, outChannels, 3, device, dilation));
  }
}

/** Image pooling: global average → Conv1x1 + BN + ReLU → bilinear back to the input's size. */
export class ASPPPooling extends Sequential {
  constructor(inChannels: number, outChannels: number, device: Backend) {
    super(new AdaptiveAvgPool2d(1), ...convBnRelu(inChannels, outChannels, 1, device));
  }

  forward(x: Tensor): Tensor {
    const y = super.forward(x);
    return upsampleBilinear(y, { size: [x.shape[2], x.shape[3]], alignCorners: false });
  }
}

/** Atrous spatial pyramid pooling (DeepLabV3), torchvision's ASPP. */
export class ASPP extends Module {
  convs: ModuleList<Layer>;
  project: Sequential;

  constructor(inChannels: number, atrousRates: readonly number[], outChannels = 256, device: Backend = backend()) {
    super();
    const branches: Layer[] = [new Sequential(...convBnRelu(inChannels, outChannels, 1, device))];
    for (const r of atrousRates) branches.push(new ASPPConv(inChannels, outChannels, r, device));
    branches.push(new ASPPPooling(inChannels, outChannels, device));
    this.convs = new ModuleList(branches);
    this.project = new Sequential(...convBnRelu(branches.length * outChannels, outChannels, 1, device), new Dropout(0.5));
  }

  forward(x: Tensor): Tensor {
    return this.project.forward(concat([...this.convs].map((c) => c.forward(x)), 1));
  }
}

/** torchvision DeepLabHead: ASPP + Conv3x3(256) + BN + ReLU + Conv1x1(→ classes); `channels` narrows it (default 256). */
export class DeepLabHead extends Sequential implements SegHead {
  constructor(inChannels: number, numClasses: number, atrousRates: readonly number[] = [12, 24, 36], device: Backend = backend(), channels = 256) {
    super(new ASPP(inChannels, atrousRates, channels, device), ...convBnRelu(channels, channels, 3, device), new Conv2d(channels, numClasses, 1, { device }));
  }

  forwardFeatures(f: SegFeatures): Tensor {
    return this.forward(f.out);
  }

  forwardWithFeatures(f: SegFeatures): { features: Tensor; logits: Tensor } {
    return splitLast(this, f.out);
  }

  get finalConv(): Conv2d {
    return this.at(-1) as Conv2d;
  }
}

/** DeepLabV3+ decoder (torchvision-style, VainF's DeepLabHeadV3Plus names: project, aspp, classifier). */
export class DeepLabV3PlusHead extends Module implements SegHead {
  project: Sequential;
  aspp: ASPP;
  classifier: Sequential;

  constructor(inChannels: number, lowLevelChannels: number, numClasses: number, atrousRates: readonly number[] = [12, 24, 36], { device = backend(), lowChannels = 48, channels = 256 } = {}) {
    super();
    this.project = new Sequential(...convBnRelu(lowLevelChannels, lowChannels, 1, device));
    this.aspp = new ASPP(inChannels, atrousRates, channels, device);
    this.classifier = new Sequential(...convBnRelu(lowChannels + channels, channels, 3, device), new Conv2d(channels, numClasses, 1, { device }));
  }

  private decoderInput(f: SegFeatures): Tensor {
    const low = this.project.forward(f.low);
    const up = upsampleBilinear(this.aspp.forward(f.out), { size: [low.shape[2], low.shape[3]], alignCorners: false });
    return concat([low, up], 1);
  }

  forwardFeatures(f: SegFeatures): Tensor {
    return this.classifier.forward(this.decoderInput(f));
  }

  forwardWithFeatures(f: SegFeatures): { features: Tensor; logits: Tensor } {
    return splitLast(this.classifier, this.decoderInput(f));
  }

  get finalConv(): Conv2d {
    return this.classifier.at(-1) as Conv2d;
  }
}

export interface SegOutput {
  /** logits [N, C, H, W] at the input size */
  out: Tensor;
  aux?: Tensor;
}

/** torchvision's _SimpleSegmentationModel: backbone, classifier, optional aux_classifier. */
export class SegmentationModel extends Module {
  backbone: ResNetBackbone;
  classifier: SegHead;
  aux_classifier: FCNHead | null;

  constructor(backbone: ResNetBackbone, classifier: SegHead, auxClassifier: FCNHead | null = null) {
    super();
    this.backbone = backbone;
    this.classifier = classifier;
    this.registerModule('aux_classifier', auxClassifier);
    this.aux_classifier = auxClassifier;
  }

  /** Logits of every head at the resolution of its features (before upsampling). */
  logits(x: Tensor): { out: Tensor; aux?: Tensor; features: SegFeatures } {
    const features = this.backbone.forward(x);
    const out = this.classifier.forwardFeatures(features);
    return { out, aux: this.aux_classifier ? this.aux_classifier.forwardFeatures(features) : undefined, features };
  }

  forward(x: Tensor): SegOutput {
    const size: [number, number] = [x.shape[2], x.shape[3]];
    const { out, aux } = this.logits(x);
    const up = (t: Tensor): Tensor => upsampleBilinear(t, { size, alignCorners: false });
    return aux ? { out: up(out), aux: up(aux) } : { out: up(out) };
  }
}

export type SegArch = 'fcn' | 'deeplabv3' | 'deeplabv3plus';

export interface SegModelOptions {
  /** default 21 (torchvision's VOC classes) */
  numClasses?: number;
  /** add the FCN head on layer3 (torchvision's aux_loss) */
  auxLoss?: boolean;
  /** 8 (layer3 and layer4 dilated, default) or 16 (layer4 dilated) */
  outputStride?: 8 | 16;
  /** ASPP rates; default 12/24/36 at output stride 8, 6/12/18 at 16 */
  atrousRates?: readonly number[];
  /**
   * Bottleneck ResNet depth: 50, 101 (torchvision), or 26 / 14 ([2,2,2,2] / [1,1,1,1] blocks) for
   * small models. BasicBlock ResNets (18/34) cannot be dilated in torchvision and are not offered.
   */
  depth?: 50 | 101 | 26 | 14;
  /** ASPP / decoder width (default 256, torchvision's) */
  headChannels?: number;
  /** DeepLabV3+ low-level projection width (default 48) */
  lowChannels?: number;
  /** ResNet options (baseChannels for narrow models, device) */
  resnet?: Omit<ResNetOptions, 'replaceStrideWithDilation' | 'numClasses'>;
  device?: Backend;
}

const LAYERS: Record<number, [number, number, number, number]> = { 14: [1, 1, 1, 1], 26: [2, 2, 2, 2], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3] };

/** A dilated Bottleneck ResNet as torchvision's segmentation models build it (replace_stride_with_dilation). */
export function dilatedResNet(depth: 14 | 26 | 50 | 101, outputStride: 8 | 16, opts: Omit<ResNetOptions, 'replaceStrideWithDilation'> = {}): ResNet {
  check(outputStride === 8 || outputStride === 16, 'dilatedResNet', `output stride must be 8 or 16, got ${outputStride}`);
  const layers = LAYERS[depth];
  check(layers !== undefined, 'dilatedResNet', `depth must be 14, 26, 50 or 101 (Bottleneck), got ${depth}`);
  return new ResNet(Bottleneck, layers, { ...opts, replaceStrideWithDilation: outputStride === 8 ? [false, true, true] : [false, false, true] });
}

/** FCN, DeepLabV3 or DeepLabV3+ on a dilated Bottleneck ResNet. */
export function segmentationModel(arch: SegArch, opts: SegModelOptions = {}): SegmentationModel {
  const { numClasses = 21, auxLoss = false, outputStride = 8, depth = 50, headChannels = 256, lowChannels = 48, device = opts.resnet?.device ?? backend() } = opts;
  const rates = opts.atrousRates ?? (outputStride === 8 ? [12, 24, 36] : [6, 12, 18]);
  const backbone = new ResNetBackbone(dilatedResNet(depth, outputStride, { ...opts.resnet, device }));
  const ch = backbone.channels;
  const classifier =
    arch === 'fcn' ? new FCNHead(ch.out, numClasses, { device })
    : arch === 'deeplabv3' ? new DeepLabHead(ch.out, numClasses, rates, device, headChannels)
    : new DeepLabV3PlusHead(ch.out, ch.low, numClasses, rates, { device, channels: headChannels, lowChannels });
  const aux = auxLoss ? new FCNHead(ch.aux, numClasses, { device, feature: 'aux' }) : null;
  return new SegmentationModel(backbone, classifier, aux);
}

/** torchvision.models.segmentation.fcn_resnet50(weights=None, weights_backbone=None, …) */
export const fcnResNet50 = (opts: Omit<SegModelOptions, 'depth' | 'outputStride'> = {}): SegmentationModel => segmentationModel('fcn', { ...opts, depth: 50, outputStride: 8 });
export const fcnResNet101 = (opts: Omit<SegModelOptions, 'depth' | 'outputStride'> = {}): SegmentationModel => segmentationModel('fcn', { ...opts, depth: 101, outputStride: 8 });
/** torchvision.models.segmentation.deeplabv3_resnet50(…): output stride 8, rates 12/24/36 */
export const deeplabv3ResNet50 = (opts: Omit<SegModelOptions, 'depth'> = {}): SegmentationModel => segmentationModel('deeplabv3', { ...opts, depth: 50 });
export const deeplabv3ResNet101 = (opts: Omit<SegModelOptions, 'depth'> = {}): SegmentationModel => segmentationModel('deeplabv3', { ...opts, depth: 101 });
export const deeplabv3PlusResNet50 = (opts: Omit<SegModelOptions, 'depth'> = {}): SegmentationModel => segmentationModel('deeplabv3plus', { ...opts, depth: 50 });
