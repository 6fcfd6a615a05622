// Backbones with exactly the parameter names, shapes and initialisation of their reference code, so
// weights move between this framework and PyTorch:
// - ResNet / ResNeXt as torchvision.models.resnet (He et al. 2016, CVPR; Xie et al. 2017, CVPR);
// - the CIFAR ResNet-32 of LDAM-DRW (Cao et al. 2019, NeurIPS; their models/resnet_cifar.py).

import { backend, type Backend } from '../kernels/device.js';
import { check, fmtShape } from '../kernels/errors.js';
import type { Tensor } from '../kernels/tensor.js';
import { add, pad, relu, reshape, slice } from '../autograd/ops.js';
import { avgPool2d } from '../autograd/nn-ops.js';
import { constant, kaimingNormal, skipInit } from './init.js';
import { AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Linear, MaxPool2d, NormedLinear, ReLU, type DeviceOption } from './layers.js';
import { Module, Sequential } from './module.js';

const conv3x3 = (inPlanes: number, outPlanes: number, device: Backend, stride = 1, groups = 1, dilation = 1): Conv2d =>
  new Conv2d(inPlanes, outPlanes, 3, { stride, padding: dilation, groups, dilation, bias: false, device });
const conv1x1 = (inPlanes: number, outPlanes: number, device: Backend, stride = 1): Conv2d =>
  new Conv2d(inPlanes, outPlanes, 1, { stride, bias: false, device });

interface BlockOptions {
  stride: number;
  downsample: Sequential | null;
  groups: number;
  baseWidth: number;
  dilation: number;
  device: Backend;
}

/** Two 3x3 convolutions with an identity (or downsampling) shortcut: ResNet-18/34. */
export class BasicBlock extends Module {
  static readonly expansion = 1;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  relu: ReLU;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  downsample: Sequential | null;

  constructor(inPlanes: number, planes: number, { stride, downsample, groups, baseWidth, dilation, device }: BlockOptions) {
    super();
    check(groups === 1 && baseWidth === 64, 'BasicBlock', `only supports groups=1 and base width 64, got ${groups} and ${baseWidth}`);
    check(dilation === 1, 'BasicBlock', `dilation ${dilation} > 1 is not supported (as in torchvision)`);
    this.conv1 = conv3x3(inPlanes, planes, device, stride);
    this.bn1 = new BatchNorm2d(planes, { device });
    this.relu = new ReLU();
    this.conv2 = conv3x3(planes, planes, device);
    this.bn2 = new BatchNorm2d(planes, { device });
    this.downsample = downsample;
  }

  /** The BN whose weight zero-init-residual sets to 0, so the block starts as the identity. */
  get lastBN(): BatchNorm2d {
    return this.bn2;
  }

  forward(x: Tensor): Tensor {
    const out = this.bn2.forward(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x)))));
    return relu(add(out, this.downsample ? this.downsample.forward(x) : x));
  }
}

/** 1x1 → 3x3 (grouped, strided) → 1x1 ×4 with a shortcut: ResNet-50/101, ResNeXt (torchvision's V1.5, stride on the 3x3). */
export class Bottleneck extends Module {
  static readonly expansion = 4;
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  conv3: Conv2d;
  bn3: BatchNorm2d;
  relu: ReLU;
  downsample: Sequential | null;

  constructor(inPlanes: number, planes: number, { stride, downsample, groups, baseWidth, dilation, device }: BlockOptions) {
    super();
    // width = ⌊planes · base_width / 64⌋ · groups (ResNeXt's cardinality × bottleneck width)
    const width = Math.floor(planes * (baseWidth / 64)) * groups;
    this.conv1 = conv1x1(inPlanes, width, device);
    this.bn1 = new BatchNorm2d(width, { device });
    this.conv2 = conv3x3(width, width, device, stride, groups, dilation);
    this.bn2 = new BatchNorm2d(width, { device });
    this.conv3 = conv1x1(width, planes * Bottleneck.expansion, device);
    this.bn3 = new BatchNorm2d(planes * Bottleneck.expansion, { device });
    this.relu = new ReLU();
    this.downsample = downsample;
  }

