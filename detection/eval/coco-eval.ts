// COCO bbox / segm evaluation with the numbers of pycocotools' COCOeval (evaluate, accumulate,
// summarize) and its result loading (COCO.loadRes): detection ids 1.. in file order; when the first
// result has a bbox every detection's area is its box's w·h (and a box-only result's mask is its box
// as a polygon), otherwise the area is the mask's. Ground truth areas are the file's `area`; crowd
// regions are ignored gts that any number of detections may match, with IoU over the detection's
// area. Browser-safe.
import type { CocoDataset, CocoDetection, CocoImage } from '../../data/coco.js';
import { DataError } from '../../data/errors.js';
import { bboxIou, polygonToRle, rleArea, rleIou, segmentationToRle, type Rle } from '../../data/masks.js';
import { AREA_LABELS, AREA_RANGES, IOU_THRESHOLDS, RECALL_THRESHOLDS, accumulate, argsortByScore, evaluateImage, formatFixed3, meanOver, type Accumulated, type AreaLabel, type ImageEval } from './core.js';

export type IouType = 'bbox' | 'segm';

/** A gt or detection ready for matching. */
export interface EvalInstance {
  id: number;
  imageId: number;
  categoryId: number;
  bbox: readonly number[];
  area: number;
  score: number;
  iscrowd: boolean;
  ignore: boolean;
  /** The mask (segm evaluation only). */
  rle?: Rle;
}

export interface PerCategory {
  id: number;
  name: string;
  frequency?: 'r' | 'c' | 'f';
  /** Non-ignored gt instances (area 'all'). */
  numGt: number;
  /** AP over IoU 0.50:0.95 (−1: no gt), AP50, AP75, and AR at the largest maxDets. */
  ap: number;
  ap50: number;
  ap75: number;
  ar: number;
}

export interface CocoEvalResult {
  iouType: IouType;
  /** The 12 numbers of COCOeval.summarize(), in its order. */
  stats: number[];
  /** Named as detectron2 does: AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl. */
  metrics: Record<string, number>;
  perCategory: PerCategory[];
  /** summarize()'s text, one line per number. */
  text: string;
  accumulated: Accumulated;
}

/** The mask of an annotation, as pycocotools' annToRLE. */
export function instanceRle(segm: CocoDetection['segmentation'], bbox: readonly number[], image: CocoImage): Rle {
  if (segm) return segmentationToRle(segm, image.height, image.width);
  const [x, y, w, h] = bbox;
  return polygonToRle([x, y, x, y + h, x + w, y + h, x + w, y], image.height, image.width);
}

/** The ground truth as evaluation instances (masks built for segm). */
export function prepareGroundTruth(gt: CocoDataset, iouType: IouType, crowdFromFile = true): EvalInstance[] {
  return gt.annotations.map((a, i) => {
    if (iouType === 'segm' && !a.segmentation) throw new DataError(gt.file, `annotations[${i}] (id ${a.id}): segm evaluation needs a 'segmentation'`);
    const im = gt.imageById.get(a.imageId)!;
    return {
      id: a.id,
      imageId: a.imageId,
      categoryId: a.categoryId,
      bbox: a.bbox,
      area: a.area,
      score: 1,
      iscrowd: crowdFromFile && a.iscrowd,
      ignore: crowdFromFile ? a.iscrowd : a.ignore,
      rle: iouType === 'segm' ? instanceRle(a.segmentation, a.bbox, im) : undefined,
    };
  });
}

/** pycocotools' loadRes on already parsed results: ids, areas, masks. */
export function prepareDetections(gt: CocoDataset, dts: readonly CocoDetection[], iouType: IouType, file = 'detections'): EvalInstance[] {
  const boxBranch = dts.length > 0 && !dts[0].boxFromMask;
  return dts.map((d, i) => {
    const im = gt.imageById.get(d.imageId)!;
    if (!boxBranch && !d.segmentation) throw new DataError(file, `detection [${i}]: the first result is mask-only, so every result needs a 'segmentation'`);
    const rle = iouType === 'segm' || !boxBranch ? instanceRle(d.segmentation, d.bbox, im) : undefined;
    return {
      id: i + 1,
      imageId: d.imageId,
      categoryId: d.categoryId,
      bbox: d.bbox,
      area: boxBranch ? d.bbox[2] * d.bbox[3] : rleArea(rle!),
      score: d.score,
      iscrowd: false,
      ignore: false,
      rle: iouType === 'segm' ? rle : undefined,
    };
  });
}

/** Instances grouped by category then image, in file order. */
export function groupByCategoryImage(instances: readonly EvalInstance[]): Map<number, Map<number, EvalInstance[]>> {
  const out = new Map<number, Map<number, EvalInstance[]>>();
  for (const x of instances) {
    let byImage = out.get(x.categoryId);
    if (!byImage) out.set(x.categoryId, (byImage = new Map()));
    const list = byImage.get(x.imageId);
    if (list) list.push(x);
    else byImage.set(x.imageId, [x]);
  }
  return out;
}

/** computeIoU: detections (sorted, truncated) × gts, row-major. */
export function instanceIou(dts: readonly EvalInstance[], gts: readonly EvalInstance[], iouType: IouType, crowd: readonly boolean[]): Float64Array {
  if (iouType === 'segm') return rleIou(dts.map((d) => d.rle!), gts.map((g) => g.rle!), crowd);
  return bboxIou(dts.map((d) => d.bbox), gts.map((g) => g.bbox), crowd);
}

export interface CocoEvalOptions {
  iouType?: IouType;
  /** maxDets of summarize() (default 1, 10, 100). */
  maxDets?: readonly [number, number, number];
}

