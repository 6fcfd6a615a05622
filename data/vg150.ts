// Visual Genome VG150 (the scene-graph split of Xu et al. 2017), browser-safe part: from the arrays of
// VG-SGG-with-attri.h5, the dictionary VG-SGG-dicts-with-attri.json and image_data.json to
// per-image ground truth, as PySGG's VGDataset / load_graphs does it (SHTUPLUS/PySGG eb54749,
// pysgg/data/datasets/visual_genome.py):
// - split: 0 = train (the first `numValImages` of it are val), 2 = test; images without boxes are
//   dropped, and, with filterEmptyRels (default), images without relations;
// - boxes_1024 are (cx, cy, w, h) at BOX_SCALE = 1024, converted in the file's integer type
//   (x1 = trunc(cx − w/2), x2 = x1 + w), then scaled by max(width, height) / 1024 and clipped to the
//   image (x ≤ width − 1, y ≤ height − 1), as get_groundtruth + clip_to_image(remove_empty=False);
// - relations are (subject, object, predicate) with entity indices local to the image;
// - filterNonOverlap (default false: REQUIRE_BOX_OVERLAP is false in PySGG's BGNN config) keeps
//   only training relations whose boxes intersect, dropping images left without any;
// - duplicate (subject, object) pairs: PySGG keeps one random predicate per pair at training time —
//   `sampleDuplicateRelations` does that with a seeded generator.
// The four corrupted images PySGG skips in image_data.json (1592, 1722, 4616, 4617) are skipped here.
// Every inconsistency is an error naming the file, the image and the entry.

import { DataError } from './errors.js';
import { DataRng } from './rng.js';

export const VG150_H5_FILE = 'VG-SGG-with-attri.h5';
export const VG150_DICTS_FILE = 'VG-SGG-dicts-with-attri.json';
export const VG150_IMAGE_DATA_FILE = 'image_data.json';
export const VG150_BOX_SCALE = 1024;
/** image_id of the images that image_data.json lists but the HDF5 file does not (PySGG load_image_filenames). */
export const VG150_CORRUPTED_IMAGE_IDS: readonly number[] = [1592, 1722, 4616, 4617];
/** The HDF5 datasets the loader reads. */
export const VG150_H5_DATASETS = ['split', 'img_to_first_box', 'img_to_last_box', 'img_to_first_rel', 'img_to_last_rel', 'labels', 'relationships', 'predicates'] as const;

export interface Vg150Dicts {
  /** Object class names, index 0 = '__background__'. */
  objects: string[];
  /** Predicate names, index 0 = '__background__'. */
  predicates: string[];
  attributes: string[];
  objectCounts?: Record<string, number>;
  predicateCounts?: Record<string, number>;
}

/** Parses VG-SGG-dicts-with-attri.json: names sorted by their index, background added at 0 (PySGG load_info). */
export function parseVg150Dicts(json: unknown, file = VG150_DICTS_FILE): Vg150Dicts {
  if (typeof json !== 'object' || json === null) throw new DataError(file, 'expected a JSON object');
  const j = json as Record<string, unknown>;
  const names = (key: string, required: boolean): string[] => {
    const map = j[key];
    if (map === undefined && !required) return ['__background__'];
    if (typeof map !== 'object' || map === null) throw new DataError(file, `missing entry '${key}'`);
    const entries = Object.entries(map as Record<string, unknown>);
    const out: string[] = new Array(entries.length + 1);
    out[0] = '__background__';
    for (const [name, idx] of entries) {
      if (!Number.isInteger(idx) || (idx as number) < 1 || (idx as number) > entries.length) throw new DataError(file, `${key}['${name}'] = ${String(idx)} is not an index in 1..${entries.length}`);
      if (out[idx as number] !== undefined) throw new DataError(file, `${key}: index ${String(idx)} is used twice ('${out[idx as number]}', '${name}')`);
      out[idx as number] = name;
    }
    return out;
  };
  return {
    objects: names('label_to_idx', true),
    predicates: names('predicate_to_idx', true),
    attributes: names('attribute_to_idx', false),
    objectCounts: j.object_count as Record<string, number> | undefined,
    predicateCounts: j.predicate_count as Record<string, number> | undefined,
  };
}