  get lastBN(): BatchNorm2d {
    return this.bn3;
  }

  forward(x: Tensor): Tensor {
    let out = relu(this.bn1.forward(this.conv1.forward(x)));
    out = relu(this.bn2.forward(this.conv2.forward(out)));
    out = this.bn3.forward(this.conv3.forward(out));
    return relu(add(out, this.downsample ? this.downsample.forward(x) : x));
  }
}

type BlockClass = typeof BasicBlock | typeof Bottleneck;

export interface ResNetOptions extends DeviceOption {
  /** default 1000 (ImageNet) */
  numClasses?: number;
  /** Zero the last BN weight of each residual branch so every block starts as the identity (Goyal et al. 2017). */
  zeroInitResidual?: boolean;
  /** ResNeXt cardinality (default 1). */
  groups?: number;
  /** Bottleneck width per group (default 64). */
  widthPerGroup?: number;
  /** Dilate layer2/3/4 instead of striding them (for segmentation: output stride 8 or 16). */
  replaceStrideWithDilation?: readonly [boolean, boolean, boolean];
  /**
   * Stem width and layer1 planes (default 64, torchvision's); layer k has baseChannels·2^(k−1) planes.
   * Smaller values give narrow ResNets with the same module names (test fixtures, small tasks).
   */
  baseChannels?: number;
}

/** torchvision's ResNet: stem (7x7/2 conv, BN, ReLU, 3x3/2 max pool), four stages, global pool, fc. */
export class ResNet extends Module {
  // assigned inside skipInit() in the constructor, in torchvision's order
  conv1!: Conv2d;
  bn1!: BatchNorm2d;
  relu!: ReLU;
  maxpool!: MaxPool2d;
  layer1!: Sequential;
  layer2!: Sequential;
  layer3!: Sequential;
  layer4!: Sequential;
  avgpool!: AdaptiveAvgPool2d;
  fc!: Linear;
  /** Channels of the pooled features (512 · expansion). */
  readonly featureDim: number;

  constructor(block: BlockClass, layers: readonly [number, number, number, number], opts: ResNetOptions = {}) {
    super();
    const { numClasses = 1000, zeroInitResidual = false, groups = 1, widthPerGroup = 64, baseChannels: base = 64, device = backend() } = opts;
    check(Number.isSafeInteger(base) && base > 0, 'ResNet', `baseChannels must be a positive integer, got ${base}`);
    const dilate = opts.replaceStrideWithDilation ?? [false, false, false];
    check(dilate.length === 3, 'ResNet', `replaceStrideWithDilation needs 3 entries, got ${dilate.length}`);
    let inPlanes = base;
    let dilation = 1;
    const makeLayer = (planes: number, blocks: number, stride = 1, dilateLayer = false): Sequential => {
      const previousDilation = dilation;
      if (dilateLayer) {
        dilation *= stride;
        stride = 1;
      }
      const outPlanes = planes * block.expansion;
      const downsample = stride !== 1 || inPlanes !== outPlanes ? new Sequential(conv1x1(inPlanes, outPlanes, device, stride), new BatchNorm2d(outPlanes, { device })) : null;
      const layer = new Sequential(new block(inPlanes, planes, { stride, downsample, groups, baseWidth: widthPerGroup, dilation: previousDilation, device }));
      inPlanes = outPlanes;
      for (let i = 1; i < blocks; i++) layer.push(new block(inPlanes, planes, { stride: 1, downsample: null, groups, baseWidth: widthPerGroup, dilation, device }));
      return layer;
    };
    // built uninitialised, then initialised once as torchvision does (it draws the default init first)
    skipInit(() => {
      this.conv1 = new Conv2d(3, base, 7, { stride: 2, padding: 3, bias: false, device });
      this.bn1 = new BatchNorm2d(base, { device });
      this.relu = new ReLU();
      this.maxpool = new MaxPool2d(3, { stride: 2, padding: 1 });
      this.layer1 = makeLayer(base, layers[0]);
      this.layer2 = makeLayer(2 * base, layers[1], 2, dilate[0]);
      this.layer3 = makeLayer(4 * base, layers[2], 2, dilate[1]);
      this.layer4 = makeLayer(8 * base, layers[3], 2, dilate[2]);
      this.avgpool = new AdaptiveAvgPool2d(1);
      this.fc = new Linear(8 * base * block.expansion, numClasses, { device });
    });
    this.featureDim = 8 * base * block.expansion;
    for (const m of this.modules()) {
      if (m instanceof Conv2d) kaimingNormal(m.weight, { mode: 'fan_out', nonlinearity: 'relu' });
      else if (m instanceof BatchNorm2d || m instanceof Linear) m.resetParameters();
    }
    if (zeroInitResidual) for (const m of this.modules()) if (m instanceof BasicBlock || m instanceof Bottleneck) constant(m.lastBN.weight!, 0);
  }

