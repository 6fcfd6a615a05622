// RLE masks with pycocotools' semantics, on cases worked by hand and on seeded random masks checked
// pixel by pixel. Browser-safe (no files); test/data/masks-official.test.ts compares with maskApi.c.
import { describe, expect, it } from 'vitest';
import { DataRng } from '../../data/rng.js';
import { bboxIou, bboxToRle, maskFromRowMajor, maskToRowMajor, polygonToRle, rleArea, rleDecode, rleEncode, rleFromJson, rleFromString, rleIou, rleMerge, rleToBbox, rleToJson, rleToString, segmentationToRle } from '../../data/masks.js';

function randomMask(rng: DataRng, h: number, w: number, density: number): Uint8Array {
  return Uint8Array.from({ length: h * w }, () => (rng.random() < density ? 1 : 0));
}

describe('polygon rasterisation (maskApi rleFrPoly)', () => {
  it('the square (1,1)-(3,3) in a 5×5 image, worked through by hand', () => {
    // ×5 upsampled corners: x = 5, 15, 15, 5; y = 5, 5, 15, 15. Walking the boundary, a step in x
    // between upsampled columns u−1 → u (rightwards, on the top edge y = 5) keeps column (u−1) and
    // a leftward step keeps u; a column counts when (col + ½)/5 − ½ is an integer: cols 7 → x = 1 and
    // 12 → x = 2. Its y is ceil((min v + ½)/5 − ½): top edge v = 5 → ceil(0.6) = 1; bottom v = 15 →
    // ceil(2.6) = 3. Boundary points (x, y): (1,1), (2,1), (2,3), (1,3) → flat x·h + y = 6, 11, 13, 8,
    // plus h·w = 25; sorted and differenced: 6, 2, 3, 2, 12 → pixels x ∈ {1, 2}, y ∈ {1, 2}.
    const r = polygonToRle([1, 1, 3, 1, 3, 3, 1, 3], 5, 5);
    expect(Array.from(r.counts)).toEqual([6, 2, 3, 2, 12]);
    expect(rleArea(r)).toBe(4);
    expect(rleToBbox(r)).toEqual([1, 1, 2, 2]);
    const rows = maskToRowMajor(rleDecode(r), 5, 5);
    expect(Array.from(rows)).toEqual([0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    // the same box through rleFrBbox (the polygon walked the other way round)
    expect(Array.from(bboxToRle([1, 1, 2, 2], 5, 5).counts)).toEqual([6, 2, 3, 2, 12]);
  });

  it('a box on integer corners covers exactly its pixels, clipped at the border', () => {
    for (const [x, y, w, h, H, W] of [
      [0, 0, 4, 3, 6, 7],
      [2, 1, 5, 5, 6, 7],
      [-3, -2, 5, 4, 6, 7],
    ]) {
      const m = maskToRowMajor(rleDecode(bboxToRle([x, y, w, h], H, W)), H, W);
      for (let yy = 0; yy < H; yy++) for (let xx = 0; xx < W; xx++) expect(m[yy * W + xx], `(${xx},${yy}) of box ${[x, y, w, h]}`).toBe(xx >= x && xx < x + w && yy >= y && yy < y + h ? 1 : 0);
    }
  });

  it('a polygon list is the union of its parts (annToRLE: frPyObjects then merge)', () => {
    const a = [0, 0, 3, 0, 3, 3, 0, 3];
    const b = [2, 2, 6, 2, 6, 6, 2, 6];
    const u = segmentationToRle([a, b], 8, 8);
    const ma = rleDecode(polygonToRle(a, 8, 8));
    const mb = rleDecode(polygonToRle(b, 8, 8));
    expect(Array.from(rleDecode(u))).toEqual(Array.from(ma, (v, i) => v | mb[i]));
    expect(rleArea(u)).toBe(9 + 16 - 1);
  });
});

describe('RLE strings (rleToString / rleFrString)', () => {
  it('encodes by hand', () => {
    // counts 6, 2, 3 as they are; from the 4th on, the difference to the count two before:
    // 2 − 2 = 0, 12 − 3 = 9; each a 5-bit group + '0' → "62309"
    expect(rleToString({ h: 5, w: 5, counts: Uint32Array.of(6, 2, 3, 2, 12) })).toBe('62309');
    // a negative difference: 2 − 5 = −3 → low 5 bits 11101 = 29, sign bit set, no more → '0' + 29 = 'M'
    expect(rleToString({ h: 1, w: 8, counts: Uint32Array.of(0, 5, 1, 2) })).toBe('051M');
    expect(Array.from(rleFromString('051M', 1, 8).counts)).toEqual([0, 5, 1, 2]);
    // 100 = 3·32 + 4 → groups 4 (more: 4 | 32 = 36 → 'T') then 3 → "T3"
    expect(rleToString({ h: 1, w: 100, counts: Uint32Array.of(100) })).toBe('T3');
    expect(() => rleFromString('0~', 1, 1)).toThrow(/outside the RLE alphabet/);
    expect(() => rleFromString('T', 1, 1)).toThrow(/ends inside a count/);
  });

  it('round-trips random masks, and large counts', () => {
    const rng = new DataRng(11);
    for (let i = 0; i < 200; i++) {
      const h = 1 + Math.floor(rng.random() * 30);
      const w = 1 + Math.floor(rng.random() * 30);
      const m = randomMask(rng, h, w, [0, 0.02, 0.5, 0.97, 1][i % 5]);
      const r = rleEncode(m, h, w);
      expect(Array.from(rleDecode(r))).toEqual(Array.from(m));
      const back = rleFromString(rleToString(r), h, w);
      expect(Array.from(back.counts)).toEqual(Array.from(r.counts));
      expect(rleFromJson(rleToJson(r))).toEqual(r);
      expect(rleFromJson({ size: [h, w], counts: Array.from(r.counts) })).toEqual(r);
      expect(rleArea(r)).toBe(m.reduce((a, b) => a + b, 0));
    }
    const big = { h: 1, w: 0, counts: Uint32Array.of(0, 100000, 5, 1, 2 ** 20, 3, 70000, 0, 2 ** 30) };
    expect(Array.from(rleFromString(rleToString(big), 1, 0).counts)).toEqual(Array.from(big.counts));
  });

  it('row-major and column-major layouts convert both ways', () => {
    const rng = new DataRng(3);
    const m = randomMask(rng, 5, 7, 0.5);
    expect(Array.from(maskFromRowMajor(maskToRowMajor(m, 5, 7), 5, 7))).toEqual(Array.from(m));
  });
});

describe('area, bbox, merge, IoU against the pixels', () => {
  const rng = new DataRng(5);
  const cases = Array.from({ length: 60 }, (_, i) => {
    const h = 1 + Math.floor(rng.random() * 20);
    const w = 1 + Math.floor(rng.random() * 20);
    return { h, w, a: randomMask(rng, h, w, [0.05, 0.3, 0.7, 0][i % 4]), b: randomMask(rng, h, w, [0.2, 0.5, 0.9][i % 3]) };
  });

  it('toBbox is the tight box of the pixels ([0,0,0,0] when empty)', () => {
    for (const { h, w, a } of cases) {
      let [x0, y0, x1, y1] = [w, h, -1, -1];
      for (let x = 0; x < w; x++) for (let y = 0; y < h; y++) if (a[x * h + y]) [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
      expect(rleToBbox(rleEncode(a, h, w))).toEqual(x1 < 0 ? [0, 0, 0, 0] : [x0, y0, x1 - x0 + 1, y1 - y0 + 1]);
    }
  });

  it('merge is the union (or intersection) of the pixels', () => {
    for (const { h, w, a, b } of cases) {
      const ra = rleEncode(a, h, w);
      const rb = rleEncode(b, h, w);
      expect(Array.from(rleDecode(rleMerge([ra, rb])))).toEqual(Array.from(a, (v, i) => v | b[i]));
      expect(Array.from(rleDecode(rleMerge([ra, rb], true)))).toEqual(Array.from(a, (v, i) => v & b[i]));
    }
    expect(rleMerge([{ h: 2, w: 2, counts: Uint32Array.of(4) }, { h: 3, w: 2, counts: Uint32Array.of(6) }])).toEqual({ h: 0, w: 0, counts: new Uint32Array(0) });
  });

  it('IoU is |a∩b| / |a∪b|, and |a∩b| / |a| for a crowd gt; −1 across sizes', () => {
    for (const { h, w, a, b } of cases) {
      let inter = 0;
      let union = 0;
      let areaA = 0;
      a.forEach((v, i) => {
        inter += v & b[i];
        union += v | b[i];
        areaA += v;
      });
      const [plain, crowd] = rleIou([rleEncode(a, h, w)], [rleEncode(b, h, w), rleEncode(b, h, w)], [false, true]);
      expect(plain).toBeCloseTo(inter === 0 ? 0 : inter / union, 15);
      expect(crowd).toBeCloseTo(inter === 0 ? 0 : inter / areaA, 15);
    }
    expect(Array.from(rleIou([{ h: 2, w: 2, counts: Uint32Array.of(0, 4) }], [{ h: 4, w: 1, counts: Uint32Array.of(0, 4) }], [false]))).toEqual([-1]);
  });

  it('box IoU, with the crowd rule, rows = detections', () => {
    // [0,0,10,10] vs [5,0,10,10]: intersection 50, union 150; crowd: 50 / 100 (the detection's area)
    expect(Array.from(bboxIou([[0, 0, 10, 10]], [[5, 0, 10, 10], [5, 0, 10, 10]], [false, true]))).toEqual([1 / 3, 0.5]);
    expect(Array.from(bboxIou([[0, 0, 1, 1], [0, 0, 2, 2]], [[3, 3, 1, 1]], [false]))).toEqual([0, 0]);
  });
});