export interface Vg150ImageInfo {
  image_id: number;
  width: number;
  height: number;
  url?: string;
}

/** Parses image_data.json (an array of {image_id, width, height, ...}), skipping PySGG's four corrupted images. */
export function parseVg150ImageData(json: unknown, file = VG150_IMAGE_DATA_FILE): Vg150ImageInfo[] {
  if (!Array.isArray(json)) throw new DataError(file, 'expected a JSON array of images');
  const out: Vg150ImageInfo[] = [];
  json.forEach((e, i) => {
    const im = e as Record<string, unknown>;
    if (typeof im !== 'object' || im === null || !Number.isInteger(im.image_id)) throw new DataError(file, `entry ${i} has no integer image_id`);
    if (VG150_CORRUPTED_IMAGE_IDS.includes(im.image_id as number)) return;
    const w = im.width, h = im.height;
    if (!(typeof w === 'number' && typeof h === 'number' && w > 0 && h > 0)) throw new DataError(file, `image ${String(im.image_id)} (entry ${i}) has no positive width/height`);
    out.push({ image_id: im.image_id as number, width: w, height: h, url: typeof im.url === 'string' ? im.url : undefined });
  });
  return out;
}

/** The arrays of VG-SGG-with-attri.h5 (row-major; labels / predicates flattened from their (n, 1) shape). */
export interface Vg150Roidb {
  split: ArrayLike<number>;
  img_to_first_box: ArrayLike<number>;
  img_to_last_box: ArrayLike<number>;
  img_to_first_rel: ArrayLike<number>;
  img_to_last_rel: ArrayLike<number>;
  /** boxes_{boxScale}: (cx, cy, w, h) per box, flat. */
  boxes: ArrayLike<number>;
  /** Whether the boxes dataset has an integer type (PySGG converts to corners in that type). */
  boxesInteger?: boolean;
  labels: ArrayLike<number>;
  /** (subject box, object box) global box rows, flat. */
  relationships: ArrayLike<number>;
  predicates: ArrayLike<number>;
}

export interface Vg150Image {
  /** Row in the HDF5 file (and in image_data.json after the corrupted images are skipped). */
  row: number;
  imageId: number;
  width: number;
  height: number;
  /** xyxy in image pixels, n×4 flat. */
  boxes: Float32Array;
  /** Object classes, 1-based. */
  labels: Int32Array;
  /** (subject, object, predicate) per relation, m×3 flat; entity indices local to the image. */
  relations: Int32Array;
}

export interface Vg150Options {
  split: 'train' | 'val' | 'test';
  /** Use only the first numImages images of the split before the val cut (PySGG num_im, default -1: all). */
  numImages?: number;
  /** The first numValImages training images form val (PySGG default 5000). */
  numValImages?: number;
  filterEmptyRels?: boolean;
  /** Training only: keep relations whose boxes overlap, drop images left without any (default false). */
  filterNonOverlap?: boolean;
  boxScale?: number;
  /** Names the HDF5 file in errors. */
  file?: string;
}

export interface Vg150Split {
  split: 'train' | 'val' | 'test';
  dicts: Vg150Dicts;
  images: Vg150Image[];
}