  /** The outputs of layer1..layer4 (strides 4, 8, 16, 32 without dilation), for FPN-style heads. */
  stages(x: Tensor): [Tensor, Tensor, Tensor, Tensor] {
    check(x.rank === 4 && x.shape[1] === 3, 'ResNet', () => `expects images [N, 3, H, W], got ${fmtShape(x.shape)}`);
    const c1 = this.maxpool.forward(relu(this.bn1.forward(this.conv1.forward(x))));
    const c2 = this.layer1.forward(c1);
    const c3 = this.layer2.forward(c2);
    const c4 = this.layer3.forward(c3);
    return [c2, c3, c4, this.layer4.forward(c4)];
  }

  /** Globally pooled features before the classifier: [N, featureDim]. */
  features(x: Tensor): Tensor {
    const pooled = this.avgpool.forward(this.stages(x)[3]);
    return reshape(pooled, [pooled.shape[0], -1]);
  }

  forward(x: Tensor): Tensor {
    return this.fc.forward(this.features(x));
  }
}

export const resnet18 = (opts?: ResNetOptions): ResNet => new ResNet(BasicBlock, [2, 2, 2, 2], opts);
export const resnet34 = (opts?: ResNetOptions): ResNet => new ResNet(BasicBlock, [3, 4, 6, 3], opts);
export const resnet50 = (opts?: ResNetOptions): ResNet => new ResNet(Bottleneck, [3, 4, 6, 3], opts);
export const resnet101 = (opts?: ResNetOptions): ResNet => new ResNet(Bottleneck, [3, 4, 23, 3], opts);
/** ResNeXt-50 (32x4d): cardinality 32, width 4 per group. */
export const resnext50_32x4d = (opts?: Omit<ResNetOptions, 'groups' | 'widthPerGroup'>): ResNet =>
  new ResNet(Bottleneck, [3, 4, 6, 3], { ...opts, groups: 32, widthPerGroup: 4 });

// ---------------------------------------------------------------- CIFAR ResNet (LDAM-DRW)

/**
 * Option A of He et al. 2016 as LDAM's LambdaLayer: F.pad(x[:, :, ::2, ::2], channels ± planes//4),
 * a parameter-free shortcut. The stride-2 subsampling is a slice of the [N, C, H/2, 2, W/2, 2] view.
 */
export class PadShortcut extends Module {
  constructor(readonly planes: number) {
    super();
  }

  forward(x: Tensor): Tensor {
    const [n, c, h, w] = x.shape;
    const h2 = Math.ceil(h / 2), w2 = Math.ceil(w / 2);
    const even = h % 2 || w % 2 ? pad(x, [[0, 0], [0, 0], [0, h % 2], [0, w % 2]]) : x;
    const pairs = reshape(even, [n, c, h2, 2, w2, 2]);
    const strided = reshape(slice(pairs, [0, 0, 0, 0, 0, 0], [n, c, h2, 1, w2, 1]), [n, c, h2, w2]);
    const p = Math.floor(this.planes / 4);
    return pad(strided, [[0, 0], [p, p], [0, 0], [0, 0]]);
  }
}

