import { describe, expect, it } from 'vitest';
import { hasWebGPU, manualSeed, scope, tensor, type Tensor } from '../../index.node.js';
import { mul, sum } from '../../autograd/ops.js';
import { skipInit } from '../../nn/init.js';
import { BatchNorm2d, Conv2d } from '../../nn/layers.js';
import type { Module } from '../../nn/module.js';
import {
  BasicBlock, Bottleneck, PadShortcut, ResNet, resnet18, resnet32, resnet34, resnet50, resnet101, resnext50_32x4d,
} from '../../nn/resnet.js';
import { randomArray, relErr } from '../helpers.js';

const gpu = () => (hasWebGPU() ? 'webgpu' : 'cpu') as 'webgpu' | 'cpu';
const values = async (t: Tensor) => Array.from(await t.data());
const shapes = (m: Module) => new Map([...m.stateDict()].map(([k, t]) => [k, t.shape.join('x')]));
const stats = (v: number[]) => {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return { mean, std: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length), maxAbs: v.reduce((a, b) => Math.max(a, Math.abs(b)), 0) };
};

describe('torchvision backbones: names, shapes and parameter counts', () => {
  // parameters, parameter tensors, state-dict entries (torchvision, 1000 classes)
  const expected: [string, () => ResNet, number, number, number][] = [
    ['resnet18', () => resnet18(), 11_689_512, 62, 122],
    ['resnet34', () => resnet34(), 21_797_672, 110, 218],
    ['resnet50', () => resnet50(), 25_557_032, 161, 320],
    ['resnet101', () => resnet101(), 44_549_160, 314, 626],
    ['resnext50_32x4d', () => resnext50_32x4d(), 25_028_904, 161, 320],
  ];
  for (const [name, build, count, tensors, entries] of expected) {
    it(`${name} has ${count} parameters`, () => {
      const model = skipInit(build);
      expect(model.numParameters()).toBe(count);
      expect(model.parameters().length).toBe(tensors);
      expect(model.stateDict().size).toBe(entries);
    });
  }

  it('ResNet-18 state dict keys are torchvision\'s, in order', () => {
    const keys = [...skipInit(() => resnet18()).stateDict().keys()];
    const bn = (p: string) => ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'].map((s) => `${p}.${s}`);
    expect(keys.slice(0, 18)).toEqual([
      'conv1.weight', ...bn('bn1'),
      'layer1.0.conv1.weight', ...bn('layer1.0.bn1'), 'layer1.0.conv2.weight', ...bn('layer1.0.bn2'),
    ]);
    const l2 = keys.indexOf('layer2.0.conv1.weight');
    expect(keys.slice(l2, l2 + 19)).toEqual([
      'layer2.0.conv1.weight', ...bn('layer2.0.bn1'), 'layer2.0.conv2.weight', ...bn('layer2.0.bn2'),
      'layer2.0.downsample.0.weight', ...bn('layer2.0.downsample.1'), 'layer2.1.conv1.weight',
    ]);
    expect(keys.slice(-3)).toEqual(['layer4.1.bn2.num_batches_tracked', 'fc.weight', 'fc.bias']);
    expect(keys.some((k) => k.startsWith('layer1.0.downsample'))).toBe(false);
  });

  it('bottleneck and ResNeXt shapes follow torchvision (stride on the 3x3, grouped width)', () => {
    const r50 = shapes(skipInit(() => resnet50({ numClasses: 10 })));
    expect([...r50.keys()].filter((k) => k.startsWith('layer1.0.') && !k.includes('running') && !k.includes('num_batches'))).toEqual([
      'layer1.0.conv1.weight', 'layer1.0.bn1.weight', 'layer1.0.bn1.bias', 'layer1.0.conv2.weight', 'layer1.0.bn2.weight', 'layer1.0.bn2.bias',
      'layer1.0.conv3.weight', 'layer1.0.bn3.weight', 'layer1.0.bn3.bias', 'layer1.0.downsample.0.weight', 'layer1.0.downsample.1.weight', 'layer1.0.downsample.1.bias',
    ]);
    expect(r50.get('layer1.0.downsample.0.weight')).toBe('256x64x1x1');
    expect(r50.get('layer2.0.conv2.weight')).toBe('128x128x3x3');
    expect(r50.get('layer4.2.conv3.weight')).toBe('2048x512x1x1');
    expect(r50.get('fc.weight')).toBe('10x2048');
    const rx = shapes(skipInit(() => resnext50_32x4d()));
    expect(rx.get('layer1.0.conv1.weight')).toBe('128x64x1x1');
    expect(rx.get('layer1.0.conv2.weight')).toBe('128x4x3x3');
    expect(rx.get('layer4.0.conv2.weight')).toBe('1024x32x3x3');
    expect(skipInit(() => resnet50({ numClasses: 10 })).numParameters()).toBe(25_557_032 - 2049 * 990);
  });

  it('replaceStrideWithDilation dilates the 3x3 convolutions instead of striding', () => {
    const m = skipInit(() => resnet50({ replaceStrideWithDilation: [false, true, true] }));
    const conv = (b: Bottleneck) => b.conv2;
    const l4 = [...m.layer4].map((b) => conv(b as Bottleneck));
    expect(l4.map((c) => [c.stride[0], c.dilation[0], c.padding[0]])).toEqual([[1, 2, 2], [1, 4, 4], [1, 4, 4]]);
    expect(conv(m.layer3.at(0) as Bottleneck).dilation[0]).toBe(1);
    expect(conv(m.layer2.at(0) as Bottleneck).stride[0]).toBe(2);
    expect(() => skipInit(() => resnet18({ replaceStrideWithDilation: [false, false, true] }))).toThrow(/dilation 2 > 1 is not supported/);
  });
});

