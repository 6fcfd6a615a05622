// Instance-segmentation sets (COCO or LVIS annotations plus a way to get each image's pixels) and
// their loading into detection samples, with torchvision's reference rules for bad or unusable
// input (references/detection/coco_utils.py): crowd regions are not training targets, boxes are
// clipped to the image and degenerate ones dropped, and a training image left without a box is
// skipped (the R-CNN losses need ≥ 1). Every skip and drop is counted and logged, one line per
// kind; an image that cannot be decoded is skipped, naming the file, never a crash mid-run.
// Browser-safe: data/node-instance-sets.ts reads sets from disk, data/synthetic-lvis.ts makes one.
import type { CocoAnnotation, CocoCategory, CocoDataset, CocoImage } from './coco.js';
import { targetFromCoco, type DetectionSample } from './detection-transforms.js';
import { DataError } from './errors.js';
import { rleArea, segmentationToRle } from './masks.js';

export interface InstanceSet {
  /** LVIS/COCO annotations as parsed by parseCocoDataset (LVIS: categories carry frequency, imageCount, instanceCount). */
  dataset: CocoDataset;
  /** RGB CHW float32 in [0, 1] for one image of dataset.images; throws a DataError naming the file if it cannot be decoded. */
  pixels(image: CocoImage): Promise<Float32Array>;
}

export interface SkippedImage {
  imageId: number;
  fileName?: string;
  reason: string;
}

export interface LoadedSample {
  imageId: number;
  sample: DetectionSample;
}

export interface LoadDetectionOptions {
  /** The model's label of a category id (e.g. 1..K by sorted id, 0 being the background). */
  labelOf: (categoryId: number) => number;
  /** Decode instance masks into the targets (default true). */
  masks?: boolean;
  /** Training drops crowd regions and skips images left without a target; evaluation keeps every image. */
  training: boolean;
  log?: (line: string) => void;
}

/** Why an annotation is left out of the targets; the text is the log line's. */
const DROPS = {
  crowd: 'crowd annotations (not training targets, as torchvision drops iscrowd)',
  outside: 'annotations whose box lies wholly outside the image',
  box: 'annotations with a degenerate box (width or height < 1 px after clipping to the image)',
  noMask: 'annotations without a segmentation (masks were asked for)',
  maskSize: "annotations whose RLE size differs from the image's",
  emptyMask: 'annotations whose mask covers no pixel of the image (polygon outside it or degenerate)',
} as const;
type DropKind = keyof typeof DROPS;

const SKIPS = {
  unreadable: 'images that could not be decoded',
  empty: 'training images without a usable annotation (the R-CNN losses need ≥ 1 box)',
} as const;
type SkipKind = keyof typeof SKIPS;

/** The annotation with its box clipped to the image, or why it cannot be a target. */
function usable(a: CocoAnnotation, im: CocoImage, training: boolean, masks: boolean): CocoAnnotation | DropKind {
  if (a.iscrowd && training) return 'crowd';
  const { width: W, height: H } = im;
  const [x, y, w, h] = a.bbox;
  if (x + w <= 0 || y + h <= 0 || x >= W || y >= H) return 'outside';
  // torchvision clamps x1, x2 to [0, W] and y1, y2 to [0, H], then keeps x2 > x1, y2 > y1; we ask ≥ 1 px
  const x1 = Math.max(0, x), y1 = Math.max(0, y), x2 = Math.min(W, x + w), y2 = Math.min(H, y + h);
  if (x2 - x1 < 1 || y2 - y1 < 1) return 'box';
  if (masks) {
    const s = a.segmentation;
    if (!s) return 'noMask';
    if (!Array.isArray(s) && (s.size[0] !== H || s.size[1] !== W)) return 'maskSize';
    // polygons are rasterised on the image's grid, which clips any part outside it
    if (rleArea(segmentationToRle(s, H, W)) === 0) return 'emptyMask';
  }
  return { ...a, bbox: [x1, y1, x2 - x1, y2 - y1] };
}

const idList = (ids: readonly number[], first = 5): string => ids.slice(0, first).join(', ') + (ids.length > first ? ', …' : '');

/**
 * Every image of the set as a detection sample (image in [0, 1], boxes x1 y1 x2 y2, labels from
 * `labelOf`, masks row-major at the image size), in the order of dataset.images, with the images
 * skipped and the annotations dropped (see DROPS and SKIPS), each kind logged in one line.
 */