/** LDAM's BasicBlock: the shortcut is empty (identity), option A (PadShortcut) or option B (1x1 conv + BN). */
export class CifarBasicBlock extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  conv2: Conv2d;
  bn2: BatchNorm2d;
  shortcut: Sequential | PadShortcut;

  constructor(inPlanes: number, planes: number, stride: number, option: 'A' | 'B', device: Backend) {
    super();
    this.conv1 = conv3x3(inPlanes, planes, device, stride);
    this.bn1 = new BatchNorm2d(planes, { device });
    this.conv2 = conv3x3(planes, planes, device);
    this.bn2 = new BatchNorm2d(planes, { device });
    if (stride === 1 && inPlanes === planes) this.shortcut = new Sequential();
    else if (option === 'A') this.shortcut = new PadShortcut(planes);
    else this.shortcut = new Sequential(conv1x1(inPlanes, planes, device, stride), new BatchNorm2d(planes, { device }));
  }

  forward(x: Tensor): Tensor {
    const out = this.bn2.forward(this.conv2.forward(relu(this.bn1.forward(this.conv1.forward(x)))));
    return relu(add(out, this.shortcut.forward(x)));
  }
}

export interface CifarResNetOptions extends DeviceOption {
  /** default 10 */
  numClasses?: number;
  /** The NormedLinear cosine classifier instead of Linear (LDAM's use_norm). */
  useNorm?: boolean;
  /** Shortcut where the shape changes: 'A' (parameter-free, LDAM's choice, the default) or 'B' (1x1 conv + BN). */
  shortcut?: 'A' | 'B';
}

/** LDAM's ResNet_s: 3x3 conv (16), three stages of BasicBlocks at 16/32/64 channels, global average pool, linear. */
export class CifarResNet extends Module {
  conv1: Conv2d;
  bn1: BatchNorm2d;
  layer1: Sequential;
  layer2: Sequential;
  layer3: Sequential;
  linear: Linear | NormedLinear;
  readonly featureDim = 64;

  constructor(numBlocks: readonly [number, number, number], { numClasses = 10, useNorm = false, shortcut = 'A', device = backend() }: CifarResNetOptions = {}) {
    super();
    let inPlanes = 16;
    const makeLayer = (planes: number, blocks: number, stride: number): Sequential => {
      const layer = new Sequential();
      for (let i = 0; i < blocks; i++) {
        layer.push(new CifarBasicBlock(inPlanes, planes, i === 0 ? stride : 1, shortcut, device));
        inPlanes = planes;
      }
      return layer;
    };
    this.conv1 = conv3x3(3, 16, device);
    this.bn1 = new BatchNorm2d(16, { device });
    this.layer1 = makeLayer(16, numBlocks[0], 1);
    this.layer2 = makeLayer(32, numBlocks[1], 2);
    this.layer3 = makeLayer(64, numBlocks[2], 2);
    this.linear = useNorm ? new NormedLinear(64, numClasses, { device }) : new Linear(64, numClasses, { device });
    // their _weights_init: kaiming_normal_ (fan_in, gain √2) on every Conv2d and Linear weight
    for (const m of this.modules()) if (m instanceof Conv2d || m instanceof Linear) kaimingNormal(m.weight);
  }

  /** Globally pooled features before the classifier: [N, 64]. */
  features(x: Tensor): Tensor {
    check(x.rank === 4 && x.shape[1] === 3, 'CifarResNet', () => `expects images [N, 3, H, W], got ${fmtShape(x.shape)}`);
    let out = relu(this.bn1.forward(this.conv1.forward(x)));
    out = this.layer3.forward(this.layer2.forward(this.layer1.forward(out)));
    // F.avg_pool2d(out, out.size()[3])
    const pooled = avgPool2d(out, { kernelSize: out.shape[3] });
    return reshape(pooled, [pooled.shape[0], -1]);
  }

  forward(x: Tensor): Tensor {
    return this.linear.forward(this.features(x));
  }
}

/** ResNet-32 for CIFAR (LDAM-DRW): 5 blocks per stage, ≈0.46 M parameters. */
export const resnet32 = (opts?: CifarResNetOptions): CifarResNet => new CifarResNet([5, 5, 5], opts);
