// Scene-graph evaluation as PySGG does it (SHTUPLUS/PySGG eb54749,
// pysgg/data/datasets/evaluation/vg/sgg_eval.py + vg_eval.py, itself after neural-motifs):
// - R@K (graph constraint): each subject–object pair gets ONE predicate, its arg-max over the
//   foreground predicates; pairs are ranked by triplet score = s_subj × s_pred × s_obj; the top K
//   triplets are matched to ground truth by (subject label, predicate, object label) and, for both
//   subject and object, box IoU ≥ 0.5 (legacy +1-pixel IoU, maskrcnn_benchmark's boxlist_iou).
//   recall_i = |matched GT triplets| / |GT triplets|, averaged over images.
// - ng-R@K (no graph constraint): every (pair, predicate) is a candidate with score
//   s_subj × s_obj × p(pred); the top 100 of all of them are ranked and matched the same way.
// - mR@K: per image and predicate, hits / count of that predicate's GT triplets; per predicate the
//   mean over images that contain it; mR = mean over predicates (see `meanOver`).
// - head/body/tail mR@K: the same per-predicate recalls averaged inside PySGG's groups.
// PredCls: predicted boxes and labels are replaced by the ground truth and object scores by 1 (as
// PySGG); SGCls keeps the predicted labels and scores on the ground-truth boxes; SGDet matches boxes.
// Images without GT relations are skipped, and so are images without any predicted pair (PySGG).
// Browser-safe, plain TypeScript.

import { VG150_PREDICATE_GROUPS } from './vg150-table.js';

export type SggMode = 'predcls' | 'sgcls' | 'sgdet';
export type PredicateGroup = 'head' | 'body' | 'tail';

/** Ground truth of one image. Boxes xyxy (n×4, flat); labels 1-based object classes; relations m×3 (subject, object, predicate ≥ 1). */
export interface SggGroundTruth {
  readonly boxes: ArrayLike<number>;
  readonly labels: ArrayLike<number>;
  readonly relations: ArrayLike<number>;
}

/**
 * Prediction for one image. `pairs` p×2 (subject, object indices into the predicted entities);
 * `relScores` p×(P+1) with column 0 the background, ignored for ranking as in PySGG.
 * boxes / labels / objScores describe the predicted entities (ignored in PredCls).
 */
export interface SggPrediction {
  readonly boxes?: ArrayLike<number>;
  readonly labels?: ArrayLike<number>;
  readonly objScores?: ArrayLike<number>;
  readonly pairs: ArrayLike<number>;
  readonly relScores: ArrayLike<number>;
}

export interface SggEvalOptions {
  /** Number of foreground predicates P (VG150: 50). relScores rows have P + 1 entries. */
  numPredicates: number;
  mode: SggMode;
  /** The K of R@K (default 20, 50, 100). The no-graph-constraint list is cut at max(ks) (PySGG: 100). */
  ks?: readonly number[];
  iouThreshold?: number;
  /**
   * mR@K denominator: 'present' averages over predicates that occur in the evaluated GT (default);
   * 'all' divides by all P predicates, absent ones counting 0, exactly as PySGG's calculate_mean_recall
   * (the same on VG150's test split, where all 50 occur).
   */
  meanOver?: 'present' | 'all';
  /** Head/body/tail group of each predicate, index 0 unused (default VG150's PySGG split when P = 50). */
  groups?: readonly (PredicateGroup | null)[];
}

export interface RecallSet {
  /** R@K by K. */
  recall: Record<number, number>;
  /** mR@K by K. */
  meanRecall: Record<number, number>;
  /** Per-predicate recall by K (index 0 unused; NaN for predicates without GT). */
  perPredicate: Record<number, Float64Array>;
  /** head/body/tail mR@K by K (NaN for an empty group). */
  groups: Record<number, Record<PredicateGroup, number>>;
}

export interface SggResult {
  mode: SggMode;
  ks: number[];
  /** Images that entered the averages. */
  images: number;
  /** GT triplet count per predicate over the evaluated images (index 0 unused). */
  gtCounts: Int32Array;
  graph: RecallSet;
  noGraph: RecallSet;
}

