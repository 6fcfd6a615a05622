import { describe, expect, it } from 'vitest';
import { batchedNms, f32Below, greedyNmsCPU, liveTensorCount, nms, roiAlignBackward, roiAlignLevels, scoreOrder, tensor, type IndexList, type Tensor } from '../../kernels/index.js';
import { pair, randomArray, randomInts, backends } from '../helpers.js';
import golden from '../fixtures/detection/nms.json';

async function kept(l: IndexList): Promise<number[]> {
  const n = (await l.count.data())[0];
  const idx = Array.from(await l.indices.data());
  expect(idx.slice(n).every((v) => v === -1)).toBe(true);
  return idx.slice(0, n);
}

/** Random boxes on a coarse grid (exactly equal IoUs, duplicates), some partly outside, some empty. */
function boxesOf(n: number, size = 30): Float32Array {
  const u = randomArray(n * 4, 0, 1);
  const b = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const x = Math.round((u[i * 4] * (size + 10) - 5) * 2) / 2, y = Math.round((u[i * 4 + 1] * (size + 10) - 5) * 2) / 2;
    const w = Math.round(u[i * 4 + 2] * size * 0.5 * 2) / 2, h = Math.round(u[i * 4 + 3] * size * 0.5 * 2) / 2;
    b.set([x, y, x + (i % 17 === 3 ? 0 : w), y + h], i * 4);
  }
  return b;
}