describe('ResNet initialisation and forward', () => {
  it('initialises as torchvision and its WebGPU forward matches the CPU reference at 1x3x32x32', async () => {
    manualSeed(1);
    const model = resnet18({ numClasses: 10, device: gpu() });
    // kaiming normal (fan_out, relu) convolutions, BN weight 1 and bias 0, the default Linear init
    const w = stats(await values(model.layer4.at(1).stateDict().get('conv2.weight')!));
    expect(Math.abs(w.mean)).toBeLessThan(1e-3);
    expect(w.std / Math.sqrt(2 / (512 * 9))).toBeCloseTo(1, 1);
    expect(stats(await values(model.conv1.weight)).std / Math.sqrt(2 / (64 * 49))).toBeCloseTo(1, 1);
    const fc = stats(await values(model.fc.weight));
    expect(fc.maxAbs).toBeLessThanOrEqual(1 / Math.sqrt(512) + 1e-7);
    expect(fc.maxAbs).toBeGreaterThan(0.9 / Math.sqrt(512));
    const bn = (model.layer2.at(0) as BasicBlock).downsample!.at(1) as BatchNorm2d;
    expect((await values(bn.weight!)).every((v) => v === 1) && (await values(bn.bias!)).every((v) => v === 0)).toBe(true);

    // the same weights on the CPU reference backend (a GPU state dict is read back first)
    const ref = skipInit(() => resnet18({ numClasses: 10, device: 'cpu' })).eval();
    const sd = new Map(await Promise.all([...model.stateDict()].map(async ([k, t]) => [k, tensor(await t.data(), [...t.shape], { dtype: t.dtype, device: 'cpu' })] as const)));
    ref.loadStateDict(sd);
    model.eval();
    const xs = randomArray(3 * 32 * 32);
    const [y, yRef] = scope(() => [model.forward(tensor(xs, [1, 3, 32, 32], { device: gpu() })), ref.forward(tensor(xs, [1, 3, 32, 32], { device: 'cpu' }))]);
    expect(y.shape).toEqual([1, 10]);
    expect(relErr(await y.data(), yRef.cpu)).toBeLessThan(1e-4);
    const stages = model.stages(tensor(xs, [1, 3, 32, 32], { device: gpu() }));
    expect(stages.map((s) => s.shape)).toEqual([[1, 64, 8, 8], [1, 128, 4, 4], [1, 256, 2, 2], [1, 512, 1, 1]]);
  });

  it('zero-init-residual zeroes the last BN weight of every block (BasicBlock bn2, Bottleneck bn3)', async () => {
    for (const [block, last] of [[BasicBlock, 'bn2'], [Bottleneck, 'bn3']] as const) {
      const m = new ResNet(block, [1, 1, 1, 1], { zeroInitResidual: true, numClasses: 10, device: gpu() });
      for (const b of [m.layer1, m.layer2, m.layer3, m.layer4].map((l) => l.at(0))) {
        const sd = b.stateDict();
        expect((await values(sd.get(`${last}.weight`)!)).every((v) => v === 0)).toBe(true);
        expect((await values(sd.get('bn1.weight')!)).every((v) => v === 1)).toBe(true);
      }
    }
  });
});