/** IoU of two xyxy boxes with the legacy +1 pixel width (maskrcnn_benchmark boxlist_iou, TO_REMOVE = 1). */
export function boxIouLegacy(a: ArrayLike<number>, ai: number, b: ArrayLike<number>, bi: number): number {
  const ax1 = a[ai * 4], ay1 = a[ai * 4 + 1], ax2 = a[ai * 4 + 2], ay2 = a[ai * 4 + 3];
  const bx1 = b[bi * 4], by1 = b[bi * 4 + 1], bx2 = b[bi * 4 + 2], by2 = b[bi * 4 + 3];
  const w = Math.max(0, Math.min(ax2, bx2) - Math.max(ax1, bx1) + 1);
  const h = Math.max(0, Math.min(ay2, by2) - Math.max(ay1, by1) + 1);
  const inter = w * h;
  const areaA = (ax2 - ax1 + 1) * (ay2 - ay1 + 1);
  const areaB = (bx2 - bx1 + 1) * (by2 - by1 + 1);
  return inter / (areaA + areaB - inter);
}

/** One ranked predicted triplet: subject and object entity, predicate (≥ 1), score. */
interface RankedTriplet { s: number; o: number; p: number }

function fail(msg: string): never {
  throw new Error(`SggEvaluator: ${msg}`);
}

/** Accumulates per-image recalls; `result()` gives R@K, mR@K, per-predicate and head/body/tail. */
export class SggEvaluator {
  readonly numPredicates: number;
  readonly mode: SggMode;
  readonly ks: number[];
  readonly iouThreshold: number;
  readonly meanOver: 'present' | 'all';
  readonly groups: readonly (PredicateGroup | null)[];
  private images = 0;
  private readonly gtCounts: Int32Array;
  private readonly recallSum = { graph: new Map<number, number>(), noGraph: new Map<number, number>() };
  // per K, per predicate: sum over images of that image's recall and number of images containing it
  private readonly predSum = { graph: new Map<number, Float64Array>(), noGraph: new Map<number, Float64Array>() };
  private readonly predImages: Int32Array;

  constructor(options: SggEvalOptions) {
    const P = options.numPredicates;
    if (!Number.isSafeInteger(P) || P < 1) fail(`numPredicates must be a positive integer, got ${P}`);
    this.numPredicates = P;
    this.mode = options.mode;
    if (!['predcls', 'sgcls', 'sgdet'].includes(this.mode)) fail(`mode must be predcls, sgcls or sgdet, got ${String(this.mode)}`);
    this.ks = [...(options.ks ?? [20, 50, 100])];
    for (const k of this.ks) if (!Number.isSafeInteger(k) || k < 1) fail(`each K must be a positive integer, got ${k}`);
    this.iouThreshold = options.iouThreshold ?? 0.5;
    this.meanOver = options.meanOver ?? 'present';
    const groups = options.groups ?? (P === 50 ? VG150_PREDICATE_GROUPS : null);
    if (groups && groups.length !== P + 1) fail(`groups must have P + 1 = ${P + 1} entries (index 0 unused), got ${groups.length}`);
    this.groups = groups ?? new Array(P + 1).fill(null);
    this.gtCounts = new Int32Array(P + 1);
    this.predImages = new Int32Array(P + 1);
    for (const k of this.ks) {
      for (const m of ['graph', 'noGraph'] as const) {
        this.recallSum[m].set(k, 0);
        this.predSum[m].set(k, new Float64Array(P + 1));
      }
    }
  }

