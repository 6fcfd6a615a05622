import { describe, expect, it } from 'vitest';
import { BoxCoder, MultiScaleRoIAlign, ROI_HEADS_BOX_WEIGHTS, RPN_BOX_WEIGHTS, boxesToRois, inferScale } from '../../detection/index.js';
import { tensor, type Tensor } from '../../index.node.js';
import { relErr, backends } from '../helpers.js';
import golden from '../fixtures/detection/poolers.json';
import boxes from '../fixtures/detection/boxes.json';

describe('MultiScaleRoIAlign', () => {
  it('infers the scales as torchvision (2^round(log2(feature / image)))', () => {
    expect(inferScale([2, 2, 32, 48], [512, 760])).toBe(1 / 16);
    expect(inferScale([1, 1, 25, 38], [800, 1216])).toBe(1 / 32);
    expect(inferScale([1, 1, 13, 19], [800, 1216])).toBe(1 / 64);
  });

  it('matches torchvision on a 4-level pyramid of two images (levels 0..3, boxes partly outside)', async () => {
    for (const dev of backends()) {
      const names = ['p0', 'p1', 'p2', 'p3'];
      const feats: Record<string, Tensor> = {};
      golden.features.forEach((v, i) => (feats[names[i]] = tensor(v, golden.featureShapes[i], { device: dev })));
      const bx = golden.boxes.map((b) => tensor(b, [b.length / 4, 4], { device: dev }));
      const pooler = new MultiScaleRoIAlign({ featmapNames: names, outputSize: golden.outputSize as [number, number], samplingRatio: golden.samplingRatio });
      const out = pooler.forward(feats, bx, golden.imageShapes as [number, number][]);
      expect(out.shape).toEqual(golden.outShape);
      expect(pooler.scales).toEqual(golden.scales);
      expect(Array.from(await pooler.mapper!.map(tensor(golden.boxes.flat(), [golden.levels.length, 4], { device: dev })).data())).toEqual(golden.levels);
      expect(relErr(await out.data(), golden.out), dev).toBeLessThan(1e-5);
    }
  });

  it('pools from one map without a level mapper, and converts boxes to rois with the image index', async () => {
    const x = tensor(Float32Array.from({ length: 2 * 1 * 4 * 4 }, (_, i) => i), [2, 1, 4, 4]);
    const pooler = new MultiScaleRoIAlign({ featmapNames: ['a'], outputSize: 1, samplingRatio: 1 });
    const out = pooler.forward({ a: x, b: x }, [tensor([0, 0, 8, 8], [1, 4]), tensor([0, 0, 8, 8], [1, 4])], [[8, 8], [8, 8]]);
    // scale 1/2: the box covers the map 0..4, one sample at (2, 2): value 2·4 + 2 = 10, and 16 + 10 in image 1
    expect(Array.from(await out.data())).toEqual([10, 26]);
    expect(Array.from(await boxesToRois([tensor([1, 2, 3, 4], [1, 4]), tensor([5, 6, 7, 8, 9, 10, 11, 12], [2, 4])]).data())).toEqual([0, 1, 2, 3, 4, 1, 5, 6, 7, 8, 1, 9, 10, 11, 12]);
    expect(() => pooler.forward({ b: x }, [tensor([0, 0, 8, 8], [1, 4])], [[8, 8]])).toThrow(/MultiScaleRoIAlign: none of the feature maps a is in the input \(b\)/);
  });
});

describe('BoxCoder', () => {
  it('encodes per image and decodes to [ΣN, C, 4] as torchvision', async () => {
    for (const c of boxes.coder) {
      const coder = new BoxCoder(c.weights as unknown as [number, number, number, number]);
      const ref = tensor(c.reference, [4, 4]), prop = tensor(c.proposals, [4, 4]);
      const parts = coder.encode([ref.reshape([4, 4])], [prop]);
      expect(relErr(await parts[0].data(), c.encoded)).toBeLessThan(1e-6);
      const split = coder.encode([tensor(c.reference.slice(0, 12), [3, 4]), tensor(c.reference.slice(12), [1, 4])], [tensor(c.proposals.slice(0, 12), [3, 4]), tensor(c.proposals.slice(12), [1, 4])]);
      expect(split.map((t) => t.shape[0])).toEqual([3, 1]);
      expect(relErr([...(await split[0].data()), ...(await split[1].data())], c.encoded)).toBeLessThan(1e-6);
      const dec = coder.decode(tensor(c.codes, [4, 8]), [tensor(c.proposals.slice(0, 12), [3, 4]), tensor(c.proposals.slice(12), [1, 4])]);
      expect(dec.shape).toEqual(c.decodedShape);
      expect(relErr(await dec.data(), c.decoded)).toBeLessThan(1e-6);
    }
    expect(RPN_BOX_WEIGHTS).toEqual([1, 1, 1, 1]);
    expect(ROI_HEADS_BOX_WEIGHTS).toEqual([10, 10, 5, 5]);
    expect(() => new BoxCoder([1, 1, 0, 1])).toThrow(/BoxCoder: weights must be 4 non-zero numbers/);
  });
});