/** COCOeval(gt, dt, iouType).evaluate(); accumulate(); summarize(). */
export function evaluateCoco(gt: CocoDataset, detections: readonly CocoDetection[], options: CocoEvalOptions = {}, file?: string): CocoEvalResult {
  const iouType = options.iouType ?? 'bbox';
  const maxDets = [...(options.maxDets ?? [1, 10, 100])].sort((a, b) => a - b);
  const maxDet = maxDets[maxDets.length - 1];
  const gts = groupByCategoryImage(prepareGroundTruth(gt, iouType));
  const dts = groupByCategoryImage(prepareDetections(gt, detections, iouType, file));
  const catIds = gt.categories.map((c) => c.id).sort((a, b) => a - b);
  const imgIds = gt.images.map((im) => im.id).sort((a, b) => a - b);
  const A = AREA_RANGES.length;
  const evals: ImageEval[][][] = catIds.map((catId) => {
    const perArea: ImageEval[][] = AREA_RANGES.map(() => []);
    const g = gts.get(catId);
    const d = dts.get(catId);
    for (const imgId of imgIds) {
      const gi = g?.get(imgId) ?? [];
      const di0 = d?.get(imgId) ?? [];
      if (gi.length === 0 && di0.length === 0) continue;
      const di = argsortByScore(di0.map((x) => x.score)).slice(0, maxDet).map((j) => di0[j]);
      const crowd = gi.map((x) => x.iscrowd);
      const ious = instanceIou(di, gi, iouType, crowd);
      AREA_RANGES.forEach((rng, a) => perArea[a].push(evaluateImage(gi, di, ious, rng, IOU_THRESHOLDS)));
    }
    return perArea;
  });
  const acc = accumulate(evals, A, maxDets, IOU_THRESHOLDS, RECALL_THRESHOLDS);
  const { T, R, K, M } = acc;
  const tIndex = (thr: number) => IOU_THRESHOLDS.indexOf(thr);
  const aIndex = (l: AreaLabel) => AREA_LABELS.indexOf(l);
  const mIndex = (n: number) => maxDets.indexOf(n);
  const lines: string[] = [];
  const summarize = (ap: boolean, iouThr: number | null, area: AreaLabel, md: number): number => {
    const t = iouThr === null ? null : [tIndex(iouThr)];
    const value = ap ? meanOver(acc.precision, [T, R, K, A, M], [t, null, null, [aIndex(area)], [mIndex(md)]]) : meanOver(acc.recall, [T, K, A, M], [t, null, [aIndex(area)], [mIndex(md)]]);
    lines.push(summaryLine(ap, iouThr, area, md, value));
    return value;
  };
  const [m0, m1, m2] = maxDets;
  const stats = [
    summarize(true, null, 'all', m2),
    summarize(true, 0.5, 'all', m2),
    summarize(true, 0.75, 'all', m2),
    summarize(true, null, 'small', m2),
    summarize(true, null, 'medium', m2),
    summarize(true, null, 'large', m2),
    summarize(false, null, 'all', m0),
    summarize(false, null, 'all', m1),
    summarize(false, null, 'all', m2),
    summarize(false, null, 'small', m2),
    summarize(false, null, 'medium', m2),
    summarize(false, null, 'large', m2),
  ];
  const names = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', `AR${m0}`, `AR${m1}`, `AR${m2}`, 'ARs', 'ARm', 'ARl'];
  const perCategory = perCategoryStats(gt, catIds, acc, evals, M - 1);
  return { iouType, stats, metrics: Object.fromEntries(names.map((n, i) => [n, stats[i]])), perCategory, text: lines.join('\n') + '\n', accumulated: acc };
}

/** Per-category AP (0.50:0.95, 0.50, 0.75) and AR at area 'all' and maxDets index m. */
export function perCategoryStats(gt: CocoDataset, catIds: readonly number[], acc: Accumulated, evals: readonly (readonly (readonly ImageEval[])[])[], m: number): PerCategory[] {
  const { T, R, K, A, M } = acc;
  const t50 = IOU_THRESHOLDS.indexOf(0.5);
  const t75 = IOU_THRESHOLDS.indexOf(0.75);
  return catIds.map((id, k) => {
    const c = gt.categoryById.get(id)!;
    const p = (t: number[] | null) => meanOver(acc.precision, [T, R, K, A, M], [t, null, [k], [0], [m]]);
    let numGt = 0;
    for (const e of evals[k][0]) for (const g of e.gtIgnore) if (g === 0) numGt++;
    return { id, name: c.name, ...(c.frequency ? { frequency: c.frequency } : {}), numGt, ap: p(null), ap50: p([t50]), ap75: p([t75]), ar: meanOver(acc.recall, [T, K, A, M], [null, [k], [0], [m]]) };
  });
}

/** One line of summarize(): ' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.372'. */
export function summaryLine(ap: boolean, iouThr: number | null, area: string, maxDets: number, value: number): string {
  const title = (ap ? 'Average Precision' : 'Average Recall').padEnd(18);
  const iou = (iouThr === null ? `${IOU_THRESHOLDS[0].toFixed(2)}:${IOU_THRESHOLDS[IOU_THRESHOLDS.length - 1].toFixed(2)}` : iouThr.toFixed(2)).padEnd(9);
  return ` ${title} ${ap ? '(AP)' : '(AR)'} @[ IoU=${iou} | area=${area.padStart(6)} | maxDets=${String(maxDets).padStart(3)} ] = ${formatFixed3(value)}`;
}
