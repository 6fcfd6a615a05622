// BGNN: "Bipartite Graph Network with Adaptive Message Passing for Unbiased Scene Graph
// Generation" (Li, Zhang, Wan, He, CVPR 2021), following PySGG's BGNNContext / BGNNPredictor
// (SHTUPLUS/PySGG eb54749, pysgg/modeling/roi_heads/relation_head/model_bgnn.py,
// rel_proposal_network/models.py RelAwareRelFeature, configs/e2e_relBGNN_vg.yaml):
//
// - entity nodes e_i: ROI-aligned visual feature ‖ box-geometry embedding ‖ class embedding → H;
// - predicate nodes r_k for every subject–object pair: union-box feature ‖ pair spatial embedding,
//   plus the projected subject and object features → H;
// - relation confidence estimation (RCE, "hybrid" RelAwareRelFeature): from the (detached)
//   predicate feature and the pair's geometry + class embeddings, P class logits and one fg/bg
//   logit; s_k = σ(fg logit). Its own loss: sigmoid focal loss (α 0.2, γ 2) over [P ‖ fg], normalised
//   by the foreground count (PySGG's focal_fgbg_norm);
// - confidence gating, "learnable_scaling": s'_k = clamp(α s_k − α β, 0, 1), α = 3.12 learnable,
//   β = 0.06 fixed; only pairs with s'_k > 1e-4 send messages to entities;
// - adaptive message passing, both directions, from step-t features:
//     predicate → entity (per role, subject and object):
//       g_ik = mean_c σ(W [LN, ReLU](e_i ‖ r_k))_c · s'_k,  m_i = Σ_k g_ik r_k / |{k selected}|
//       e_i ← e_i + W_ih ReLU((m_i^subj + m_i^obj)/2) + W_hh ReLU(e_i)
//     entity → predicate:
//       g_k = mean_c σ(W' [LN, ReLU](r_k ‖ e_j))_c,  m_k = (g_k^s e_s + g_k^o e_o)/2
//       r_k ← r_k + W'_ih ReLU(m_k) + W'_hh ReLU(r_k)
//   `mpSteps` steps (PySGG GRAPH_ITERATION_NUM 3), each with its own parameters, inside
//   `refineIters` outer iterations (ITERATE_MP_PAIR_REFINE 3) that share those steps: each outer
//   iteration re-estimates the confidences with its own RCE module from the previous iteration's
//   (detached) predicate features, then restarts message passing from the initial node features,
//   as PySGG does;
// - predicate classifier on the final r_k plus the frequency bias (log p(pred | subj class, obj
//   class) from the training set, a learnable table as neural-motifs' FrequencyBias);
// - SGCls: an object classifier on the refined entity features.
// A batch of images is one graph with entity and pair indices offset per image, so graphs of any
// sizes run as one set of dispatches: gathers pick the node features of each edge, segment sums
// over a CSR index of the edges by target node (built once per batch; deterministic, no float
// atomics) aggregate the messages. Nothing is read back.

import { Module, ModuleList, parameter } from '../nn/module.js';
import { Linear } from '../nn/layers.js';
import { normal, ones as onesInit, zeros as zerosInit } from '../nn/init.js';
import {
  abs, add, addScalar, affine, clamp, concat, exp, gather, log, matmul, mean, mul, mulScalar, neg, pow, relu, rsqrt, sigmoid, softmax, square, sub, sum,
} from '../autograd/ops.js';
import { noGrad } from '../autograd/tape.js';
import { segmentSum } from '../autograd/segment-ops.js';
import { buildCSR, type CSR } from '../kernels/segment.js';
import { unary } from '../kernels/elementwise.js';
import { full, tensor, zeros } from '../kernels/creation.js';
import { check, fmtShape } from '../kernels/errors.js';
import { Tensor } from '../kernels/tensor.js';
import { backend, type Backend } from '../kernels/device.js';
import { crossEntropy } from '../longtail/losses.js';

/** A tensor with the same values and no gradient history (torch's .detach()). */
export const detach = (x: Tensor): Tensor => unary('affine', x, 1, 0);