describe('nms', () => {
  golden.nms.forEach((c, t) => {
    it(`matches torchvision.ops.nms, case ${t} (${c.scores.length} boxes, threshold ${c.threshold})`, async () => {
      const n = c.scores.length;
      for (const dev of backends()) {
        const l = nms(tensor(c.boxes, [n, 4], { device: dev }), tensor(c.scores, [n], { device: dev }), c.threshold);
        expect(await kept(l), dev).toEqual(c.keep);
      }
    });
  });

  golden.batched.forEach((c, t) => {
    it(`matches torchvision.ops.batched_nms, case ${t} (${c.scores.length} boxes, ${new Set(c.idxs).size} classes)`, async () => {
      const n = c.scores.length;
      for (const dev of backends()) {
        const l = batchedNms(tensor(c.boxes, [n, 4], { device: dev }), tensor(c.scores, [n], { device: dev }), tensor(c.idxs, [n], { dtype: 'i32', device: dev }), c.threshold);
        expect(await kept(l), dev).toEqual(c.keep);
      }
    });
  });

  for (const [n, thr, ties] of [[1, 0.5, 1], [2, 0.5, 1], [33, 0.5, 3], [257, 0.3, 5], [700, 0.7, 4], [1100, 0.5, 9], [2049, 0.45, 1000]] as const) {
    it(`${n} boxes, threshold ${thr}, ${ties} distinct scores: the GPU keeps exactly the greedy CPU NMS's indices`, async () => {
      const b = boxesOf(n);
      const s = Float32Array.from(randomInts(n, 0, ties), (v) => v / ties);
      const want = greedyNmsCPU(b, s, null, thr, false);
      const [gb, cb] = pair(b, [n, 4]);
      const [gs, cs] = pair(s, [n]);
      expect(await kept(nms(cb, cs, thr))).toEqual(want);
      expect(await kept(nms(gb, gs, thr))).toEqual(want);
      // batched, both paths (coordinate trick below 1000 boxes, per class above)
      const cls = randomInts(n, 0, 4);
      const [gi, ci] = pair(cls, [n], 'i32');
      const wantB = greedyNmsCPU(b, s, cls, thr, n * 4 <= 4000);
      expect(await kept(batchedNms(cb, cs, ci, thr))).toEqual(wantB);
      expect(await kept(batchedNms(gb, gs, gi, thr))).toEqual(wantB);
      // the post-NMS top-n is the head of the full list
      const top = await kept(nms(gb, gs, thr, { maxOutput: 5 }));
      expect(top).toEqual(want.slice(0, 5));
    });
  }

  it('per-class NMS keeps the same set as running nms on each class alone', async () => {
    const n = 300;
    const b = boxesOf(n), s = randomArray(n, 0, 1), cls = randomInts(n, 0, 3);
    const all = greedyNmsCPU(b, s, cls, 0.5, false);
    const perClass: number[] = [];
    for (let c = 0; c < 3; c++) {
      const ids = [...cls.keys()].filter((i) => cls[i] === c);
      const sub = greedyNmsCPU(ids.flatMap((i) => Array.from(b.slice(i * 4, i * 4 + 4))), ids.map((i) => s[i]), null, 0.5, false);
      perClass.push(...sub.map((j) => ids[j]));
    }
    expect([...all].sort((x, y) => x - y)).toEqual(perClass.sort((x, y) => x - y));
  });

  it('orders by descending score with ties by ascending index, on the GPU too', async () => {
    const s = [0.5, 0.9, 0.5, 0.1, 0.9, 0.5, -2, 0.9];
    for (const dev of backends()) {
      expect(Array.from(await scoreOrder(tensor(s, [8], { device: dev })).data())).toEqual([1, 4, 7, 0, 2, 5, 3, 6]);
    }
    const n = 1000;
    const r = Float32Array.from(randomInts(n, 0, 7));
    const [g, c] = pair(r, [n]);
    expect(Array.from(await scoreOrder(g).data())).toEqual(Array.from(await scoreOrder(c).data()));
  });

  it('visits NaN scores first, as torch.sort does', async () => {
    const b = [0, 0, 4, 4, 0, 0, 4, 4, 10, 10, 12, 12, 10, 10, 12, 12];
    const s = [0.9, NaN, 0.5, Infinity];
    expect(greedyNmsCPU(b, s, null, 0.5, false)).toEqual([1, 3]);
    for (const dev of backends()) expect(await kept(nms(tensor(b, [4, 4], { device: dev }), tensor(s, [4], { device: dev }), 0.5))).toEqual([1, 3]);
  });

  it('suppresses only above the threshold as torchvision compares (float32 IoU against the double threshold)', async () => {
    // IoU of these two is exactly 1/3 in float32 (0.33333334 > 1/3 as doubles): suppressed at 1/3
    const b = [0, 0, 2, 1, 1, 0, 3, 1];
    for (const dev of backends()) {
      const l = (thr: number) => kept(nms(tensor(b, [2, 4], { device: dev }), tensor([1, 0.5], [2], { device: dev }), thr));
      expect(await l(1 / 3)).toEqual([0]);
      expect(await l(Math.fround(1 / 3))).toEqual([0, 1]);
      expect(await l(0.3)).toEqual([0]);
    }
    expect(f32Below(0.3)).toBeLessThan(Math.fround(0.3));
    expect(f32Below(0.5)).toBe(0.5);
  });

  it('NMS and the ROI align passes leave no temporaries behind', async () => {
    for (const dev of backends()) {
      const b = tensor(boxesOf(300), [300, 4], { device: dev }), s = tensor(randomArray(300, 0, 1), [300], { device: dev });
      const cls = tensor(randomInts(300, 0, 3), [300], { dtype: 'i32', device: dev });
      const x = tensor(randomArray(2 * 3 * 8 * 8), [2, 3, 8, 8], { device: dev }), x2 = tensor(randomArray(2 * 3 * 4 * 4), [2, 3, 4, 4], { device: dev });
      const rois = tensor([0, 1, 1, 6, 6, 1, 0, 2, 7, 5], [2, 5], { device: dev }), lv = tensor([0, 1], [2], { dtype: 'i32', device: dev });
      const g = tensor(randomArray(2 * 3 * 4), [2, 3, 2, 2], { device: dev });
      const before = liveTensorCount();
      for (const l of [nms(b, s, 0.5), batchedNms(b, s, cls, 0.5), batchedNms(b, s, cls, 0.5, { maxOutput: 7 })]) {
        await l.count.data();
        l.indices.dispose();
        l.count.dispose();
      }
      roiAlignLevels([x, x2], rois, lv, { outputSize: 2, scales: [1, 0.5], samplingRatio: 2 }).dispose();
      for (const samplingRatio of [2, -1]) roiAlignBackward(g, rois, x.shape, { outputSize: 2, samplingRatio }, { levels: lv, level: 0 }).dispose();
      expect(liveTensorCount(), dev).toBe(before);
    }
  });

  it('handles no boxes and rejects bad input with the op name and shapes', async () => {
    for (const dev of backends()) {
      const l = nms(tensor(new Float32Array(0), [0, 4], { device: dev }), tensor(new Float32Array(0), [0], { device: dev }), 0.5);
      expect(l.indices.shape).toEqual([0]);
      expect((await l.count.data())[0]).toBe(0);
    }
    const b: Tensor = tensor(new Float32Array(8), [2, 4]);
    expect(() => nms(b, tensor([1, 2, 3], [3]), 0.5)).toThrow(/nms: scores must be f32 \[2\] for boxes \[2, 4\], got f32 \[3\]/);
    expect(() => nms(tensor(new Float32Array(6), [2, 3]), tensor([1, 2], [2]), 0.5)).toThrow(/nms: boxes must be f32 \[N, 4\] \(x1, y1, x2, y2\), got f32 \[2, 3\]/);
    expect(() => batchedNms(b, tensor([1, 2], [2]), tensor([0, 1], [2]), 0.5)).toThrow(/batchedNms: idxs must be i32 \[2\] for boxes \[2, 4\], got f32 \[2\]/);
  });
});
