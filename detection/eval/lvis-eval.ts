// LVIS evaluation with the numbers of lvis-api (lvis/eval.py LVISEval, lvis/results.py LVISResults):
// - at most 300 detections per image, the top by score across categories (results grouped by image
//   in order of first appearance; an image over the limit is sorted by score, stably);
// - federated: a detection of a category that is neither among the image's gt categories nor in
//   its `neg_category_ids` is dropped before matching;
// - for a category in the image's `not_exhaustive_category_ids`, unmatched detections are ignored;
// - ground truths and detections of zero area are left out (get_ann_ids keeps 0 < area < inf);
// - no crowd regions (LVIS gts are never crowd; the optional `ignore` flag is honoured);
// - no maxDets per image beyond the 300 limit; AP_r / AP_c / AP_f average the categories of each
//   frequency; AR@300 and areas all / small / medium / large. Browser-safe.
import type { CocoDataset, CocoDetection } from '../../data/coco.js';
import { DataError } from '../../data/errors.js';
import { AREA_RANGES, IOU_THRESHOLDS, RECALL_THRESHOLDS, accumulate, argsortByScore, evaluateImage, formatFixed3, meanOver, type Accumulated, type ImageEval } from './core.js';
import { groupByCategoryImage, instanceIou, perCategoryStats, prepareDetections, prepareGroundTruth, type EvalInstance, type IouType, type PerCategory } from './coco-eval.js';

export interface LvisEvalResult {
  iouType: IouType;
  /** AP, AP50, AP75, APs, APm, APl, APr, APc, APf, AR@300, ARs@300, ARm@300, ARl@300 (lvis-api's keys). */
  metrics: Record<string, number>;
  perCategory: PerCategory[];
  /** print_results()'s text. */
  text: string;
  accumulated: Accumulated;
}

export interface LvisEvalOptions {
  iouType?: IouType;
  /** Detections kept per image (default 300, LVIS's official value; −1: no limit). */
  maxDetsPerImage?: number;
}

/** LVISResults.limit_dets_per_image: grouped by image (first appearance), each image's top `maxDets` by score. */
export function limitDetsPerImage<D extends { imageId: number; score: number }>(dts: readonly D[], maxDets: number): D[] {
  const byImage = new Map<number, D[]>();
  for (const d of dts) {
    const l = byImage.get(d.imageId);
    if (l) l.push(d);
    else byImage.set(d.imageId, [d]);
  }
  const out: D[] = [];
  for (const l of byImage.values()) {
    if (maxDets < 0 || l.length <= maxDets) out.push(...l);
    else out.push(...argsortByScore(l.map((d) => d.score)).slice(0, maxDets).map((i) => l[i]));
  }
  return out;
}

