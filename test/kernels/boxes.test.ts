import { describe, expect, it } from 'vitest';
import { boxDecode, boxEncode, boxIou, clipBoxes, compact, fpnLevels, removeSmallBoxes, tensor, type BoxWeights } from '../../kernels/index.js';
import { compare, pair, randomArray, randomInts, relErr, backends } from '../helpers.js';
import golden from '../fixtures/detection/boxes.json';
import poolers from '../fixtures/detection/poolers.json';

function boxesOf(n: number): Float32Array {
  const u = randomArray(n * 4, 0, 1);
  const b = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const x = u[i * 4] * 60 - 10, y = u[i * 4 + 1] * 60 - 10;
    b.set([x, y, x + (i % 7 === 2 ? 0 : u[i * 4 + 2] * 30 + 0.5), y + u[i * 4 + 3] * 30 + 0.5], i * 4);
  }
  return b;
}

/** NaN-aware equality with a relative tolerance. */
function close(got: ArrayLike<number>, want: (number | null)[], tol: number): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const w = want[i];
    if (w === null) expect(Number.isNaN(got[i]), `element ${i}`).toBe(true);
    else expect(Math.abs(got[i] - w), `element ${i}: ${got[i]} vs ${w}`).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(w)));
  }
}

describe('box ops', () => {
  it('box_iou matches torchvision (incl. the NaN of two empty boxes)', async () => {
    const { a, b, iou } = golden.iou;
    for (const dev of backends()) {
      const out = boxIou(tensor(a, [a.length / 4, 4], { device: dev }), tensor(b, [b.length / 4, 4], { device: dev }));
      close(await out.data(), iou, 1e-6);
    }
  });

  for (const [n, m] of [[1, 1], [7, 13], [130, 3], [1, 257]]) {
    it(`box_iou ${n}x${m}: the GPU matches the CPU`, async () => {
      const [ga, ca] = pair(boxesOf(n), [n, 4]);
      const [gb, cb] = pair(boxesOf(m), [m, 4]);
      expect(await compare(boxIou(ga, gb), boxIou(ca, cb))).toBeLessThan(1e-6);
    });
  }

  golden.coder.forEach((c) => {
    it(`BoxCoder weights (${c.weights}) encodes and decodes as torchvision, with the dw/dh clamp`, async () => {
      const w = c.weights as unknown as BoxWeights;
      for (const dev of backends()) {
        const enc = boxEncode(tensor(c.reference, [4, 4], { device: dev }), tensor(c.proposals, [4, 4], { device: dev }), w);
        close(await enc.data(), c.encoded, 2e-6);
        const dec = boxDecode(tensor(c.codes, [4, 8], { device: dev }), tensor(c.proposals, [4, 4], { device: dev }), w);
        expect([dec.shape[0], dec.shape[1] / 4, 4]).toEqual(c.decodedShape);
        close(await dec.data(), c.decoded, 2e-6);
      }
    });
  });

  it('encode and decode are inverse, and the GPU matches the CPU on random boxes', async () => {
    const n = 301;
    const ref = boxesOf(n).map((v, i) => (i % 4 >= 2 ? v + 1 : v));
    const prop = boxesOf(n).map((v, i) => (i % 4 >= 2 ? v + 1 : v));
    for (const w of [[1, 1, 1, 1], [10, 10, 5, 5]] as BoxWeights[]) {
      const [gr, cr] = pair(ref, [n, 4]);
      const [gp, cp] = pair(prop, [n, 4]);
      const ce = boxEncode(cr, cp, w);
      expect(await compare(boxEncode(gr, gp, w), ce)).toBeLessThan(1e-5);
      const [gc, cc] = pair(await ce.data(), [n, 4]);
      const cd = boxDecode(cc, cp, w, Infinity);
      expect(relErr(await cd.data(), ref)).toBeLessThan(1e-9);
      expect(await compare(boxDecode(gc, gp, w, Infinity), cd)).toBeLessThan(1e-5);
    }
  });

  it('clip_boxes_to_image and remove_small_boxes match torchvision', async () => {
    const { boxes, size, out } = golden.clip;
    for (const dev of backends()) {
      close(await clipBoxes(tensor(boxes, [boxes.length / 4, 4], { device: dev }), size as [number, number]).data(), out, 0);
      const s = golden.small;
      const l = removeSmallBoxes(tensor(s.boxes, [s.boxes.length / 4, 4], { device: dev }), s.minSize);
      const n = (await l.count.data())[0];
      expect(Array.from(await l.indices.data()).slice(0, n)).toEqual(s.keep);
    }
  });

  for (const n of [1, 255, 256, 257, 1000]) {
    it(`compact of ${n}: the GPU index list equals the CPU one`, async () => {
      const m = randomInts(n, 0, 2);
      const [g, c] = pair(m, [n], 'i32');
      const a = compact(g), b = compact(c);
      expect(Array.from(await a.indices.data())).toEqual(Array.from(await b.indices.data()));
      expect(await a.count.item()).toBe(m.reduce((x, v) => x + v, 0));
    });
  }

  it('the FPN level mapper matches torchvision (incl. the clamps at both ends and 447.5 vs 448)', async () => {
    const boxes = poolers.boxes.flat();
    const kMin = -Math.log2(poolers.scales[0]), kMax = -Math.log2(poolers.scales[poolers.scales.length - 1]);
    for (const dev of backends()) {
      const lv = fpnLevels(tensor(boxes, [boxes.length / 4, 4], { device: dev }), { kMin, kMax });
      expect(Array.from(await lv.data())).toEqual(poolers.levels);
    }
  });

  it('rejects bad input with the op name and shapes', () => {
    const b = tensor(new Float32Array(8), [2, 4]);
    expect(() => boxIou(b, tensor(new Float32Array(6), [2, 3]))).toThrow(/boxIou: boxes2 must be f32 \[N, 4\] \(x1, y1, x2, y2\), got f32 \[2, 3\]/);
    expect(() => boxDecode(tensor(new Float32Array(6), [2, 3]), b, [1, 1, 1, 1])).toThrow(/boxDecode: codes must be f32 \[2, 4·classes\] for boxes \[2, 4\], got f32 \[2, 3\]/);
    expect(() => boxEncode(b, tensor(new Float32Array(4), [1, 4]), [1, 1, 1, 1])).toThrow(/boxEncode: reference \[2, 4\] and proposals \[1, 4\] must have the same length/);
    expect(() => clipBoxes(tensor(new Float32Array(6), [2, 3]), [4, 4])).toThrow(/clipBoxes: boxes must be f32 \[\.\.\., 4\], got f32 \[2, 3\]/);
  });
});