/** Builds one split's per-image ground truth from the file arrays, checking every entry it uses. */
export function buildVg150Split(roidb: Vg150Roidb, imageData: readonly Vg150ImageInfo[], dicts: Vg150Dicts, options: Vg150Options): Vg150Split {
  const file = options.file ?? VG150_H5_FILE;
  const scale = options.boxScale ?? VG150_BOX_SCALE;
  const numIm = options.numImages ?? -1;
  const numVal = options.numValImages ?? 5000;
  const filterEmpty = options.filterEmptyRels ?? true;
  const filterNonOverlap = (options.filterNonOverlap ?? false) && options.split === 'train';
  const N = roidb.split.length;
  for (const k of ['img_to_first_box', 'img_to_last_box', 'img_to_first_rel', 'img_to_last_rel'] as const) {
    if (roidb[k].length !== N) throw new DataError(file, `${k} has ${roidb[k].length} entries, split has ${N}`);
  }
  if (imageData.length !== N) throw new DataError(file, `${N} images in the HDF5 file but ${imageData.length} in ${VG150_IMAGE_DATA_FILE} (after skipping the 4 corrupted ones)`);
  const numBoxes = roidb.labels.length;
  if (roidb.boxes.length !== numBoxes * 4) throw new DataError(file, `boxes_${scale} has ${roidb.boxes.length / 4} rows, labels has ${numBoxes}`);
  const numRels = roidb.predicates.length;
  if (roidb.relationships.length !== numRels * 2) throw new DataError(file, `relationships has ${roidb.relationships.length / 2} rows, predicates has ${numRels}`);
  const numObj = dicts.objects.length - 1, numPred = dicts.predicates.length - 1;

  const flag = options.split === 'test' ? 2 : 0;
  let index: number[] = [];
  for (let i = 0; i < N; i++) {
    if (roidb.split[i] !== flag || roidb.img_to_first_box[i] < 0) continue;
    if (filterEmpty && roidb.img_to_first_rel[i] < 0) continue;
    index.push(i);
  }
  if (numIm > -1) index = index.slice(0, numIm);
  if (numVal > 0) {
    if (options.split === 'val') index = index.slice(0, numVal);
    else if (options.split === 'train') index = index.slice(numVal);
  }

  const images: Vg150Image[] = [];
  for (const row of index) {
    const info = imageData[row];
    const where = `image ${info.image_id} (row ${row})`;
    const b0 = roidb.img_to_first_box[row], b1 = roidb.img_to_last_box[row];
    if (!(Number.isInteger(b0) && b1 >= b0 && b1 < numBoxes)) throw new DataError(file, `${where}: img_to_first_box/img_to_last_box = ${b0}..${b1} is not a box range in 0..${numBoxes - 1}`);
    const n = b1 - b0 + 1;
    const boxes = new Float32Array(n * 4);
    const corners = new Float64Array(n * 4); // at box scale, for the overlap filter (PySGG filters before scaling)
    const labels = new Int32Array(n);
    const f = Math.max(info.width, info.height) / scale;
    for (let j = 0; j < n; j++) {
      const g = b0 + j;
      const cx = roidb.boxes[4 * g], cy = roidb.boxes[4 * g + 1], w = roidb.boxes[4 * g + 2], h = roidb.boxes[4 * g + 3];
      if (!(w > 0 && h > 0)) throw new DataError(file, `${where}: boxes_${scale}[${g}] (box ${j} of the image) = (cx ${cx}, cy ${cy}, w ${w}, h ${h}) has zero area`);
      if (!(cx >= 0 && cy >= 0)) throw new DataError(file, `${where}: boxes_${scale}[${g}] (box ${j} of the image) has a negative centre (${cx}, ${cy})`);
      let x1 = cx - w / 2, y1 = cy - h / 2;
      if (roidb.boxesInteger) { x1 = Math.trunc(x1); y1 = Math.trunc(y1); }
      const x2 = x1 + w, y2 = y1 + h;
      corners.set([x1, y1, x2, y2], 4 * j);
      boxes[4 * j] = Math.min(Math.max(x1 * f, 0), info.width - 1);
      boxes[4 * j + 1] = Math.min(Math.max(y1 * f, 0), info.height - 1);
      boxes[4 * j + 2] = Math.min(Math.max(x2 * f, 0), info.width - 1);
      boxes[4 * j + 3] = Math.min(Math.max(y2 * f, 0), info.height - 1);
      const c = roidb.labels[g];
      if (!(Number.isInteger(c) && c >= 1 && c <= numObj)) throw new DataError(file, `${where}: labels[${g}] (box ${j} of the image) = ${c} is not an object class in 1..${numObj}`);
      labels[j] = c;
    }
    let rels: number[] = [];
    const r0 = roidb.img_to_first_rel[row], r1 = roidb.img_to_last_rel[row];
    if (r0 >= 0) {
      if (!(Number.isInteger(r0) && r1 >= r0 && r1 < numRels)) throw new DataError(file, `${where}: img_to_first_rel/img_to_last_rel = ${r0}..${r1} is not a relation range in 0..${numRels - 1}`);
      for (let r = r0; r <= r1; r++) {
        const s = roidb.relationships[2 * r] - b0, o = roidb.relationships[2 * r + 1] - b0;
        if (!(s >= 0 && s < n && o >= 0 && o < n)) throw new DataError(file, `${where}: relationships[${r}] = (${roidb.relationships[2 * r]}, ${roidb.relationships[2 * r + 1]}) points at an entity outside the image's boxes ${b0}..${b1}`);
        const p = roidb.predicates[r];
        if (!(Number.isInteger(p) && p >= 1 && p <= numPred)) throw new DataError(file, `${where}: predicates[${r}] = ${p} is not a predicate in 1..${numPred}`);
        rels.push(s, o, p);
      }
    }
    if (filterNonOverlap) {
      const kept: number[] = [];
      for (let k = 0; k < rels.length; k += 3) if (legacyIou(corners, rels[k], rels[k + 1]) > 0) kept.push(rels[k], rels[k + 1], rels[k + 2]);
      if (kept.length === 0) continue;
      rels = kept;
    }
    images.push({ row, imageId: info.image_id, width: info.width, height: info.height, boxes, labels, relations: Int32Array.from(rels) });
  }
  return { split: options.split, dicts, images };
}

