// The embedded long-tailed instance-segmentation set: LVIS-format train and test splits of
// procedural objects (a shape × a colour × a texture: "red striped disc"), drawn in memory from a
// seed, so detection tasks run without ../shared.
// - Long tail by LVIS's definitions on training image counts (r 1–10 images, c 11–100, f > 100),
//   with LVIS v1's share of categories per group (337 / 461 / 405 of 1,203); `frequency`,
//   `image_count` and `instance_count` are counted from the generated split, not assumed. The
//   test split is near balanced (every category in ≥ 6 test images) so AP_r means something.
// - Each image: 1–5 instances of 12–60 px on a noisy, shaded background with clutter (lines and
//   blobs in any colour); instances overlap in a random depth order but each keeps ≥ 60% of itself
//   visible. Masks are exact: the visible pixels, painted from the mask itself. An unoccluded
//   polygon shape is stored as its polygon (its raster by pycocotools' rule is the painted mask);
//   rings and occluded instances as compressed RLEs; boxes are the visible mask's extent.
// - Federated like LVIS: about half of the categories absent from an image are listed in its
//   neg_category_ids; not_exhaustive_category_ids is empty (every instance is annotated).
// Deterministic: DataRng keyed by (seed, STREAMS.syntheticLvis, split, image); browser-safe.
import { parseCocoDataset, type CocoImage } from './coco.js';
import { DataError } from './errors.js';
import type { InstanceSet } from './instance-sets.js';
import { polygonToRle, rleArea, rleDecode, rleEncode, rleMerge, rleToBbox, rleToJson } from './masks.js';
import { DataRng, STREAMS, shuffleInPlace } from './rng.js';

export const SYNTHETIC_SHAPES = ['disc', 'square', 'triangle', 'diamond', 'ellipse', 'cross', 'star', 'ring', 'hexagon'] as const;
export const SYNTHETIC_TEXTURES = ['plain', 'striped', 'checkered', 'dotted'] as const;
export const SYNTHETIC_COLOURS: Readonly<Record<string, readonly [number, number, number]>> = {
  red: [220, 40, 40],
  green: [40, 170, 60],
  blue: [40, 70, 220],
  yellow: [235, 210, 40],
  magenta: [200, 50, 200],
  cyan: [40, 200, 210],
  orange: [245, 130, 30],
};

export interface SyntheticLvisOptions {
  seed?: number;
  /** Default 30, at most shapes × colours × textures (252). */
  numCategories?: number;
  /** Default 600: the r/c/f definitions hold from about this size; a smaller set scales every count down. */
  trainImages?: number;
  /** Default 150. */
  testImages?: number;
  /** Typical image side (default 128); each side varies in ±12.5%. */
  size?: number;
}

interface CategoryLook {
  shape: (typeof SYNTHETIC_SHAPES)[number];
  colour: string;
  texture: (typeof SYNTHETIC_TEXTURES)[number];
}

/** The vocabulary: every look in one fixed order (independent of the seed), so category k is always the same object. */
export function syntheticLvisCategories(numCategories = 30): (CategoryLook & { id: number; name: string })[] {
  const colours = Object.keys(SYNTHETIC_COLOURS);
  const all = SYNTHETIC_SHAPES.flatMap((shape) => colours.flatMap((colour) => SYNTHETIC_TEXTURES.map((texture) => ({ shape, colour, texture }))));
  if (!Number.isInteger(numCategories) || numCategories < 1 || numCategories > all.length) throw new RangeError(`syntheticLvis: numCategories must be an integer in [1, ${all.length}], got ${numCategories}`);
  const order = shuffleInPlace(Int32Array.from(all, (_, i) => i), new DataRng(STREAMS.syntheticLvis));
  return Array.from(order.subarray(0, numCategories), (k, i) => {
    const look = all[k];
    return { id: i + 1, name: [look.colour, look.texture === 'plain' ? '' : look.texture, look.shape].filter(Boolean).join(' '), ...look };
  });
}