/** LVISEval(gt, dt, iouType).run() */
export function evaluateLvis(gt: CocoDataset, detections: readonly CocoDetection[], options: LvisEvalOptions = {}, file?: string): LvisEvalResult {
  const iouType = options.iouType ?? 'segm';
  const maxDets = options.maxDetsPerImage ?? 300;
  for (const c of gt.categories) if (!c.frequency) throw new DataError(gt.file, `category ${c.id} (${c.name}) has no 'frequency': LVIS evaluation needs r/c/f for every category`);
  const limited = limitDetsPerImage(detections, maxDets);
  // LVIS.get_ann_ids(img_ids, cat_ids) keeps only 0 < area < inf: zero-area gts and detections drop out
  const positive = (x: EvalInstance) => x.area > 0 && x.area < Infinity;
  const gtInstances = prepareGroundTruth(gt, iouType, false).filter(positive);
  const dtInstances = prepareDetections(gt, limited, iouType, file).filter(positive);
  // federated filtering: keep a detection only if its category is in the image's gt or negatives
  const present = new Map<number, Set<number>>();
  for (const g of gtInstances) {
    if (!present.has(g.imageId)) present.set(g.imageId, new Set());
    present.get(g.imageId)!.add(g.categoryId);
  }
  const negative = new Map(gt.images.map((im) => [im.id, new Set(im.negCategoryIds)]));
  const notExhaustive = new Map(gt.images.map((im) => [im.id, new Set(im.notExhaustiveCategoryIds)]));
  const kept = dtInstances.filter((d) => negative.get(d.imageId)!.has(d.categoryId) || (present.get(d.imageId)?.has(d.categoryId) ?? false));
  const gts = groupByCategoryImage(gtInstances);
  const dts = groupByCategoryImage(kept);
  const catIds = gt.categories.map((c) => c.id).sort((a, b) => a - b);
  const imgIds = gt.images.map((im) => im.id).sort((a, b) => a - b);
  const A = AREA_RANGES.length;
  const evals: ImageEval[][][] = catIds.map((catId) => {
    const perArea: ImageEval[][] = AREA_RANGES.map(() => []);
    for (const imgId of imgIds) {
      const gi = gts.get(catId)?.get(imgId) ?? [];
      const di0 = dts.get(catId)?.get(imgId) ?? [];
      if (gi.length === 0 && di0.length === 0) continue;
      const di = argsortByScore(di0.map((x) => x.score)).map((j) => di0[j]);
      const ious = instanceIou(di, gi, iouType, gi.map(() => false));
      const nel = notExhaustive.get(imgId)!.has(catId);
      AREA_RANGES.forEach((rng, a) => perArea[a].push(evaluateImage(gi, di, ious, rng, IOU_THRESHOLDS, nel)));
    }
    return perArea;
  });
  const acc = accumulate(evals, A, [Infinity], IOU_THRESHOLDS, RECALL_THRESHOLDS);
  const { T, R, K } = acc;
  const freqGroups = (['r', 'c', 'f'] as const).map((f) => catIds.flatMap((id, k) => (gt.categoryById.get(id)!.frequency === f ? [k] : [])));
  const ap = (iouThr: number | null, area: number, cats: number[] | null) => meanOver(acc.precision, [T, R, K, A, 1], [iouThr === null ? null : [IOU_THRESHOLDS.indexOf(iouThr)], null, cats, [area], [0]]);
  const ar = (area: number) => meanOver(acc.recall, [T, K, A, 1], [null, null, [area], [0]]);
  const suffix = maxDets < 0 ? '-1' : String(maxDets);
  const metrics: Record<string, number> = {
    AP: ap(null, 0, null),
    AP50: ap(0.5, 0, null),
    AP75: ap(0.75, 0, null),
    APs: ap(null, 1, null),
    APm: ap(null, 2, null),
    APl: ap(null, 3, null),
    APr: ap(null, 0, freqGroups[0]),
    APc: ap(null, 0, freqGroups[1]),
    APf: ap(null, 0, freqGroups[2]),
    [`AR@${suffix}`]: ar(0),
    [`ARs@${suffix}`]: ar(1),
    [`ARm@${suffix}`]: ar(2),
    [`ARl@${suffix}`]: ar(3),
  };
  // print_results(): ' Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=300 catIds=all] = 0.xyz'
  const lines = Object.entries(metrics).map(([key, value]) => {
    const isAp = key.includes('AP');
    const iou = /^..\d/.test(key) ? (Number(key.slice(2)) / 100).toFixed(2) : `${IOU_THRESHOLDS[0].toFixed(2)}:${IOU_THRESHOLDS[IOU_THRESHOLDS.length - 1].toFixed(2)}`;
    const cats = 'rcf'.includes(key[2] ?? '@') && key.length > 2 ? key[2] : 'all';
    const area = 'sml'.includes(key[2] ?? '@') && key.length > 2 ? key[2] : 'all';
    return ` ${(isAp ? 'Average Precision' : 'Average Recall').padEnd(18)} ${isAp ? '(AP)' : '(AR)'} @[ IoU=${iou.padEnd(9)} | area=${area.padStart(6)} | maxDets=${suffix.padStart(3)} catIds=${cats.padStart(3)}] = ${formatFixed3(value)}`;
  });
  return { iouType, metrics, perCategory: perCategoryStats(gt, catIds, acc, evals, 0), text: lines.join('\n') + '\n', accumulated: acc };
}
