import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadSafetensors } from '../../nn/safetensors.js';
import { scope } from '../../kernels/tensor.js';
import { backend } from '../../kernels/device.js';
import { tensor } from '../../kernels/creation.js';
import { deeplabv3ResNet50, fcnResNet50, segmentationModel, type SegArch } from '../../segmentation/models.js';

const fixture = (name: string): URL => new URL(`../fixtures/segmentation/${name}`, import.meta.url);

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

describe('torchvision state-dict names', () => {
  // scripts/make-seg-fixtures.py: every key and shape of torchvision 0.14's fcn_resnet50 and
  // deeplabv3_resnet50 with aux_loss=True, 21 classes.
  const ref = JSON.parse(readFileSync(fixture('torchvision-keys.json'), 'utf8')) as { models: Record<string, [string, number[]][]> };
  for (const [name, build] of [['fcn_resnet50', fcnResNet50], ['deeplabv3_resnet50', deeplabv3ResNet50]] as const) {
    it(`${name}(aux_loss=True): the same keys, in the same order, with the same shapes`, () => {
      const model = build({ numClasses: 21, auxLoss: true, resnet: { device: 'cpu' } });
      const ours = [...model.stateDict()].map(([k, t]) => [k, [...t.shape]]);
      expect(ours.length).toBe(ref.models[name].length);
      expect(ours).toEqual(ref.models[name]);
    });
  }
});

describe('parity with torchvision (narrow models, random weights)', () => {
  // The same torchvision classes at width 4·[1,2,4,8], one Bottleneck a layer, dilated [F, T, T]
  // (output stride 8), head width 16, 5 classes; BN statistics random; input [2, 3, 37, 45].
  for (const arch of ['fcn', 'deeplabv3'] as SegArch[]) {
    it(`${arch}: eval outputs (out and aux) match torchvision's to 1e-4 relative`, async () => {
      const { tensors } = loadSafetensors(new Uint8Array(readFileSync(fixture(`tiny-${arch}.safetensors`))));
      const model = segmentationModel(arch, { depth: 14, numClasses: 5, auxLoss: true, headChannels: 16, resnet: { baseChannels: 4 } });
      const weights = new Map([...tensors].filter(([k]) => !k.startsWith('input') && !k.startsWith('expected')));
      const loaded = model.loadStateDict(weights);
      expect(loaded.missingKeys).toEqual([]);
      expect(loaded.unexpectedKeys).toEqual([]);
      model.eval();
      const x = tensors.get('input')!;
      const { out, aux } = scope(() => model.forward(x));
      expect(out.shape).toEqual([2, 5, 37, 45]);
      const o = await out.data(), a = await aux!.data();
      const eo = await tensors.get('expected.out')!.data(), ea = await tensors.get('expected.aux')!.data();
      expect(relErr(o, eo)).toBeLessThan(1e-4);
      expect(relErr(a, ea)).toBeLessThan(1e-4);
      // not trivially small outputs
      expect(Math.max(...Array.from(eo, Math.abs))).toBeGreaterThan(0.1);
    });
  }
});

describe('DeepLabV3+ and output strides', () => {
  it('the V3+ decoder projects layer1 to 48 channels and predicts at the input size; OS16 dilates only layer4', async () => {
    const m = segmentationModel('deeplabv3plus', { depth: 14, numClasses: 3, auxLoss: true, headChannels: 8, resnet: { baseChannels: 4 }, outputStride: 16 });
    const keys = [...m.stateDict()].map(([k, t]) => `${k} ${t.shape.join('x')}`);
    expect(keys).toContain('classifier.project.0.weight 48x16x1x1');
    expect(keys).toContain('classifier.classifier.0.weight 8x56x3x3');
    expect(keys).toContain('classifier.aspp.convs.1.0.weight 8x128x3x3');
    expect(keys).toContain('aux_classifier.4.weight 3x16x1x1');
    // rates 6/12/18 at output stride 16
    const head = m.classifier as unknown as { aspp: { convs: { at(i: number): { at(j: number): { dilation: number[] } } } } };
    expect([1, 2, 3].map((i) => head.aspp.convs.at(i).at(0).dilation[0])).toEqual([6, 12, 18]);
    m.eval();
    const x = tensor(Array.from({ length: 3 * 29 * 35 }, (_, i) => Math.sin(i)), [1, 3, 29, 35]);
    const { logits } = { logits: scope(() => m.logits(x)) };
    // OS16: layer3 stride 16 (29 → 15 → 8 → 4 → 2), layer4 dilated stays 2; layer1 at stride 4 (8)
    expect(logits.features.low.shape).toEqual([1, 16, 8, 9]);
    expect(logits.features.aux.shape).toEqual([1, 64, 2, 3]);
    expect(logits.features.out.shape).toEqual([1, 128, 2, 3]);
    expect(logits.out.shape).toEqual([1, 3, 8, 9]);
    const y = scope(() => m.forward(x));
    expect(y.out.shape).toEqual([1, 3, 29, 35]);
    expect(y.aux!.shape).toEqual([1, 3, 29, 35]);
    expect(backend()).toBeDefined();
  });
});