/** LVIS v1's categories per frequency group (rare, common, frequent). */
const LVIS_V1_GROUPS = [337, 461, 405];
/** Instances per image 1..5 (mean 3.5): enough pairs for > 100 images of each frequent category at 600 images. */
const INSTANCES_PER_IMAGE = [0.08, 0.14, 0.22, 0.28, 0.28];
/** Share of a split's instance slots that go to distinct (image, category) pairs; the rest are second instances. */
const PAIR_SHARE = 0.9;
/** Test images per category, as a share of the test split, per group (at least 6). */
const TEST_SHARE = [0.055, 0.07, 0.11];
const MIN_SCALE = 12;
const MAX_SCALE = 60;
const MIN_VISIBLE = 0.6;

/** Largest-remainder split of n categories in LVIS v1's r/c/f proportions. */
function groupSizes(n: number): number[] {
  const total = LVIS_V1_GROUPS.reduce((a, b) => a + b, 0);
  const quota = LVIS_V1_GROUPS.map((g) => (n * g) / total);
  const sizes = quota.map(Math.floor);
  const order = [0, 1, 2].sort((a, b) => quota[b] - sizes[b] - (quota[a] - sizes[a]));
  for (let k = 0; sizes.reduce((a, b) => a + b, 0) < n; k++) sizes[order[k]]++;
  return sizes;
}

/** n values from lo to hi, log-spaced, rounded. */
const logSpaced = (n: number, lo: number, hi: number): number[] => Array.from({ length: n }, (_, i) => Math.round(lo * (hi / lo) ** (n === 1 ? 0.5 : i / (n - 1))));

/** Draws each image's instance count. */
function capacities(n: number, rng: DataRng): number[] {
  return Array.from({ length: n }, () => {
    let u = rng.random();
    let k = 0;
    while (k < INSTANCES_PER_IMAGE.length - 1 && u >= INSTANCES_PER_IMAGE[k]) u -= INSTANCES_PER_IMAGE[k++];
    return k + 1;
  });
}

/**
 * The categories of each image: category c goes to targets[c] distinct images drawn (without
 * replacement) in proportion to their free slots, largest targets first; free slots left take a
 * second instance of a category already there (an empty image: one of `fill`).
 */
function assign(targets: readonly number[], caps: readonly number[], fill: readonly number[], rng: DataRng): number[][] {
  const free = [...caps];
  const cats: number[][] = caps.map(() => []);
  const order = targets.map((_, c) => c).sort((a, b) => targets[b] - targets[a] || a - b);
  for (const c of order) {
    // Efraimidis–Spirakis: key u^(1/w), the largest keys are a weighted sample without replacement
    const keyed = free.flatMap((f, i) => (f > 0 ? [[rng.random() ** (1 / f), i]] : [])).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    for (const [, i] of keyed.slice(0, targets[c])) {
      cats[i].push(c);
      free[i]--;
    }
  }
  return cats.map((l, i) => {
    if (l.length === 0) l.push(fill[rng.below(fill.length)]);
    const present = [...l];
    for (let k = l.length; k < caps[i]; k++) l.push(present[rng.below(present.length)]);
    return l;
  });
}

/** A shape's outline (x, y pairs) around (cx, cy), radius r, turned by a; rings give their outer and inner circles. */
function outline(shape: CategoryLook['shape'], cx: number, cy: number, r: number, a: number): { poly: number[]; hole?: number[] } {
  const polar = (radii: readonly number[], start = -Math.PI / 2) => radii.map((q, i) => [q * Math.cos(start + (2 * Math.PI * i) / radii.length), q * Math.sin(start + (2 * Math.PI * i) / radii.length)]);
  const circle = (q: number) => polar(Array(28).fill(q));
  const h = 0.33 * r;
  const local: Record<CategoryLook['shape'], number[][]> = {
    disc: circle(r),
    ring: circle(r),
    square: polar([r, r, r, r], -Math.PI / 4),
    triangle: polar([r, r, r]),
    hexagon: polar(Array(6).fill(r)),
    star: polar(Array.from({ length: 10 }, (_, i) => (i % 2 ? 0.45 * r : r))),
    ellipse: circle(r).map(([x, y]) => [x, 0.55 * y]),
    diamond: [[0, -r], [0.6 * r, 0], [0, r], [-0.6 * r, 0]],
    cross: [[-h, -r], [h, -r], [h, -h], [r, -h], [r, h], [h, h], [h, r], [-h, r], [-h, h], [-r, h], [-r, -h], [-h, -h]],
  };
  const place = (pts: number[][]) => pts.flatMap(([x, y]) => [cx + x * Math.cos(a) - y * Math.sin(a), cy + x * Math.sin(a) + y * Math.cos(a)].map((v) => Math.round(v * 100) / 100));
  return { poly: place(local[shape]), hole: shape === 'ring' ? place(circle(0.55 * r)) : undefined };
}