/** torch.nn.LayerNorm over the last dimension, with affine weight and bias. */
export class LayerNorm extends Module {
  weight: Tensor;
  bias: Tensor;
  constructor(readonly dim: number, readonly eps = 1e-5, device: Backend = backend()) {
    super();
    this.weight = parameter(Tensor.empty([dim], 'f32', device, 'LayerNorm'));
    this.bias = parameter(Tensor.empty([dim], 'f32', device, 'LayerNorm'));
    onesInit(this.weight);
    zerosInit(this.bias);
  }
  forward(x: Tensor): Tensor {
    check(x.shape[x.rank - 1] === this.dim, 'LayerNorm', () => `expects [..., ${this.dim}], got ${fmtShape(x.shape)}`);
    const xc = sub(x, mean(x, -1, true));
    const inv = rsqrt(affine(mean(square(xc), -1, true), 1, this.eps));
    return add(mul(mul(xc, inv), this.weight), this.bias);
  }
}

/** PySGG MessagePassingUnit_v1: gate = mean_c σ(Linear(ReLU(LN(unary ‖ pair))))_c (× aux), output = pair · gate. */
export class MessagePassingUnit extends Module {
  norm: LayerNorm;
  w: Linear;
  constructor(readonly dim: number, readonly gateWidth: number, device: Backend = backend()) {
    super();
    this.norm = new LayerNorm(2 * dim, 1e-5, device);
    this.w = new Linear(2 * dim, gateWidth, { device });
  }
  /** Gate per row [E, 1]. */
  gate(unaryTerm: Tensor, pairTerm: Tensor, aux?: Tensor): Tensor {
    const g = mean(sigmoid(this.w.forward(relu(this.norm.forward(concat([unaryTerm, pairTerm], 1))))), 1, true);
    return aux ? mul(g, aux) : g;
  }
}

/** PySGG MessageFusion: W_ih ReLU(input) + W_hh ReLU(hidden) (added to hidden by the caller). */
export class MessageFusion extends Module {
  wih: Linear;
  whh: Linear;
  constructor(dim: number, device: Backend = backend()) {
    super();
    this.wih = new Linear(dim, dim, { device });
    this.whh = new Linear(dim, dim, { device });
  }
  forward(input: Tensor, hidden: Tensor): Tensor {
    return add(this.wih.forward(relu(input)), this.whh.forward(relu(hidden)));
  }
}

/**
 * The edges of a batch of graphs: pair k links subject subj[k] and object obj[k] (global entity
 * rows), with the CSR index of the pairs by subject and by object (kernels/segment.ts buildCSR),
 * built once per batch and shared by every message-passing step and its backward.
 */
export interface BatchGraph {
  numEntities: number;
  numPairs: number;
  /** i32 [R] */
  subj: Tensor;
  /** i32 [R] */
  obj: Tensor;
  subjCsr: CSR;
  objCsr: CSR;
}

/** Concatenates per-image pair lists (local indices, p×2 flat) into one graph with offset entity indices. */
export function batchGraph(images: readonly { numEntities: number; pairs: ArrayLike<number> }[], device: Backend = backend()): BatchGraph & { entityOffsets: Int32Array; pairOffsets: Int32Array } {
  const entityOffsets = new Int32Array(images.length + 1);
  const pairOffsets = new Int32Array(images.length + 1);
  images.forEach((im, i) => {
    check(im.pairs.length % 2 === 0, 'batchGraph', `image ${i}: pairs must be p×2 values, got ${im.pairs.length}`);
    entityOffsets[i + 1] = entityOffsets[i] + im.numEntities;
    pairOffsets[i + 1] = pairOffsets[i] + im.pairs.length / 2;
  });
  const R = pairOffsets[images.length], N = entityOffsets[images.length];
  const s = new Int32Array(R), o = new Int32Array(R);
  images.forEach((im, i) => {
    for (let k = 0; k < im.pairs.length / 2; k++) {
      const a = im.pairs[2 * k], b = im.pairs[2 * k + 1];
      check(a >= 0 && a < im.numEntities && b >= 0 && b < im.numEntities, 'batchGraph', `image ${i}: pair ${k} = (${a}, ${b}) points outside its ${im.numEntities} entities`);
      s[pairOffsets[i] + k] = entityOffsets[i] + a;
      o[pairOffsets[i] + k] = entityOffsets[i] + b;
    }
  });
  const subj = tensor(s, [R], { dtype: 'i32', device }), obj = tensor(o, [R], { dtype: 'i32', device });
  return { numEntities: N, numPairs: R, subj, obj, subjCsr: buildCSR(subj, N), objCsr: buildCSR(obj, N), entityOffsets, pairOffsets };
}