function legacyIou(b: Float64Array, i: number, j: number): number {
  const w = Math.max(0, Math.min(b[4 * i + 2], b[4 * j + 2]) - Math.max(b[4 * i], b[4 * j]) + 1);
  const h = Math.max(0, Math.min(b[4 * i + 3], b[4 * j + 3]) - Math.max(b[4 * i + 1], b[4 * j + 1]) + 1);
  const a = (b[4 * i + 2] - b[4 * i] + 1) * (b[4 * i + 3] - b[4 * i + 1] + 1);
  const c = (b[4 * j + 2] - b[4 * j] + 1) * (b[4 * j + 3] - b[4 * j + 1] + 1);
  return (w * h) / (a + c - w * h);
}

/**
 * PySGG's training-time filter_duplicate_rels: for every (subject, object) pair with several
 * predicates keep one drawn uniformly (pairs in order of first appearance).
 */
export function sampleDuplicateRelations(relations: Int32Array, rng: DataRng): Int32Array {
  const byPair = new Map<number, number[]>();
  const order: number[] = [];
  for (let k = 0; k < relations.length; k += 3) {
    const key = relations[k] * 65536 + relations[k + 1];
    let list = byPair.get(key);
    if (!list) { list = []; byPair.set(key, list); order.push(key); }
    list.push(relations[k + 2]);
  }
  const out = new Int32Array(order.length * 3);
  order.forEach((key, i) => {
    const list = byPair.get(key)!;
    out[3 * i] = Math.floor(key / 65536);
    out[3 * i + 1] = key % 65536;
    out[3 * i + 2] = list.length === 1 ? list[0] : list[rng.below(list.length)];
  });
  return out;
}

/** Predicate instance counts of a split (index 0 unused). */
export function vg150PredicateCounts(split: Vg150Split): Int32Array {
  const counts = new Int32Array(split.dicts.predicates.length);
  for (const im of split.images) for (let k = 2; k < im.relations.length; k += 3) counts[im.relations[k]]++;
  return counts;
}