interface Placed {
  cat: number;
  cx: number;
  cy: number;
  r: number;
  angle: number;
  poly: number[];
  ring: boolean;
  /** Column-major (x·h + y) full mask and its area. */
  mask: Uint8Array;
  area: number;
  /** The pixel columns and rows the mask can touch (inclusive), for loops that skip the rest. */
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

/** Calls f(j) for each column-major pixel index j of p's box. */
function forBox(p: Placed, height: number, f: (j: number) => void): void {
  for (let x = p.x0; x <= p.x1; x++) for (let j = x * height + p.y0, end = x * height + p.y1; j <= end; j++) f(j);
}

/** Which instance of the back-to-front list owns each pixel (−1: none), column-major, and how many pixels each keeps. */
function owners(depth: readonly Placed[], n: number, height: number): { own: Int8Array; visible: number[] } {
  const own = new Int8Array(n).fill(-1);
  depth.forEach((p, k) => forBox(p, height, (j) => p.mask[j] && (own[j] = k)));
  const visible = depth.map((p, k) => {
    let v = 0;
    forBox(p, height, (j) => own[j] === k && v++);
    return v;
  });
  return { own, visible };
}

interface DrawnImage {
  width: number;
  height: number;
  rgb: Uint8Array;
  instances: { cat: number; segmentation: number[][] | { size: [number, number]; counts: string }; bbox: [number, number, number, number]; area: number }[];
}

/** Places the categories (rarest first, so they always fit) and paints the image. */
function drawImage(cats: readonly number[], rank: readonly number[], looks: readonly CategoryLook[], size: number, rng: DataRng): DrawnImage {
  const width = Math.round(size * (0.875 + 0.25 * rng.random()));
  const height = Math.round(size * (0.875 + 0.25 * rng.random()));
  const n = width * height;
  let depth: Placed[] = [];
  for (const cat of [...cats].sort((a, b) => rank[a] - rank[b] || a - b)) {
    let scale = MIN_SCALE + (Math.min(MAX_SCALE, 0.5 * Math.min(width, height)) - MIN_SCALE) * rng.random();
    for (let attempt = 0; attempt < 30; attempt++, scale = Math.max(MIN_SCALE, 0.9 * scale)) {
      const r = scale / 2;
      const cx = r + (width - 2 * r) * rng.random();
      const cy = r + (height - 2 * r) * rng.random();
      const angle = 2 * Math.PI * rng.random();
      const { poly, hole } = outline(looks[cat].shape, cx, cy, r, angle);
      let rle = polygonToRle(poly, height, width);
      if (hole) rle = rleMerge([rle, rleEncode(rleDecode(polygonToRle(hole, height, width)).map((v) => 1 - v), height, width)], true);
      const area = rleArea(rle);
      if (area === 0) continue;
      const box = { x0: Math.max(0, Math.floor(cx - r - 1)), x1: Math.min(width - 1, Math.ceil(cx + r + 1)), y0: Math.max(0, Math.floor(cy - r - 1)), y1: Math.min(height - 1, Math.ceil(cy + r + 1)) };
      const trial = [...depth];
      trial.splice(rng.below(depth.length + 1), 0, { cat, cx, cy, r, angle, poly, ring: Boolean(hole), mask: rleDecode(rle), area, ...box });
      const { visible } = owners(trial, n, height);
      if (trial.every((p, k) => visible[k] >= MIN_VISIBLE * p.area)) {
        depth = trial;
        break;
      }
    }
  }
  const rgb = background(width, height, rng);
  for (const p of depth) paint(rgb, width, height, p, looks[p.cat], rng);
  const { own } = owners(depth, n, height);
  const instances = depth.map((p, k) => {
    const visible = new Uint8Array(n);
    forBox(p, height, (j) => own[j] === k && (visible[j] = 1));
    const rle = rleEncode(visible, height, width);
    const area = rleArea(rle);
    // unoccluded polygons stay polygons: pycocotools rasterises them to exactly the painted pixels
    const segmentation = !p.ring && area === p.area ? [p.poly] : rleToJson(rle);
    return { cat: p.cat, segmentation, bbox: rleToBbox(rle), area };
  });
  return { width, height, rgb, instances };
}

const clamp255 = (v: number) => Math.max(0, Math.min(255, Math.round(v)));

/** A shaded, blotchy, noisy background with clutter (thin lines and small blobs of any colour); HWC. */
function background(width: number, height: number, rng: DataRng): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  const grey = 70 + 100 * rng.random();
  const tint = [0, 1, 2].map(() => grey + 40 * (rng.random() - 0.5));
  const gx = 50 * (rng.random() - 0.5), gy = 50 * (rng.random() - 0.5);
  // value noise on a coarse 9×9 grid, bilinearly interpolated
  const G = 9;
  const grid = Array.from({ length: G * G }, () => 40 * (rng.random() - 0.5));
  const cell = (t: number, n: number) => {
    const u = (t / n) * (G - 1);
    const i = Math.min(G - 2, Math.floor(u));
    return [i, u - i];
  };
  const xs = Array.from({ length: width }, (_, x) => cell(x, width));
  for (let y = 0; y < height; y++) {
    const [j, fv] = cell(y, height);
    const row = grid.slice(j * G, j * G + G).map((a, i) => (1 - fv) * a + fv * grid[(j + 1) * G + i]);
    for (let x = 0; x < width; x++) {
      const [i, fu] = xs[x];
      const shade = gx * (x / width - 0.5) + gy * (y / height - 0.5) + (1 - fu) * row[i] + fu * row[i + 1];
      const u32 = rng.nextU32(); // one draw, three 10-bit noises
      for (let c = 0; c < 3; c++) rgb[(y * width + x) * 3 + c] = clamp255(tint[c] + shade + 28 * (((u32 >>> (10 * c)) & 1023) / 1023 - 0.5));
    }
  }
  const items = 4 + rng.below(7);
  for (let k = 0; k < items; k++) {
    const colour = [0, 1, 2].map(() => 255 * rng.random());
    const x0 = width * rng.random(), y0 = height * rng.random();
    if (rng.random() < 0.5) {
      // a thin line, 8–40 px long
      const len = 8 + 32 * rng.random(), a = 2 * Math.PI * rng.random(), thick = 0.6 + 0.6 * rng.random();
      for (let t = 0; t <= len; t += 0.5) {
        for (let o = -thick; o <= thick; o += 0.5) {
          const x = Math.floor(x0 + t * Math.cos(a) - o * Math.sin(a)), y = Math.floor(y0 + t * Math.sin(a) + o * Math.cos(a));
          if (x >= 0 && y >= 0 && x < width && y < height) rgb.set(colour.map(clamp255), (y * width + x) * 3);
        }
      }
    } else {
      // a blob of radius 2–4.5 px, below the smallest object
      const rad = 2 + 2.5 * rng.random();
      for (let y = Math.floor(y0 - rad); y <= y0 + rad; y++) {
        for (let x = Math.floor(x0 - rad); x <= x0 + rad; x++) {
          if (x >= 0 && y >= 0 && x < width && y < height && (x + 0.5 - x0) ** 2 + (y + 0.5 - y0) ** 2 <= rad * rad) rgb.set(colour.map(clamp255), (y * width + x) * 3);
        }
      }
    }
  }
  return rgb;
}