/** The parameters of one message-passing step (PySGG: gate_sub2pred, gate_obj2pred, gate_pred2sub, gate_pred2obj, the two fusions). */
export class BgnnStep extends Module {
  gate_sub2pred: MessagePassingUnit;
  gate_obj2pred: MessagePassingUnit;
  gate_pred2sub: MessagePassingUnit;
  gate_pred2obj: MessagePassingUnit;
  object_msg_fusion: MessageFusion;
  pred_msg_fusion: MessageFusion;
  constructor(dim: number, gateWidth: number, device: Backend = backend()) {
    super();
    this.gate_sub2pred = new MessagePassingUnit(dim, gateWidth, device);
    this.gate_obj2pred = new MessagePassingUnit(dim, gateWidth, device);
    this.gate_pred2sub = new MessagePassingUnit(dim, gateWidth, device);
    this.gate_pred2obj = new MessagePassingUnit(dim, gateWidth, device);
    this.object_msg_fusion = new MessageFusion(dim, device);
    this.pred_msg_fusion = new MessageFusion(dim, device);
  }

  /**
   * One step from (ent [N, H], rel [R, H]). `confidence` [R, 1]: the recalibrated s'_k gating the
   * predicate → entity messages (omit for ungated passing, every pair selected).
   */
  forward(ent: Tensor, rel: Tensor, graph: BatchGraph, confidence?: Tensor): { ent: Tensor; rel: Tensor } {
    const N = graph.numEntities, R = graph.numPairs, H = ent.shape[1];
    check(ent.rank === 2 && ent.shape[0] === N && rel.rank === 2 && rel.shape[0] === R && rel.shape[1] === H, 'BgnnStep',
      () => `expects ent [${N}, H] and rel [${R}, H], got ${fmtShape(ent.shape)} and ${fmtShape(rel.shape)}`);
    if (R === 0) {
      // no predicate nodes: entities receive zero messages
      const zero = zeros([N, H], { device: ent.device });
      return { ent: add(ent, this.object_msg_fusion.forward(zero, ent)), rel };
    }
    const entS = gather(ent, graph.subj, 0);
    const entO = gather(ent, graph.obj, 0);
    // predicate → entity, selected pairs only (s' > 1e-4), mean over each entity's selected pairs
    const selected = confidence ? noGrad(() => unary('sign', unary('relu', unary('affine', confidence, 1, -1e-4)))) : null;
    // segment sums over the CSR of the pairs by target entity (deterministic, no float atomics)
    const toEntity = (unit: MessagePassingUnit, csr: CSR, target: Tensor): Tensor => {
      const g = unit.gate(target, rel, confidence ? mul(confidence, selected!) : undefined);
      const summed = segmentSum(mul(rel, g), csr.offsets, csr.perm);
      const inv = noGrad(() => {
        const w = selected ?? full([R, 1], 1, { device: ent.device });
        const count = segmentSum(w, csr.offsets, csr.perm);
        return unary('reciprocal', unary('clamp', count, 1, Number.MAX_VALUE));
      });
      return mul(summed, inv);
    };
    const mSub = toEntity(this.gate_pred2sub, graph.subjCsr, entS);
    const mObj = toEntity(this.gate_pred2obj, graph.objCsr, entO);
    const entNext = add(ent, this.object_msg_fusion.forward(mulScalar(add(mSub, mObj), 0.5), ent));
    // entity → predicate, every pair
    const phraseS = mul(entS, this.gate_sub2pred.gate(rel, entS));
    const phraseO = mul(entO, this.gate_obj2pred.gate(rel, entO));
    const relNext = add(rel, this.pred_msg_fusion.forward(mulScalar(add(phraseS, phraseO), 0.5), rel));
    return { ent: entNext, rel: relNext };
  }
}

