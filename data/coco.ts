// COCO instances and LVIS annotation files, and COCO-format detection results, parsed and checked
// (browser-safe: the text or the parsed JSON comes in; data/node-coco.ts reads files). Every error is
// one line naming the file and the entry: `instances_val2017.json: annotations[12] (id 345):
// category_id 999 is not in categories`.
//
// LVIS is COCO's format plus per-category `frequency` ('r' | 'c' | 'f'), `image_count`,
// `instance_count`, and per-image `neg_category_ids` / `not_exhaustive_category_ids`; its
// annotations carry no `iscrowd`.
import { DataError } from './errors.js';
import { rleToBbox, segmentationToRle, type RleJson, type Segmentation } from './masks.js';

export interface CocoImage {
  id: number;
  width: number;
  height: number;
  fileName?: string;
  /** LVIS v1 names no file: its image lives at coco_url's last two segments (split/file). */
  cocoUrl?: string;
  /** LVIS: categories verified absent from the image. */
  negCategoryIds: number[];
  /** LVIS: categories present but not exhaustively annotated. */
  notExhaustiveCategoryIds: number[];
}

export interface CocoCategory {
  id: number;
  name: string;
  supercategory?: string;
  /** LVIS: 'r' rare (1–10 training images), 'c' common (11–100), 'f' frequent (> 100). */
  frequency?: 'r' | 'c' | 'f';
  imageCount?: number;
  instanceCount?: number;
}

export interface CocoAnnotation {
  id: number;
  imageId: number;
  categoryId: number;
  /** [x, y, w, h] in pixels. */
  bbox: [number, number, number, number];
  area: number;
  iscrowd: boolean;
  /** Polygons or an RLE; absent in box-only files. */
  segmentation?: Segmentation;
  /** COCO's optional `ignore` flag (LVIS evaluation honours it). */
  ignore: boolean;
}

export interface CocoDataset {
  /** The file name used in error messages. */
  file: string;
  images: CocoImage[];
  annotations: CocoAnnotation[];
  categories: CocoCategory[];
  imageById: Map<number, CocoImage>;
  categoryById: Map<number, CocoCategory>;
  /** True when every category carries `frequency` (an LVIS file): evaluation is federated. */
  lvis: boolean;
}