/** Paints an instance's full mask with its colour and texture (in the object's own turned frame), shaded and noisy. */
function paint(rgb: Uint8Array, width: number, height: number, p: Placed, look: CategoryLook, rng: DataRng): void {
  const main = SYNTHETIC_COLOURS[look.colour];
  const dark = main.map((v) => 0.4 * v);
  const light = main.map((v) => v + 0.75 * (255 - v));
  const period = Math.max(4, p.r / 2);
  const cos = Math.cos(p.angle), sin = Math.sin(p.angle);
  for (let x = p.x0; x <= p.x1; x++) {
    for (let y = p.y0; y <= p.y1; y++) {
      if (!p.mask[x * height + y]) continue;
      const dx = x + 0.5 - p.cx, dy = y + 0.5 - p.cy;
      const u = dx * cos + dy * sin, v = -dx * sin + dy * cos;
      const half = period / 2;
      let c: readonly number[] = main;
      if (look.texture === 'striped' && Math.floor(u / half) & 1) c = dark;
      else if (look.texture === 'checkered' && (Math.floor(u / half) + Math.floor(v / half)) & 1) c = dark;
      else if (look.texture === 'dotted') {
        const du = u - period * Math.round(u / period), dv = v - period * Math.round(v / period);
        if (du * du + dv * dv < (0.3 * period) ** 2) c = light;
      }
      const shade = 1 + (0.12 * u) / p.r;
      const u32 = rng.nextU32();
      for (let k = 0; k < 3; k++) rgb[(y * width + x) * 3 + k] = clamp255(c[k] * shade + 16 * (((u32 >>> (10 * k)) & 1023) / 1023 - 0.5));
    }
  }
}

