// Instance masks as COCO run-length encodings, with pycocotools' semantics (common/maskApi.c and
// _mask.pyx, read and re-written here): a mask of h×w pixels is flattened column-major (index
// x·h + y) and stored as alternating run lengths, starting with a run of 0s (possibly empty).
// Polygons are rasterised by maskApi's rleFrPoly (boundary upsampled ×5, scan-converted along x,
// downsampled), boxes through the same polygon path (rleFrBbox), and mask IoU follows rleIou (for a
// crowd ground truth, IoU = intersection / area(detection)). Browser-safe.

/** A run-length encoded mask: `counts` alternate 0-runs and 1-runs over the column-major pixels. */
export interface Rle {
  h: number;
  w: number;
  counts: Uint32Array;
}

/** COCO's JSON forms of a mask: compressed (`counts` a string) or uncompressed (`counts` numbers). */
export interface RleJson {
  size: [number, number];
  counts: string | number[];
}

/** A polygon list (each polygon x0,y0,x1,y1,…), or an RLE in JSON form. */
export type Segmentation = number[][] | RleJson;

const makeRle = (h: number, w: number, counts: ArrayLike<number>): Rle => ({ h, w, counts: Uint32Array.from(counts) });

/** rleEncode: a binary mask (column-major, index x·h + y) → RLE. */
export function rleEncode(mask: ArrayLike<number>, h: number, w: number): Rle {
  const a = h * w;
  if (mask.length !== a) throw new RangeError(`rleEncode: mask has ${mask.length} pixels, expected h·w = ${h}·${w} = ${a}`);
  const counts: number[] = [];
  let p = 0;
  let c = 0;
  for (let j = 0; j < a; j++) {
    const v = mask[j] ? 1 : 0;
    if (v !== p) {
      counts.push(c);
      c = 0;
      p = v;
    }
    c++;
  }
  counts.push(c);
  return makeRle(h, w, counts);
}

/** rleDecode: RLE → binary mask, column-major (index x·h + y). */
export function rleDecode(r: Rle): Uint8Array {
  const out = new Uint8Array(r.h * r.w);
  let pos = 0;
  let v = 0;
  for (const c of r.counts) {
    if (pos + c > out.length) throw new RangeError(`rleDecode: counts sum past h·w = ${out.length}`);
    if (v) out.fill(1, pos, pos + c);
    pos += c;
    v ^= 1;
  }
  return out;
}

/** Column-major mask → row-major (index y·w + x), the layout of an image. */
export function maskToRowMajor(colMajor: Uint8Array, h: number, w: number): Uint8Array {
  const out = new Uint8Array(h * w);
  for (let x = 0; x < w; x++) for (let y = 0; y < h; y++) out[y * w + x] = colMajor[x * h + y];
  return out;
}

/** Row-major mask (index y·w + x) → column-major, for rleEncode. */
export function maskFromRowMajor(rowMajor: ArrayLike<number>, h: number, w: number): Uint8Array {
  const out = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[x * h + y] = rowMajor[y * w + x] ? 1 : 0;
  return out;
}

/** rleArea: the number of foreground pixels. */
export function rleArea(r: Rle): number {
  let a = 0;
  for (let j = 1; j < r.counts.length; j += 2) a += r.counts[j];
  return a;
}

/** rleToBbox: [x, y, w, h] of the foreground (all zeros for an empty mask), maskApi's rule included
 * (a 1-run that crosses a column boundary widens the box to the full height). */
export function rleToBbox(r: Rle): [number, number, number, number] {
  const { h, w } = r;
  const m = Math.floor(r.counts.length / 2) * 2;
  if (m === 0) return [0, 0, 0, 0];
  let xs = w;
  let ys = h;
  let xe = 0;
  let ye = 0;
  let cc = 0;
  let xp = 0;
  for (let j = 0; j < m; j++) {
    cc += r.counts[j];
    const t = cc - (j % 2);
    const y = t % h;
    const x = (t - y) / h;
    if (j % 2 === 0) xp = x;
    else if (xp < x) {
      ys = 0;
      ye = h - 1;
    }
    xs = Math.min(xs, x);
    xe = Math.max(xe, x);
    ys = Math.min(ys, y);
    ye = Math.max(ye, y);
  }
  return [xs, ys, xe - xs + 1, ye - ys + 1];
}