/** Box geometry of PySGG's encode_box_info: (x1/W, y1/H, x2/W, y2/H, cx/W, cy/H, w/W, h/H, w·h/(W·H)). */
export function encodeBoxInfo(boxes: ArrayLike<number>, width: number, height: number): Float32Array {
  const n = boxes.length / 4;
  const out = new Float32Array(n * 9);
  for (let i = 0; i < n; i++) {
    const x1 = boxes[4 * i], y1 = boxes[4 * i + 1], x2 = boxes[4 * i + 2], y2 = boxes[4 * i + 3];
    const w = x2 - x1 + 1, h = y2 - y1 + 1;
    out.set([x1 / width, y1 / height, x2 / width, y2 / height, (x1 + w / 2) / width, (y1 + h / 2) / height, w / width, h / height, (w * h) / (width * height)], 9 * i);
  }
  return out;
}

/** Pair spatial features: subject-to-object box deltas (dx/w_s, dy/h_s, log w_o/w_s, log h_o/h_s), their inverse, IoU, and the union box relative to the image. */
export const PAIR_SPATIAL_DIM = 13;
export function pairSpatialFeatures(boxes: ArrayLike<number>, pairs: ArrayLike<number>, width: number, height: number): Float32Array {
  const R = pairs.length / 2;
  const out = new Float32Array(R * PAIR_SPATIAL_DIM);
  const box = (i: number) => [boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3]];
  const delta = (a: number[], b: number[]) => {
    const wa = a[2] - a[0] + 1, ha = a[3] - a[1] + 1, wb = b[2] - b[0] + 1, hb = b[3] - b[1] + 1;
    return [((b[0] + b[2]) / 2 - (a[0] + a[2]) / 2) / wa, ((b[1] + b[3]) / 2 - (a[1] + a[3]) / 2) / ha, Math.log(wb / wa), Math.log(hb / ha)];
  };
  for (let k = 0; k < R; k++) {
    const a = box(pairs[2 * k]), b = box(pairs[2 * k + 1]);
    const iw = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]) + 1), ih = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]) + 1);
    const areaA = (a[2] - a[0] + 1) * (a[3] - a[1] + 1), areaB = (b[2] - b[0] + 1) * (b[3] - b[1] + 1);
    const iou = (iw * ih) / (areaA + areaB - iw * ih);
    const u = [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[2], b[2]), Math.max(a[3], b[3])];
    out.set([...delta(a, b), ...delta(b, a), iou, u[0] / width, u[1] / height, u[2] / width, u[3] / height], k * PAIR_SPATIAL_DIM);
  }
  return out;
}

/** Union box of each pair (xyxy), for ROI-aligning the predicate features. */
export function unionBoxes(boxes: ArrayLike<number>, pairs: ArrayLike<number>): Float32Array {
  const R = pairs.length / 2;
  const out = new Float32Array(R * 4);
  for (let k = 0; k < R; k++) {
    const i = pairs[2 * k], j = pairs[2 * k + 1];
    out[4 * k] = Math.min(boxes[4 * i], boxes[4 * j]);
    out[4 * k + 1] = Math.min(boxes[4 * i + 1], boxes[4 * j + 1]);
    out[4 * k + 2] = Math.max(boxes[4 * i + 2], boxes[4 * j + 2]);
    out[4 * k + 3] = Math.max(boxes[4 * i + 3], boxes[4 * j + 3]);
  }
  return out;
}

/**
 * Frequency statistics (neural-motifs / PySGG get_VG_statistics): counts[s][o][p] over training
 * relations, background column = pairs of overlapping boxes (+1), pred_dist = counts / row sum + 1e-3;
 * returns log pred_dist as a [C·C, P+1] table (C object classes including background).
 */