/** An in-memory InstanceSet of drawn images: pixels are the stored bytes / 255. */
function memorySet(images: DrawnImage[], firstId: number, firstAnnId: number, file: string, categories: object[], numCategories: number, rng: DataRng): { set: InstanceSet; annotations: number } {
  const byId = new Map<number, DrawnImage>();
  let annId = firstAnnId;
  const annotations: object[] = [];
  const jsonImages = images.map((im, i) => {
    const id = firstId + i;
    byId.set(id, im);
    const present = new Set(im.instances.map((x) => x.cat));
    for (const x of im.instances) annotations.push({ id: annId++, image_id: id, category_id: x.cat + 1, bbox: x.bbox, area: x.area, segmentation: x.segmentation });
    const absent = Array.from({ length: numCategories }, (_, c) => c).filter((c) => !present.has(c));
    return { id, width: im.width, height: im.height, file_name: `${String(id).padStart(12, '0')}.png`, neg_category_ids: absent.filter(() => rng.random() < 0.5).map((c) => c + 1), not_exhaustive_category_ids: [] };
  });
  const dataset = parseCocoDataset({ images: jsonImages, annotations, categories }, file);
  const pixels = async (image: CocoImage): Promise<Float32Array> => {
    const im = byId.get(image.id);
    if (!im) throw new DataError(file, `image ${image.id} is not one of the set's images`);
    const plane = im.width * im.height;
    const out = new Float32Array(3 * plane);
    for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[c * plane + p] = im.rgb[3 * p + c] / 255;
    return out;
  };
  return { set: { dataset, pixels }, annotations: annotations.length };
}

/** Per category: the number of images holding it and its number of instances. */
function counts(images: readonly DrawnImage[], numCategories: number): { images: number[]; instances: number[] } {
  const imageCount = new Array<number>(numCategories).fill(0);
  const instanceCount = new Array<number>(numCategories).fill(0);
  for (const im of images) {
    for (const c of new Set(im.instances.map((x) => x.cat))) imageCount[c]++;
    for (const x of im.instances) instanceCount[x.cat]++;
  }
  return { images: imageCount, instances: instanceCount };
}

/** LVIS's frequency of a category from its training image count. */
export const lvisFrequency = (imageCount: number): 'r' | 'c' | 'f' => (imageCount <= 10 ? 'r' : imageCount <= 100 ? 'c' : 'f');