/** rleMerge: union (or intersection) of masks of one size; masks of different sizes give an empty 0×0 RLE, as maskApi. */
export function rleMerge(rles: readonly Rle[], intersect = false): Rle {
  if (rles.length === 0) return makeRle(0, 0, []);
  let { h, w } = rles[0];
  if (rles.length === 1) return makeRle(h, w, rles[0].counts);
  let cnts = Array.from(rles[0].counts);
  for (let i = 1; i < rles.length; i++) {
    const B = rles[i];
    if (B.h !== h || B.w !== w) {
      h = w = 0;
      cnts = [];
      break;
    }
    const A = cnts;
    const out: number[] = [];
    let ca = A[0];
    let cb = B.counts[0];
    let v = 0;
    let va = 0;
    let vb = 0;
    let a = 1;
    let b = 1;
    let cc = 0;
    let ct = 1;
    while (ct > 0) {
      const c = Math.min(ca, cb);
      cc += c;
      ct = 0;
      ca -= c;
      if (!ca && a < A.length) {
        ca = A[a++];
        va ^= 1;
      }
      ct += ca;
      cb -= c;
      if (!cb && b < B.counts.length) {
        cb = B.counts[b++];
        vb ^= 1;
      }
      ct += cb;
      const vp = v;
      v = intersect ? va & vb : va | vb;
      if (v !== vp || ct === 0) {
        out.push(cc);
        cc = 0;
      }
    }
    cnts = out;
  }
  return makeRle(h, w, cnts);
}

/** rleFrPoly: one polygon (x0,y0,x1,y1,… in pixel coordinates) → RLE, exactly maskApi's raster. */
export function polygonToRle(xy: ArrayLike<number>, h: number, w: number): Rle {
  const k = Math.floor(xy.length / 2);
  const scale = 5;
  // upsample and get discrete points densely along the entire boundary (C casts truncate)
  const x = new Array<number>(k + 1);
  const y = new Array<number>(k + 1);
  for (let j = 0; j < k; j++) x[j] = Math.trunc(scale * xy[2 * j] + 0.5);
  for (let j = 0; j < k; j++) y[j] = Math.trunc(scale * xy[2 * j + 1] + 0.5);
  x[k] = x[0];
  y[k] = y[0];
  const u: number[] = [];
  const v: number[] = [];
  for (let j = 0; j < k; j++) {
    let xs = x[j];
    let xe = x[j + 1];
    let ys = y[j];
    let ye = y[j + 1];
    const dx = Math.abs(xe - xs);
    const dy = Math.abs(ys - ye);
    const flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      [xs, xe] = [xe, xs];
      [ys, ye] = [ye, ys];
    }
    const s = dx >= dy ? (ye - ys) / dx : (xe - xs) / dy;
    if (dx >= dy) {
      for (let d = 0; d <= dx; d++) {
        const t = flip ? dx - d : d;
        u.push(t + xs);
        v.push(Math.trunc(ys + s * t + 0.5));
      }
    } else {
      for (let d = 0; d <= dy; d++) {
        const t = flip ? dy - d : d;
        v.push(t + ys);
        u.push(Math.trunc(xs + s * t + 0.5));
      }
    }
  }
  // get points along the y-boundary and downsample
  const bx: number[] = [];
  const by: number[] = [];
  for (let j = 1; j < u.length; j++) {
    if (u[j] === u[j - 1]) continue;
    let xd = u[j] < u[j - 1] ? u[j] : u[j] - 1;
    xd = (xd + 0.5) / scale - 0.5;
    if (Math.floor(xd) !== xd || xd < 0 || xd > w - 1) continue;
    let yd = v[j] < v[j - 1] ? v[j] : v[j - 1];
    yd = (yd + 0.5) / scale - 0.5;
    if (yd < 0) yd = 0;
    else if (yd > h) yd = h;
    yd = Math.ceil(yd);
    bx.push(xd);
    by.push(yd);
  }
  // the RLE from the y-boundary points: sorted flat indices, differenced, zero runs folded
  const a = bx.map((xx, j) => xx * h + by[j]);
  a.push(h * w);
  a.sort((p, q) => p - q);
  let p = 0;
  for (let j = 0; j < a.length; j++) {
    const t = a[j];
    a[j] -= p;
    p = t;
  }
  const b: number[] = [a[0]];
  let j = 1;
  while (j < a.length) {
    if (a[j] > 0) b.push(a[j++]);
    else {
      j++;
      if (j < a.length) b[b.length - 1] += a[j++];
    }
  }
  return makeRle(h, w, b);
}

/** rleFrBbox: an [x, y, w, h] box → RLE, through the polygon (x,y),(x,y+h),(x+w,y+h),(x+w,y) as maskApi. */
export function bboxToRle(bb: readonly number[], h: number, w: number): Rle {
  const [xs, ys] = bb;
  const xe = xs + bb[2];
  const ye = ys + bb[3];
  return polygonToRle([xs, ys, xs, ye, xe, ye, xe, ys], h, w);
}