export function frequencyBiasTable(
  images: readonly { boxes: ArrayLike<number>; labels: ArrayLike<number>; relations: ArrayLike<number> }[],
  numObjClasses: number, numPredicates: number,
): Float32Array {
  const C = numObjClasses, P1 = numPredicates + 1;
  const fg = new Float64Array(C * C * P1);
  const bg = new Float64Array(C * C);
  for (const im of images) {
    for (let k = 0; k < im.relations.length; k += 3) {
      const s = im.labels[im.relations[k]], o = im.labels[im.relations[k + 1]], p = im.relations[k + 2];
      if (p > 0) fg[(s * C + o) * P1 + p]++;
    }
    const n = im.labels.length;
    const b = im.boxes;
    let any = false;
    const overl: [number, number][] = [];
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      if (i === j) continue;
      const iw = Math.min(b[4 * i + 2], b[4 * j + 2]) - Math.max(b[4 * i], b[4 * j]);
      const ih = Math.min(b[4 * i + 3], b[4 * j + 3]) - Math.max(b[4 * i + 1], b[4 * j + 1]);
      if (iw > 0 && ih > 0) { overl.push([i, j]); any = true; }
    }
    if (!any) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) overl.push([i, j]);
    for (const [i, j] of overl) bg[im.labels[i] * C + im.labels[j]]++;
  }
  const out = new Float32Array(C * C * P1);
  for (let so = 0; so < C * C; so++) {
    fg[so * P1] = bg[so] + 1;
    let total = 0;
    for (let p = 0; p < P1; p++) total += fg[so * P1 + p];
    for (let p = 0; p < P1; p++) out[so * P1 + p] = Math.log(fg[so * P1 + p] / total + 1e-3);
  }
  return out;
}

export interface BgnnConfig {
  /** Object classes including background (VG150: 151). */
  numObjClasses: number;
  /** Foreground predicates P (VG150: 50); logits have P + 1 columns. */
  numPredicates: number;
  /** Channels of the entity / union ROI features (flattened). */
  visualDim: number;
  hiddenDim?: number;
  embedDim?: number;
  geometryDim?: number;
  gateWidth?: number;
  /** Outer confidence-refinement iterations (PySGG ITERATE_MP_PAIR_REFINE, default 3). */
  refineIters?: number;
  /** Message-passing steps per outer iteration (PySGG GRAPH_ITERATION_NUM, default 3). */
  mpSteps?: number;
  /** false: the baseline relation classifier (initial features, no message passing, no RCE). */
  messagePassing?: boolean;
  /** log p(pred | subj, obj) table [C·C, P+1] (frequencyBiasTable); null: no frequency bias. */
  frequencyBias?: Float32Array | null;
  device?: Backend;
}

export interface BgnnInputs {
  graph: BatchGraph;
  /** [N, visualDim] */
  entityFeatures: Tensor;
  /** [N, 9] encodeBoxInfo */
  entityBoxInfo: Tensor;
  /** [R, visualDim] */
  unionFeatures: Tensor;
  /** [R, PAIR_SPATIAL_DIM] */
  pairSpatial: Tensor;
  /** PredCls: the given labels i32 [N]. SGCls: omitted (labels predicted). */
  entityLabels?: Tensor;
}

export interface BgnnOutputs {
  /** Object logits [N, C]: SGCls, from the refined entity features. */
  objLogits: Tensor | null;
  /** Object logits of the initial classifier [N, C] (SGCls; feeds the class embedding). */
  objLogitsInitial: Tensor | null;
  /** Predicate logits without the frequency bias [R, P+1]. */
  relLogits: Tensor;
  /** RCE logits per outer iteration [R, P+1] (P class logits ‖ fg/bg logit). */
  rceLogits: Tensor[];
  /** Recalibrated confidences s'_k [R, 1] of the last outer iteration (null without RCE). */
  confidence: Tensor | null;
}

/** RelAwareRelFeature ("hybrid"): P class logits and one fg/bg logit per pair. */
export class RelationConfidence extends Module {
  vis_embed: Linear;
  proposal_box_feat_extract: Linear;
  fusion_norm: LayerNorm;
  proposal_feat_fusion: Linear;
  cls_norm: LayerNorm;
  proposal_relness_cls_fc: Linear;
  fusion_layer: Linear;
  constructor(inputDim: number, pairDim: number, hidden: number, numPredicates: number, device: Backend) {
    super();
    this.vis_embed = new Linear(inputDim, hidden, { device });
    this.proposal_box_feat_extract = new Linear(pairDim, hidden, { device });
    this.fusion_norm = new LayerNorm(2 * hidden, 1e-5, device);
    this.proposal_feat_fusion = new Linear(2 * hidden, hidden, { device });
    this.cls_norm = new LayerNorm(hidden, 1e-5, device);
    this.proposal_relness_cls_fc = new Linear(hidden, numPredicates, { device });
    this.fusion_layer = new Linear(numPredicates, 1, { device });
  }
  /** Returns logits [R, P+1] (last column: fg/bg) and s = σ(fg logit) [R, 1]. */
  forward(relFeatures: Tensor, pairSymbolic: Tensor): { logits: Tensor; score: Tensor } {
    const vis = this.vis_embed.forward(relu(detach(relFeatures)));
    const geo = this.proposal_box_feat_extract.forward(relu(pairSymbolic));
    const rep = this.proposal_feat_fusion.forward(relu(this.fusion_norm.forward(concat([vis, geo], 1))));
    const cls = this.proposal_relness_cls_fc.forward(relu(this.cls_norm.forward(rep)));
    const bin = this.fusion_layer.forward(cls);
    return { logits: concat([cls, bin], 1), score: sigmoid(bin) };
  }
}