/** One detection in COCO's result format. */
export interface CocoDetection {
  imageId: number;
  categoryId: number;
  bbox: [number, number, number, number];
  score: number;
  segmentation?: Segmentation;
  /** The file gave no bbox: it was computed from the mask (pycocotools' loadRes, toBbox). */
  boxFromMask?: boolean;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A checker bound to one file and one entry, whose failures name both. */
class Entry {
  constructor(
    readonly file: string,
    readonly where: string,
    readonly o: Json,
  ) {}
  fail(detail: string): never {
    throw new DataError(this.file, `${this.where}: ${detail}`);
  }
  has(key: string): boolean {
    return Object.hasOwn(this.o, key) && this.o[key] !== undefined && this.o[key] !== null;
  }
  private need(key: string): unknown {
    if (!this.has(key)) this.fail(`missing field '${key}'`);
    return this.o[key];
  }
  id(key: string): number {
    const v = this.need(key);
    if (typeof v !== 'number' || !Number.isSafeInteger(v)) this.fail(`'${key}' must be an integer, got ${JSON.stringify(v)}`);
    return v as number;
  }
  num(key: string, { min }: { min?: number } = {}): number {
    const v = this.need(key);
    if (typeof v !== 'number' || !Number.isFinite(v)) this.fail(`'${key}' must be a finite number, got ${JSON.stringify(v)}`);
    if (min !== undefined && (v as number) < min) this.fail(`'${key}' must be >= ${min}, got ${v}`);
    return v as number;
  }
  str(key: string): string {
    const v = this.need(key);
    if (typeof v !== 'string') this.fail(`'${key}' must be a string, got ${JSON.stringify(v)}`);
    return v as string;
  }
  ids(key: string): number[] {
    if (!this.has(key)) return [];
    const v = this.o[key];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'number' && Number.isSafeInteger(x))) this.fail(`'${key}' must be a list of integer ids`);
    return v as number[];
  }
  bbox(key = 'bbox'): [number, number, number, number] {
    const v = this.need(key);
    if (!Array.isArray(v) || v.length !== 4) this.fail(`'${key}' must be [x, y, w, h], got ${JSON.stringify(v)}`);
    const b = v as unknown[];
    if (!b.every((x) => typeof x === 'number' && Number.isFinite(x))) this.fail(`'${key}' has a non-finite coordinate: ${JSON.stringify(v)}`);
    if ((b[2] as number) < 0 || (b[3] as number) < 0) this.fail(`'${key}' has a negative width or height: ${JSON.stringify(v)}`);
    return b as [number, number, number, number];
  }
  segmentation(): Segmentation | undefined {
    if (!this.has('segmentation')) return undefined;
    const s = this.o.segmentation;
    if (Array.isArray(s)) {
      if (s.length === 0) return undefined; // box-only entries write `segmentation: []`
      s.forEach((poly, i) => {
        if (!Array.isArray(poly)) this.fail(`segmentation[${i}] must be a polygon (a list of x, y numbers)`);
        if (!poly.every((x: unknown) => typeof x === 'number' && Number.isFinite(x))) this.fail(`segmentation[${i}] has a non-finite coordinate`);
        if (poly.length % 2 !== 0) this.fail(`segmentation[${i}] has an odd number of coordinates (${poly.length})`);
        if (poly.length < 6) this.fail(`segmentation[${i}] is a polygon with ${poly.length / 2} points; at least 3 are needed`);
      });
      return s as number[][];
    }
    if (!isObject(s)) this.fail(`segmentation must be polygons or an RLE {size, counts}`);
    const size = s.size;
    if (!Array.isArray(size) || size.length !== 2 || !size.every((x) => Number.isSafeInteger(x) && x >= 0)) this.fail(`segmentation.size must be [height, width], got ${JSON.stringify(size)}`);
    const [h, w] = size as [number, number];
    const counts = s.counts;
    if (typeof counts === 'string') {
      if (!/^[0-o]*$/.test(counts)) this.fail(`segmentation.counts has a character outside COCO's RLE alphabet '0'..'o'`);
    } else if (Array.isArray(counts)) {
      if (!counts.every((x) => Number.isSafeInteger(x) && x >= 0)) this.fail(`segmentation.counts must be non-negative integers`);
      const total = (counts as number[]).reduce((a, b) => a + b, 0);
      if (total !== h * w) this.fail(`segmentation.counts sum to ${total}, but size ${h}×${w} has ${h * w} pixels`);
    } else this.fail(`segmentation.counts must be a string or a list of run lengths`);
    return { size: [h, w], counts } as RleJson;
  }
}

function parse(text: string | unknown, file: string): unknown {
  if (typeof text !== 'string') return text;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new DataError(file, `not valid JSON: ${(e as Error).message}`);
  }
}

function list(root: Json, key: string, file: string): Json[] {
  const v = root[key];
  if (v === undefined) throw new DataError(file, `missing top-level field '${key}'`);
  if (!Array.isArray(v)) throw new DataError(file, `'${key}' must be a list`);
  v.forEach((x, i) => {
    if (!isObject(x)) throw new DataError(file, `${key}[${i}] must be an object`);
  });
  return v as Json[];
}

const FREQUENCIES = ['r', 'c', 'f'] as const;