  /** Adds one image. `image` names it in errors (default: its running number). */
  add(gt: SggGroundTruth, pred: SggPrediction, image: string | number = this.images): void {
    const P = this.numPredicates;
    const nGt = gt.labels.length;
    if (gt.boxes.length !== nGt * 4) fail(`image ${image}: GT boxes must be ${nGt}×4 values, got ${gt.boxes.length}`);
    if (gt.relations.length % 3 !== 0) fail(`image ${image}: GT relations must be m×3 values, got ${gt.relations.length}`);
    const mGt = gt.relations.length / 3;
    for (let r = 0; r < mGt; r++) {
      const s = gt.relations[3 * r], o = gt.relations[3 * r + 1], p = gt.relations[3 * r + 2];
      if (!(s >= 0 && s < nGt && o >= 0 && o < nGt)) fail(`image ${image}: GT relation ${r} points at entity (${s}, ${o}) of ${nGt}`);
      if (!(Number.isInteger(p) && p >= 1 && p <= P)) fail(`image ${image}: GT relation ${r} has predicate ${p}, expected 1..${P}`);
    }
    if (mGt === 0) return;
    if (pred.relScores.length % (P + 1) !== 0 || pred.pairs.length / 2 !== pred.relScores.length / (P + 1)) {
      fail(`image ${image}: relScores must be pairs (${pred.pairs.length / 2}) × ${P + 1} values, got ${pred.relScores.length}`);
    }
    const nPairs = pred.pairs.length / 2;
    if (nPairs === 0) return;

    let boxes: ArrayLike<number>, labels: ArrayLike<number>, objScores: ArrayLike<number>;
    if (this.mode === 'predcls') {
      boxes = gt.boxes; labels = gt.labels; objScores = new Float64Array(nGt).fill(1);
    } else {
      if (!pred.labels || !pred.objScores) fail(`image ${image}: ${this.mode} needs predicted labels and objScores`);
      labels = pred.labels; objScores = pred.objScores;
      boxes = this.mode === 'sgcls' ? (pred.boxes ?? gt.boxes) : (pred.boxes ?? fail(`image ${image}: sgdet needs predicted boxes`));
      if (this.mode === 'sgcls' && labels.length !== nGt) fail(`image ${image}: SGCls predicts labels for the ${nGt} GT boxes, got ${labels.length}`);
      if (objScores.length !== labels.length || boxes.length !== labels.length * 4) fail(`image ${image}: predicted boxes / labels / objScores disagree (${boxes.length / 4}, ${labels.length}, ${objScores.length})`);
    }
    const nPred = labels.length;
    for (let q = 0; q < nPairs; q++) {
      const s = pred.pairs[2 * q], o = pred.pairs[2 * q + 1];
      if (!(s >= 0 && s < nPred && o >= 0 && o < nPred)) fail(`image ${image}: predicted pair ${q} points at entity (${s}, ${o}) of ${nPred}`);
    }

    this.images++;
    const countHere = new Int32Array(P + 1);
    for (let r = 0; r < mGt; r++) countHere[gt.relations[3 * r + 2]]++;
    for (let p = 1; p <= P; p++) {
      this.gtCounts[p] += countHere[p];
      if (countHere[p] > 0) this.predImages[p]++;
    }
    const kMax = Math.max(...this.ks);

    // graph constraint: one predicate per pair, ranked by s_subj · s_pred · s_obj (stable on ties)
    const graph: RankedTriplet[] = [];
    const graphScore: number[] = [];
    for (let q = 0; q < nPairs; q++) {
      let best = 1, bestScore = -Infinity;
      for (let p = 1; p <= P; p++) {
        const v = pred.relScores[q * (P + 1) + p];
        if (v > bestScore) { bestScore = v; best = p; }
      }
      const s = pred.pairs[2 * q], o = pred.pairs[2 * q + 1];
      graph.push({ s, o, p: best });
      graphScore.push(objScores[s] * bestScore * objScores[o]);
    }
    const graphOrder = stableArgsortDesc(graphScore);
    const graphRanked = graphOrder.map((i) => graph[i]);

    // no graph constraint: all (pair, predicate) candidates, top max(K)
    const ngScore = new Float64Array(nPairs * P);
    for (let q = 0; q < nPairs; q++) {
      const so = objScores[pred.pairs[2 * q]] * objScores[pred.pairs[2 * q + 1]];
      for (let p = 1; p <= P; p++) ngScore[q * P + p - 1] = so * pred.relScores[q * (P + 1) + p];
    }
    const ngOrder = stableArgsortDesc(ngScore).slice(0, kMax);
    const ngRanked = ngOrder.map((i) => ({ s: pred.pairs[2 * Math.floor(i / P)], o: pred.pairs[2 * Math.floor(i / P) + 1], p: (i % P) + 1 }));

    for (const [m, ranked] of [['graph', graphRanked], ['noGraph', ngRanked]] as const) {
      const matches = this.match(gt, ranked, boxes, labels);
      for (const k of this.ks) {
        const hit = new Set<number>();
        for (let i = 0; i < Math.min(k, matches.length); i++) for (const g of matches[i]) hit.add(g);
        this.recallSum[m].set(k, this.recallSum[m].get(k)! + hit.size / mGt);
        const hitsHere = new Int32Array(P + 1);
        for (const g of hit) hitsHere[gt.relations[3 * g + 2]]++;
        const sums = this.predSum[m].get(k)!;
        for (let p = 1; p <= P; p++) if (countHere[p] > 0) sums[p] += hitsHere[p] / countHere[p];
      }
    }
  }