export class BGNN extends Module {
  readonly cfg: Required<Omit<BgnnConfig, 'frequencyBias' | 'device'>> & { device: Backend };
  obj_pos_embed1: Linear;
  obj_pos_embed2: Linear;
  obj_sem_embed: Tensor;
  obj_downdim_fc: Linear;
  rel_union_fc: Linear;
  rel_pair_fc: Linear;
  spatial_fc: Linear;
  obj_classifier_initial: Linear | null;
  obj_classifier: Linear | null;
  rel_classifier: Linear;
  freq_bias: Tensor | null;
  relation_conf_aware_models: ModuleList<RelationConfidence> | null;
  /** learnable α of the confidence recalibration (β = 0.06 fixed) */
  relness_alpha: Tensor | null;
  /** The mpSteps message-passing steps, shared by the outer iterations (PySGG indexes them by step only). */
  steps: ModuleList<BgnnStep> | null;
  static readonly RELNESS_BETA = 0.06;

  constructor(config: BgnnConfig) {
    super();
    const device = config.device ?? backend();
    this.cfg = {
      numObjClasses: config.numObjClasses, numPredicates: config.numPredicates, visualDim: config.visualDim,
      hiddenDim: config.hiddenDim ?? 512, embedDim: config.embedDim ?? 200, geometryDim: config.geometryDim ?? 128,
      gateWidth: config.gateWidth ?? 128, refineIters: config.refineIters ?? 3, mpSteps: config.mpSteps ?? 3,
      messagePassing: config.messagePassing ?? true, device,
    };
    const { numObjClasses: C, numPredicates: P, visualDim: V, hiddenDim: H, embedDim: E, geometryDim: G } = this.cfg;
    check(C >= 2 && P >= 1 && V >= 1, 'BGNN', `needs ≥ 2 object classes, ≥ 1 predicate and visual features, got C ${C}, P ${P}, visualDim ${V}`);
    this.obj_pos_embed1 = new Linear(9, G, { device });
    this.obj_pos_embed2 = new Linear(G, G, { device });
    // N(0, 1) like torch.nn.Embedding (PySGG starts from GloVe vectors; none here)
    this.obj_sem_embed = parameter(Tensor.empty([C, E], 'f32', device, 'BGNN'));
    normal(this.obj_sem_embed, 0, 1);
    this.obj_downdim_fc = new Linear(V + G + E, H, { device });
    this.spatial_fc = new Linear(PAIR_SPATIAL_DIM, G, { device });
    this.rel_union_fc = new Linear(V + G, H, { device });
    this.rel_pair_fc = new Linear(2 * H, H, { device });
    this.obj_classifier_initial = null;
    this.obj_classifier = null;
    this.rel_classifier = new Linear(H, P + 1, { device });
    this.freq_bias = null;
    if (config.frequencyBias) {
      check(config.frequencyBias.length === C * C * (P + 1), 'BGNN', `frequencyBias must have C·C·(P+1) = ${C * C * (P + 1)} entries, got ${config.frequencyBias.length}`);
      this.freq_bias = parameter(tensor(config.frequencyBias, [C * C, P + 1], { device }));
    }
    this.relation_conf_aware_models = null;
    this.relness_alpha = null;
    this.steps = null;
    if (this.cfg.messagePassing) {
      const pairDim = 2 * (G + E);
      this.relation_conf_aware_models = new ModuleList(Array.from({ length: this.cfg.refineIters }, (_, i) => new RelationConfidence(i === 0 ? H : H, pairDim, H, P, device)));
      this.relness_alpha = parameter(tensor([3.12], [1], { device }));
      this.steps = new ModuleList(Array.from({ length: this.cfg.mpSteps }, () => new BgnnStep(H, this.cfg.gateWidth, device)));
    }
  }