describe('CIFAR ResNet-32 (LDAM-DRW)', () => {
  it('has their parameter names and 464,154 parameters for CIFAR-10 (option A)', () => {
    const m = skipInit(() => resnet32());
    const names = m.namedParameters().map(([n]) => n);
    expect(names.slice(0, 9)).toEqual([
      'conv1.weight', 'bn1.weight', 'bn1.bias',
      'layer1.0.conv1.weight', 'layer1.0.bn1.weight', 'layer1.0.bn1.bias', 'layer1.0.conv2.weight', 'layer1.0.bn2.weight', 'layer1.0.bn2.bias',
    ]);
    expect(names.slice(-2)).toEqual(['linear.weight', 'linear.bias']);
    expect(names.filter((n) => n.includes('shortcut'))).toEqual([]);
    expect(names.length).toBe(1 + 2 + 15 * 6 + 2);
    expect(m.numParameters()).toBe(464_154);
    expect(skipInit(() => resnet32({ numClasses: 100 })).numParameters()).toBe(470_004);
    // option B: 1x1 conv + BN where the shape changes
    const b = shapes(skipInit(() => resnet32({ shortcut: 'B' })));
    expect([...b.keys()].filter((k) => k.includes('shortcut'))).toEqual([
      ...['layer2', 'layer3'].flatMap((l) => [`${l}.0.shortcut.0.weight`, ...['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'].map((s) => `${l}.0.shortcut.1.${s}`)]),
    ]);
    expect(b.get('layer3.0.shortcut.0.weight')).toBe('64x32x1x1');
    expect(skipInit(() => resnet32({ shortcut: 'B' })).numParameters()).toBe(464_154 + 16 * 32 + 64 + 32 * 64 + 128);
    // NormedLinear head: weight [in, out], no bias
    const normed = shapes(skipInit(() => resnet32({ useNorm: true })));
    expect(normed.get('linear.weight')).toBe('64x10');
    expect(normed.has('linear.bias')).toBe(false);
  });

  it('option A shortcut is F.pad(x[:, :, ::2, ::2]) with planes/4 zero channels on each side', async () => {
    const [n, c, h, w] = [2, 4, 5, 6];
    const xs = randomArray(n * c * h * w);
    const y = new PadShortcut(8).forward(tensor(xs, [n, c, h, w], { device: gpu() }));
    expect(y.shape).toEqual([2, 8, 3, 3]);
    const expected: number[] = [];
    for (let b = 0; b < n; b++) for (let ch = 0; ch < 8; ch++) for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) {
      expected.push(ch < 2 || ch >= 6 ? 0 : xs[((b * c + ch - 2) * h + 2 * i) * w + 2 * j]);
    }
    expect(Array.from(await y.data())).toEqual(Array.from(Float32Array.from(expected)));
  });

  it("initialises as their code (kaiming normal, fan_in) and reproducibly under manualSeed", () => {
    const build = (seed: number) => {
      manualSeed(seed);
      return resnet32({ device: 'cpu' });
    };
    const all = (m: Module) => [...m.stateDict().values()].flatMap((t) => Array.from(t.cpu));
    const a = build(5);
    expect(all(build(5))).toEqual(all(a));
    expect(all(build(6))).not.toEqual(all(a));
    // layer2.0.conv1 is 16 → 32 channels: fan_in 144 differs from fan_out 288
    const w = stats(Array.from(a.layer2.at(0).stateDict().get('conv1.weight')!.cpu));
    expect(w.std / Math.sqrt(2 / (16 * 9))).toBeCloseTo(1, 1);
    expect(stats(Array.from(a.linear.stateDict().get('bias')!.cpu)).maxAbs).toBeLessThanOrEqual(1 / 8);
    const bns = a.modules().filter((m): m is BatchNorm2d => m instanceof BatchNorm2d);
    expect(bns.length).toBe(31);
    expect(a.modules().filter((m) => m instanceof Conv2d).length).toBe(31);
  });

  it('forward and backward on WebGPU match the CPU reference, for both shortcuts and the cosine head', async () => {
    for (const opts of [{ shortcut: 'A' as const }, { shortcut: 'B' as const, useNorm: true }]) {
      manualSeed(7);
      const ref = resnet32({ ...opts, device: 'cpu' });
      const model = skipInit(() => resnet32({ ...opts, device: gpu() }));
      model.loadStateDict(ref.stateDict());
      const xs = randomArray(2 * 3 * 16 * 16), ws = randomArray(2 * 10);
      for (const [m, device] of [[model, gpu()], [ref, 'cpu']] as const) {
        scope(() => {
          const y = m.forward(tensor(xs, [2, 3, 16, 16], { device }));
          sum(mul(y, tensor(ws, [2, 10], { device }))).backward();
        });
      }
      const refGrads = ref.namedParameters();
      for (const [i, [name, p]] of model.namedParameters().entries()) expect(relErr(await p.grad!.data(), refGrads[i][1].grad!.cpu), name).toBeLessThan(1e-4);
      // the training pass moved the running statistics identically
      const refBuffers = ref.namedBuffers();
      for (const [i, [name, b]] of model.namedBuffers().entries()) expect(relErr(await b.data(), refBuffers[i][1].cpu), name).toBeLessThan(1e-4);
      expect(model.features(tensor(xs, [2, 3, 16, 16], { device: gpu() })).shape).toEqual([2, 64]);
    }
  });
});