/** Parses a COCO instances or LVIS file (its text, or the parsed JSON) and checks every entry. */
export function parseCocoDataset(text: string | unknown, file: string): CocoDataset {
  const root = parse(text, file);
  if (!isObject(root)) throw new DataError(file, 'expected an object with images, annotations and categories');
  const categories: CocoCategory[] = [];
  const categoryById = new Map<number, CocoCategory>();
  list(root, 'categories', file).forEach((o, i) => {
    const e = new Entry(file, `categories[${i}]`, o);
    const id = e.id('id');
    if (categoryById.has(id)) e.fail(`duplicate category id ${id}`);
    const c: CocoCategory = { id, name: e.str('name') };
    if (e.has('supercategory')) c.supercategory = String(o.supercategory);
    if (e.has('frequency')) {
      const f = o.frequency as string;
      if (!(FREQUENCIES as readonly string[]).includes(f)) e.fail(`'frequency' must be one of r, c, f, got ${JSON.stringify(f)}`);
      c.frequency = f as CocoCategory['frequency'];
    }
    if (e.has('image_count')) c.imageCount = e.num('image_count', { min: 0 });
    if (e.has('instance_count')) c.instanceCount = e.num('instance_count', { min: 0 });
    categories.push(c);
    categoryById.set(id, c);
  });
  const images: CocoImage[] = [];
  const imageById = new Map<number, CocoImage>();
  list(root, 'images', file).forEach((o, i) => {
    const e = new Entry(file, `images[${i}]`, o);
    const id = e.id('id');
    const where = new Entry(file, `images[${i}] (id ${id})`, o);
    if (imageById.has(id)) where.fail(`duplicate image id ${id}`);
    const im: CocoImage = {
      id,
      width: where.num('width', { min: 1 }),
      height: where.num('height', { min: 1 }),
      negCategoryIds: where.ids('neg_category_ids'),
      notExhaustiveCategoryIds: where.ids('not_exhaustive_category_ids'),
    };
    if (!Number.isInteger(im.width) || !Number.isInteger(im.height)) where.fail(`width and height must be integers, got ${im.width}×${im.height}`);
    for (const key of ['neg_category_ids', 'not_exhaustive_category_ids'] as const) {
      for (const c of where.ids(key)) if (!categoryById.has(c)) where.fail(`${key} holds category ${c}, which is not in categories`);
    }
    if (where.has('file_name')) im.fileName = String(o.file_name);
    if (where.has('coco_url')) im.cocoUrl = String(o.coco_url);
    images.push(im);
    imageById.set(id, im);
  });
  const annotations: CocoAnnotation[] = [];
  const annIds = new Set<number>();
  list(root, 'annotations', file).forEach((o, i) => {
    const id = new Entry(file, `annotations[${i}]`, o).id('id');
    const e = new Entry(file, `annotations[${i}] (id ${id})`, o);
    if (annIds.has(id)) e.fail(`duplicate annotation id ${id}`);
    annIds.add(id);
    const imageId = e.id('image_id');
    if (!imageById.has(imageId)) e.fail(`image_id ${imageId} is not in images`);
    const categoryId = e.id('category_id');
    if (!categoryById.has(categoryId)) e.fail(`category_id ${categoryId} is not in categories`);
    const bbox = e.bbox();
    const area = e.num('area', { min: 0 });
    let iscrowd = false;
    if (e.has('iscrowd')) {
      if (o.iscrowd !== 0 && o.iscrowd !== 1 && typeof o.iscrowd !== 'boolean') e.fail(`'iscrowd' must be 0 or 1, got ${JSON.stringify(o.iscrowd)}`);
      iscrowd = Boolean(o.iscrowd);
    }
    const segmentation = e.segmentation();
    annotations.push({ id, imageId, categoryId, bbox, area, iscrowd, segmentation, ignore: Boolean(o.ignore) });
  });
  const lvis = categories.length > 0 && categories.every((c) => c.frequency !== undefined);
  return { file, images, annotations, categories, imageById, categoryById, lvis };
}

/**
 * Parses detections in COCO's result format (a list of {image_id, category_id, bbox, score,
 * segmentation?}) against a ground truth: an image or category unknown to it is an error.
 */
export function parseCocoResults(text: string | unknown, gt: CocoDataset, file: string): CocoDetection[] {
  const root = parse(text, file);
  if (!Array.isArray(root)) throw new DataError(file, 'expected a list of detections [{image_id, category_id, bbox, score}, ...]');
  return root.map((o, i) => {
    if (!isObject(o)) throw new DataError(file, `[${i}] must be an object`);
    const e = new Entry(file, `detection [${i}]`, o);
    const imageId = e.id('image_id');
    if (!gt.imageById.has(imageId)) e.fail(`image_id ${imageId} is not an image of ${gt.file}`);
    const categoryId = e.id('category_id');
    if (!gt.categoryById.has(categoryId)) e.fail(`category_id ${categoryId} is not a category of ${gt.file}`);
    const segmentation = e.segmentation();
    const score = e.num('score');
    const im = gt.imageById.get(imageId)!;
    if (segmentation && !Array.isArray(segmentation)) {
      if (segmentation.size[0] !== im.height || segmentation.size[1] !== im.width) e.fail(`segmentation size ${segmentation.size[0]}×${segmentation.size[1]} differs from image ${imageId}'s ${im.height}×${im.width}`);
    }
    // a mask-only result gets its box from the mask (pycocotools' loadRes: toBbox)
    if (!e.has('bbox') && segmentation) return { imageId, categoryId, bbox: rleToBbox(segmentationToRle(segmentation, im.height, im.width)), score, segmentation, boxFromMask: true };
    return { imageId, categoryId, bbox: e.bbox(), score, segmentation };
  });
}