  /** SGCls heads (object classification); PredCls models do not need them. */
  enableObjectClassifier(): this {
    const { numObjClasses: C, visualDim: V, hiddenDim: H, geometryDim: G, device } = this.cfg;
    this.obj_classifier_initial = new Linear(V + G, C, { device });
    this.obj_classifier = new Linear(H, C, { device });
    return this;
  }

  forward(x: BgnnInputs): BgnnOutputs {
    const { graph } = x;
    const N = graph.numEntities, R = graph.numPairs;
    check(x.entityFeatures.shape[0] === N && x.entityBoxInfo.shape[0] === N && x.unionFeatures.shape[0] === R && x.pairSpatial.shape[0] === R, 'BGNN',
      () => `inputs disagree with the graph (${N} entities, ${R} pairs): entity ${fmtShape(x.entityFeatures.shape)}, box info ${fmtShape(x.entityBoxInfo.shape)}, union ${fmtShape(x.unionFeatures.shape)}, spatial ${fmtShape(x.pairSpatial.shape)}`);
    const pos = this.obj_pos_embed2.forward(relu(this.obj_pos_embed1.forward(x.entityBoxInfo)));
    let sem: Tensor;
    // the initial object classifier (PySGG: the detector's box head) runs whenever it exists, so it trains in PredCls batches too
    const objLogitsInitial = this.obj_classifier_initial ? this.obj_classifier_initial.forward(concat([x.entityFeatures, pos], 1)) : null;
    if (x.entityLabels) {
      sem = gather(this.obj_sem_embed, x.entityLabels, 0);
    } else {
      check(objLogitsInitial, 'BGNN', 'SGCls (no entityLabels) needs enableObjectClassifier()');
      // PySGG: softmax(detached detector logits) @ embedding
      sem = matmul(softmax(detach(objLogitsInitial)), this.obj_sem_embed);
    }
    const ent0 = relu(this.obj_downdim_fc.forward(concat([x.entityFeatures, pos, sem], 1)));
    let rel0: Tensor;
    if (R > 0) {
      const spatial = relu(this.spatial_fc.forward(x.pairSpatial));
      const pairEnt = concat([gather(ent0, graph.subj, 0), gather(ent0, graph.obj, 0)], 1);
      rel0 = relu(add(this.rel_union_fc.forward(concat([x.unionFeatures, spatial], 1)), this.rel_pair_fc.forward(pairEnt)));
    } else {
      rel0 = zeros([0, this.cfg.hiddenDim], { device: x.entityFeatures.device });
    }
    let ent = ent0, rel = rel0;
    const rceLogits: Tensor[] = [];
    let confidence: Tensor | null = null;
    if (this.steps && R > 0) {
      const symbolic = concat([gather(pos, graph.subj, 0), gather(sem, graph.subj, 0), gather(pos, graph.obj, 0), gather(sem, graph.obj, 0)], 1);
      let relPrev = rel0;
      for (let it = 0; it < this.cfg.refineIters; it++) {
        const { logits, score } = this.relation_conf_aware_models!.at(it).forward(relPrev, symbolic);
        rceLogits.push(logits);
        // learnable scaling: clamp(α s − α β, 0, 1)
        confidence = clamp(mul(affine(score, 1, -BGNN.RELNESS_BETA), this.relness_alpha!), 0, 1);
        let e = ent0, r = rel0;
        for (const step of this.steps) ({ ent: e, rel: r } = step.forward(e, r, graph, confidence));
        ent = e;
        rel = r;
        relPrev = r;
      }
    }
    const objLogits = this.obj_classifier ? this.obj_classifier.forward(ent) : null;
    return { objLogits, objLogitsInitial, relLogits: this.rel_classifier.forward(rel), rceLogits, confidence };
  }