/** rleToString: COCO's compressed form (LEB128-like, 6 bits a char from '0'; counts after the third delta-coded against the one two before). */
export function rleToString(r: Rle): string {
  let s = '';
  const c0 = r.counts;
  for (let i = 0; i < c0.length; i++) {
    let x = c0[i];
    if (i > 2) x -= c0[i - 2];
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x = Math.floor(x / 32); // arithmetic shift, also for negative deltas
      more = c & 0x10 ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      s += String.fromCharCode(c + 48);
    }
  }
  return s;
}

/** rleFrString: the compressed string form → RLE of size h×w. Throws on a character outside '0'..'o'. */
export function rleFromString(s: string, h: number, w: number): Rle {
  const cnts: number[] = [];
  let p = 0;
  while (p < s.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= s.length) throw new RangeError(`rleFromString: the string ends inside a count`);
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new RangeError(`rleFromString: character '${s[p]}' at ${p} is outside the RLE alphabet '0'..'o'`);
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p++;
      k++;
      if (!more && c & 0x10) x -= 2 ** (5 * k); // sign extension
    }
    if (cnts.length > 2) x += cnts[cnts.length - 2];
    cnts.push(x >>> 0);
  }
  return makeRle(h, w, cnts);
}

/** An RLE in JSON form (compressed or not) → Rle. */
export function rleFromJson(j: RleJson): Rle {
  const [h, w] = j.size;
  return typeof j.counts === 'string' ? rleFromString(j.counts, h, w) : makeRle(h, w, j.counts);
}

/** An Rle → COCO's compressed JSON form {size: [h, w], counts}. */
export const rleToJson = (r: Rle): { size: [number, number]; counts: string } => ({ size: [r.h, r.w], counts: rleToString(r) });

/**
 * pycocotools' annToRLE: polygons are rasterised one by one and merged (union); an RLE (compressed or
 * uncompressed) is taken as it is, with its own size.
 */
export function segmentationToRle(segm: Segmentation, h: number, w: number): Rle {
  if (Array.isArray(segm)) return rleMerge(segm.map((poly) => polygonToRle(poly, h, w)));
  return rleFromJson(segm);
}

/** bbIou: IoU of [x, y, w, h] boxes, D×G row-major (detection rows); for a crowd gt the union is the detection's area. */
export function bboxIou(dt: readonly (readonly number[])[], gt: readonly (readonly number[])[], iscrowd: readonly boolean[]): Float64Array {
  const D = dt.length;
  const G = gt.length;
  const o = new Float64Array(D * G);
  for (let g = 0; g < G; g++) {
    const Gb = gt[g];
    const ga = Gb[2] * Gb[3];
    for (let d = 0; d < D; d++) {
      const Db = dt[d];
      const da = Db[2] * Db[3];
      const iw = Math.min(Db[2] + Db[0], Gb[2] + Gb[0]) - Math.max(Db[0], Gb[0]);
      if (iw <= 0) continue;
      const ih = Math.min(Db[3] + Db[1], Gb[3] + Gb[1]) - Math.max(Db[1], Gb[1]);
      if (ih <= 0) continue;
      const i = iw * ih;
      o[d * G + g] = i / (iscrowd[g] ? da : da + ga - i);
    }
  }
  return o;
}

/** rleIou: mask IoU, D×G row-major (detection rows); crowd gt: intersection / area(dt); masks of different sizes: −1. */
export function rleIou(dt: readonly Rle[], gt: readonly Rle[], iscrowd: readonly boolean[]): Float64Array {
  const D = dt.length;
  const G = gt.length;
  // the box test first, as maskApi: only pairs whose boxes overlap are scanned
  const o = bboxIou(dt.map(rleToBbox), gt.map(rleToBbox), iscrowd);
  for (let g = 0; g < G; g++) {
    const B = gt[g];
    for (let d = 0; d < D; d++) {
      if (!(o[d * G + g] > 0)) continue;
      const A = dt[d];
      if (A.h !== B.h || A.w !== B.w) {
        o[d * G + g] = -1;
        continue;
      }
      let ca = A.counts[0];
      let cb = B.counts[0];
      let va = 0;
      let vb = 0;
      let a = 1;
      let b = 1;
      let inter = 0;
      let union = 0;
      let ct = 1;
      while (ct > 0) {
        const c = Math.min(ca, cb);
        if (va || vb) {
          union += c;
          if (va && vb) inter += c;
        }
        ct = 0;
        ca -= c;
        if (!ca && a < A.counts.length) {
          ca = A.counts[a++];
          va ^= 1;
        }
        ct += ca;
        cb -= c;
        if (!cb && b < B.counts.length) {
          cb = B.counts[b++];
          vb ^= 1;
        }
        ct += cb;
      }
      if (inter === 0) union = 1;
      else if (iscrowd[g]) union = rleArea(A);
      o[d * G + g] = inter / union;
    }
  }
  return o;
}