export async function loadDetectionSamples(set: InstanceSet, opts: LoadDetectionOptions): Promise<{ samples: LoadedSample[]; skipped: SkippedImage[]; droppedAnnotations: number }> {
  const { dataset } = set;
  const { training, labelOf } = opts;
  const masks = opts.masks ?? true;
  const byImage = new Map<number, CocoAnnotation[]>();
  for (const a of dataset.annotations) {
    const l = byImage.get(a.imageId);
    if (l) l.push(a);
    else byImage.set(a.imageId, [a]);
  }
  const dropped = new Map<DropKind, number[]>();
  const skippedBy = new Map<SkipKind, SkippedImage[]>();
  const skip = (kind: SkipKind, s: SkippedImage) => (skippedBy.get(kind) ?? skippedBy.set(kind, []).get(kind)!).push(s);
  const samples: LoadedSample[] = [];
  for (const im of dataset.images) {
    const kept: CocoAnnotation[] = [];
    for (const a of byImage.get(im.id) ?? []) {
      const u = usable(a, im, training, masks);
      if (typeof u === 'string') (dropped.get(u) ?? dropped.set(u, []).get(u)!).push(a.id);
      else kept.push(u);
    }
    if (training && kept.length === 0) {
      const n = byImage.get(im.id)?.length ?? 0;
      skip('empty', { imageId: im.id, fileName: im.fileName, reason: n === 0 ? 'no annotations' : `none of its ${n} annotations is usable` });
      continue;
    }
    let image: Float32Array;
    try {
      image = await set.pixels(im);
    } catch (e) {
      if (!(e instanceof DataError)) throw e;
      skip('unreadable', { imageId: im.id, fileName: im.fileName, reason: e.message });
      continue;
    }
    const { width: W, height: H } = im;
    if (image.length !== 3 * H * W) {
      skip('unreadable', { imageId: im.id, fileName: im.fileName, reason: `${im.fileName ?? `image ${im.id}`}: ${image.length} values, expected 3 × ${H} × ${W} (RGB at the annotated size)` });
      continue;
    }
    const target = targetFromCoco(kept, im, { masks, labelOf });
    samples.push({ imageId: im.id, sample: { image, channels: 3, height: H, width: W, target, originalSize: [H, W] } });
  }
  const log = opts.log ?? (() => {});
  for (const [kind, list] of skippedBy) log(`${dataset.file}: skipped ${list.length} ${SKIPS[kind]} (ids ${idList(list.map((s) => s.imageId))}); first: ${list[0].reason}`);
  for (const [kind, ids] of dropped) log(`${dataset.file}: dropped ${ids.length} ${DROPS[kind]} (annotation ids ${idList(ids)})`);
  const skipped = [...skippedBy.values()].flat();
  return { samples, skipped, droppedAnnotations: [...dropped.values()].reduce((s, l) => s + l.length, 0) };
}

/** Categories with no training instance (they still count in evaluation): ids and names, for a one-line log. */
export function categoriesAbsentFrom(train: CocoDataset, categories: readonly CocoCategory[] = train.categories): CocoCategory[] {
  const present = new Set(train.annotations.filter((a) => !a.iscrowd).map((a) => a.categoryId));
  return categories.filter((c) => !present.has(c.id));
}

/** A parsed dataset back in COCO / LVIS JSON form (parseCocoDataset reads it back to an equal dataset). */
export function cocoDatasetToJson(d: CocoDataset): { images: object[]; annotations: object[]; categories: object[] } {
  return {
    images: d.images.map((im) => ({
      id: im.id,
      width: im.width,
      height: im.height,
      ...(im.fileName !== undefined && { file_name: im.fileName }),
      ...(im.cocoUrl !== undefined && { coco_url: im.cocoUrl }),
      neg_category_ids: im.negCategoryIds,
      not_exhaustive_category_ids: im.notExhaustiveCategoryIds,
    })),
    annotations: d.annotations.map((a) => ({
      id: a.id,
      image_id: a.imageId,
      category_id: a.categoryId,
      bbox: a.bbox,
      area: a.area,
      iscrowd: a.iscrowd ? 1 : 0,
      ...(a.segmentation !== undefined && { segmentation: a.segmentation }),
      ...(a.ignore && { ignore: 1 }),
    })),
    categories: d.categories.map((c) => ({
      id: c.id,
      name: c.name,
      ...(c.supercategory !== undefined && { supercategory: c.supercategory }),
      ...(c.frequency !== undefined && { frequency: c.frequency }),
      ...(c.imageCount !== undefined && { image_count: c.imageCount }),
      ...(c.instanceCount !== undefined && { instance_count: c.instanceCount }),
    })),
  };
}