  /**
   * Frequency-bias rows [R, P+1] for the pairs' subject and object labels (host arrays: the given
   * labels in PredCls, the predicted ones in SGCls evaluation, which reads the object logits back).
   */
  frequencyBias(subjLabels: ArrayLike<number>, objLabels: ArrayLike<number>): Tensor | null {
    if (!this.freq_bias) return null;
    const C = this.cfg.numObjClasses, R = subjLabels.length;
    check(objLabels.length === R, 'BGNN.frequencyBias', `subject and object labels differ in length (${R}, ${objLabels.length})`);
    const idx = new Int32Array(R);
    for (let k = 0; k < R; k++) {
      check(subjLabels[k] >= 0 && subjLabels[k] < C && objLabels[k] >= 0 && objLabels[k] < C, 'BGNN.frequencyBias', `pair ${k}: labels (${subjLabels[k]}, ${objLabels[k]}) outside 0..${C - 1}`);
      idx[k] = subjLabels[k] * C + objLabels[k];
    }
    return gather(this.freq_bias, tensor(idx, [R], { dtype: 'i32', device: this.freq_bias.device }), 0);
  }
}

/** Sigmoid focal loss (torchvision.ops.sigmoid_focal_loss): α_t (1 − p_t)^γ BCE, elementwise. */
function sigmoidFocal(z: Tensor, y: Tensor, alpha: number, gamma: number): Tensor {
  const p = sigmoid(z);
  // BCE with logits: softplus(z) − y z, softplus stably
  const sp = add(relu(z), unaryLog1pExpNegAbs(z));
  const ce = sub(sp, mul(y, z));
  const pt = add(mul(p, y), mul(affine(p, -1, 1), affine(y, -1, 1)));
  const mod = gamma === 0 ? null : pow(relu(affine(pt, -1, 1)), gamma);
  const at = affine(y, 2 * alpha - 1, 1 - alpha);
  return mul(at, mod ? mul(mod, ce) : ce);
}

const unaryLog1pExpNegAbs = (z: Tensor): Tensor => log(addScalar(exp(neg(abs(z))), 1));

/**
 * RCE loss (PySGG focal_fgbg_norm on the hybrid logits): sigmoid focal loss (α 0.2, γ 2) of the
 * P class logits against the one-hot predicate (all zero for background pairs) and of the fg/bg
 * logit against "has a relation", summed and divided by the number of foreground pairs (≥ 1).
 * Pairs labelled −1 (dropped by resampling) are ignored. labels: [R] on the host, 0 = background.
 */
export function rceLoss(logits: Tensor, labels: ArrayLike<number>, numPredicates: number, alpha = 0.2, gamma = 2): Tensor {
  const R = labels.length, P1 = numPredicates + 1;
  check(logits.rank === 2 && logits.shape[0] === R && logits.shape[1] === P1, 'rceLoss', () => `logits must be [${R}, ${P1}], got ${fmtShape(logits.shape)}`);
  const target = new Float32Array(R * P1);
  const weight = new Float32Array(R * P1);
  let fg = 0;
  for (let k = 0; k < R; k++) {
    const l = labels[k];
    if (l < 0) continue;
    weight.fill(1, k * P1, (k + 1) * P1);
    if (l > 0) { target[k * P1 + l - 1] = 1; target[k * P1 + P1 - 1] = 1; fg++; }
  }
  const y = tensor(target, [R, P1], { device: logits.device });
  const w = tensor(weight, [R, P1], { device: logits.device });
  return mulScalar(sum(mul(sigmoidFocal(logits, y, alpha, gamma), w)), 1 / Math.max(fg, 1));
}

/** Predicate cross-entropy over the pairs with a label ≥ 0 (−1 ignored); labels on the host. */
export function relationLoss(relLogits: Tensor, labels: ArrayLike<number>): Tensor {
  const R = labels.length;
  const keep: number[] = [];
  for (let k = 0; k < R; k++) if (labels[k] >= 0) keep.push(k);
  if (keep.length === R) return crossEntropy(relLogits, tensor(Int32Array.from(labels), [R], { dtype: 'i32', device: relLogits.device }));
  const idx = tensor(Int32Array.from(keep), [keep.length], { dtype: 'i32', device: relLogits.device });
  return crossEntropy(gather(relLogits, idx, 0), tensor(Int32Array.from(keep, (k) => labels[k]), [keep.length], { dtype: 'i32', device: relLogits.device }));
}