  /** For each ranked prediction, the GT relations it matches (labels equal, both IoUs ≥ threshold). */
  private match(gt: SggGroundTruth, ranked: readonly RankedTriplet[], boxes: ArrayLike<number>, labels: ArrayLike<number>): number[][] {
    const mGt = gt.relations.length / 3;
    const out: number[][] = ranked.map(() => []);
    ranked.forEach((t, i) => {
      for (let g = 0; g < mGt; g++) {
        const gs = gt.relations[3 * g], go = gt.relations[3 * g + 1], gp = gt.relations[3 * g + 2];
        if (gp !== t.p || gt.labels[gs] !== labels[t.s] || gt.labels[go] !== labels[t.o]) continue;
        if (boxIouLegacy(gt.boxes, gs, boxes, t.s) >= this.iouThreshold && boxIouLegacy(gt.boxes, go, boxes, t.o) >= this.iouThreshold) out[i].push(g);
      }
    });
    return out;
  }

  result(): SggResult {
    const P = this.numPredicates;
    const set = (m: 'graph' | 'noGraph'): RecallSet => {
      const out: RecallSet = { recall: {}, meanRecall: {}, perPredicate: {}, groups: {} };
      for (const k of this.ks) {
        out.recall[k] = this.images > 0 ? this.recallSum[m].get(k)! / this.images : NaN;
        const sums = this.predSum[m].get(k)!;
        const per = new Float64Array(P + 1).fill(NaN);
        let total = 0, present = 0;
        for (let p = 1; p <= P; p++) {
          if (this.predImages[p] > 0) { per[p] = sums[p] / this.predImages[p]; total += per[p]; present++; }
        }
        out.perPredicate[k] = per;
        out.meanRecall[k] = this.meanOver === 'all' ? total / P : present > 0 ? total / present : NaN;
        const g: Record<PredicateGroup, number> = { head: NaN, body: NaN, tail: NaN };
        for (const name of ['head', 'body', 'tail'] as const) {
          let sum = 0, n = 0;
          for (let p = 1; p <= P; p++) {
            if (this.groups[p] !== name) continue;
            if (Number.isNaN(per[p])) { if (this.meanOver === 'all') n++; continue; }
            sum += per[p]; n++;
          }
          g[name] = n > 0 ? sum / n : NaN;
        }
        out.groups[k] = g;
      }
      return out;
    };
    return { mode: this.mode, ks: [...this.ks], images: this.images, gtCounts: this.gtCounts.slice(), graph: set('graph'), noGraph: set('noGraph') };
  }
}

/** Indices sorting `v` descending; ties keep index order. */
function stableArgsortDesc(v: ArrayLike<number>): number[] {
  const idx = Array.from({ length: v.length }, (_, i) => i);
  idx.sort((a, b) => (v[b] - v[a]) || (a - b));
  return idx;
}

/** Head/body/tail groups from training predicate counts with PySGG's sizes cut by rank (5 head, 16 body for 50 predicates), scaled for other P. */
export function groupsByCount(counts: ArrayLike<number>, headShare = 5 / 50, bodyShare = 16 / 50): (PredicateGroup | null)[] {
  const P = counts.length - 1;
  const order = Array.from({ length: P }, (_, i) => i + 1).sort((a, b) => counts[b] - counts[a] || a - b);
  const nHead = Math.max(1, Math.round(P * headShare));
  const nBody = Math.max(1, Math.round(P * bodyShare));
  const out: (PredicateGroup | null)[] = new Array(P + 1).fill(null);
  order.forEach((p, r) => (out[p] = r < nHead ? 'head' : r < nHead + nBody ? 'body' : 'tail'));
  return out;
}

/** A compact text table of one result: R@K, mR@K, head/body/tail mR@K, with and without graph constraint. */
export function formatSggResult(r: SggResult, label = ''): string {
  const pct = (x: number) => (Number.isFinite(x) ? (100 * x).toFixed(2) : '-');
  const lines: string[] = [];
  for (const [name, s] of [['', r.graph], ['ng-', r.noGraph]] as const) {
    const cells = r.ks.map((k) => `${name}R@${k} ${pct(s.recall[k])}  ${name}mR@${k} ${pct(s.meanRecall[k])} (h ${pct(s.groups[k].head)} b ${pct(s.groups[k].body)} t ${pct(s.groups[k].tail)})`);
    lines.push(`${label}${r.mode} ${cells.join(' | ')}`);
  }
  return lines.join('\n');
}