/** The embedded LVIS-like set; see the file's head. */
export function syntheticLvis(opts: SyntheticLvisOptions = {}): { train: InstanceSet; test: InstanceSet } {
  const { seed = 0, numCategories = 30, trainImages = 600, testImages = 150, size = 128 } = opts;
  if (!Number.isSafeInteger(seed) || seed < 0) throw new RangeError(`syntheticLvis: seed must be a non-negative integer, got ${seed}`);
  for (const [k, v] of Object.entries({ trainImages, testImages, size })) if (!Number.isInteger(v) || v < 1) throw new RangeError(`syntheticLvis: ${k} must be a positive integer, got ${v}`);
  if (size < 32) throw new RangeError(`syntheticLvis: size must be at least 32 (objects are ${MIN_SCALE} px or more), got ${size}`);
  const looks = syntheticLvisCategories(numCategories);
  const key = (split: number, stage: number, index = 0) => new DataRng(seed, STREAMS.syntheticLvis, split, stage, index);
  // which categories are rare, common, frequent (by position in a seeded permutation)
  const [nr, nc, nf] = groupSizes(numCategories);
  const perm = Array.from(shuffleInPlace(Int32Array.from(looks, (_, i) => i), key(0, 0)));
  const group = new Array<number>(numCategories);
  perm.forEach((c, k) => (group[c] = k < nr ? 0 : k < nr + nc ? 1 : 2));
  // training image targets: r spread over 1..10, c over 13..90, f share the slots left (≥ 115 each);
  // a split under 600 images scales them all down
  const shrink = Math.min(1, trainImages / 600);
  const trainCaps = capacities(trainImages, key(0, 1));
  const fixed = [logSpaced(nr, 1, 10), logSpaced(nc, 13, 90)];
  const budget = (PAIR_SHARE * trainCaps.reduce((a, b) => a + b, 0)) / shrink - [...fixed[0], ...fixed[1]].reduce((a, b) => a + b, 0);
  const byGroup = [...fixed, headTargets(nf, budget)];
  const trainTargets = new Array<number>(numCategories);
  const next = [0, 0, 0];
  for (const c of perm) trainTargets[c] = Math.max(1, Math.min(trainImages, Math.round(byGroup[group[c]][next[group[c]]++] * shrink)));
  // an image left without a category (too few targets for its slots) takes a frequent one
  const frequent = perm.filter((c) => group[c] === 2);
  const fill = frequent.length ? frequent : perm;
  const testTargets = group.map((g) => Math.min(testImages, Math.max(6, Math.round(TEST_SHARE[g] * testImages))));
  const splits = [
    { targets: trainTargets, caps: trainCaps },
    { targets: testTargets, caps: capacities(testImages, key(1, 1)) },
  ].map(({ targets, caps }, split) => assign(targets, caps, fill, key(split, 3)).map((l, i) => drawImage(l, trainTargets, looks, size, key(split, 4, i))));
  // both files carry the training counts, which define the frequency groups
  const own = counts(splits[0], numCategories);
  const categories = looks.map((look, c) => ({ id: look.id, name: look.name, supercategory: look.shape, frequency: lvisFrequency(own.images[c]), image_count: own.images[c], instance_count: own.instances[c] }));
  const train = memorySet(splits[0], 1, 1, 'synthetic-lvis-train.json', categories, numCategories, key(0, 5));
  const test = memorySet(splits[1], trainImages + 1, 1 + train.annotations, 'synthetic-lvis-test.json', categories, numCategories, key(1, 5));
  return { train: train.set, test: test.set };
}

/** nf frequent targets, geometric from 115 up, summing to about `budget` (all 115 when it is short). */
function headTargets(nf: number, budget: number): number[] {
  const lo = 115;
  if (nf === 0) return [];
  if (nf === 1 || budget <= lo * nf) return Array(nf).fill(lo);
  let a = 1, b = 4;
  for (let k = 0; k < 50; k++) {
    const q = (a + b) / 2;
    const sum = Array.from({ length: nf }, (_, i) => lo * q ** i).reduce((s, v) => s + v, 0);
    if (sum > budget) b = q;
    else a = q;
  }
  return Array.from({ length: nf }, (_, i) => Math.round(lo * a ** i));
}
