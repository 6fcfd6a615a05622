// The embedded synthetic scene-graph set of `node tasks/vg-sgg.js`: procedurally drawn images of
// objects whose relations follow from geometry and category, with VG150 object and predicate names.
// Deterministic: scene i of a split depends only on (seed, split, i).
//
// Each image holds 2–3 "templates", each a (subject, predicate, object) triplet placed in its own
// vertical slot of the image by a geometric rule of the predicate (cup ON table: the cup's bottom
// rests on the table top; cup ABOVE table: a gap between them; man RIDING horse: the man's lower
// part overlaps the horse's top; dog UNDER table: inside the table's span, below its top, drawn
// behind it; ...). Most category pairs carry several predicates, a frequent and a rare one
// (cup–table: on / near / above; bag–table: on / near / under / hanging from; man–horse: near /
// behind / riding; man–bag: holding / carrying), so geometry, not only the classes, decides. Predicates are drawn with probability ∝ (VG150 count)^½:
// VG150's ranking, with the 262:1 imbalance between `on` and `parked on` scaled down to 16:1.
// Pixels: a sky/ground background, each object a category-coloured shape (rectangle, ellipse or
// triangle) with per-instance brightness jitter and pixel noise, drawn back to front.
//
// scripts/make-sgg-scenes.ts prints the predicate counts of the default splits.

import { DataRng } from '../data/rng.js';
import { VG150_OBJECTS, VG150_PREDICATES, VG150_PREDICATE_COUNTS } from '../scene-graph/vg150-table.js';

export const SCENE_SIZE = 64;

/** Object classes of the synthetic set (VG150 names); index 0 is background. */
export const SCENE_OBJECTS = ['__background__', 'man', 'table', 'cup', 'hat', 'shirt', 'horse', 'building', 'window', 'street', 'car', 'bag', 'lamp', 'dog', 'chair'] as const;
/** Predicates of the synthetic set (VG150 names); index 0 is background. */
export const SCENE_PREDICATES = ['__background__', 'on', 'has', 'in', 'of', 'wearing', 'near', 'above', 'behind', 'holding', 'under', 'sitting on', 'riding', 'hanging from', 'carrying', 'parked on'] as const;

type Obj = (typeof SCENE_OBJECTS)[number];
type Pred = (typeof SCENE_PREDICATES)[number];
const objIndex = (o: Obj) => SCENE_OBJECTS.indexOf(o);
const predIndex = (p: Pred) => SCENE_PREDICATES.indexOf(p);

/** VG150 count of each synthetic predicate (index 0 unused). */
export const SCENE_PREDICATE_VG_COUNTS: number[] = SCENE_PREDICATES.map((p, i) => (i === 0 ? 0 : VG150_PREDICATE_COUNTS[VG150_PREDICATES.indexOf(p)]));
for (const o of SCENE_OBJECTS.slice(1)) if (!VG150_OBJECTS.includes(o)) throw new Error(`synthetic object ${o} is not a VG150 class`);
for (let i = 1; i < SCENE_PREDICATES.length; i++) if (!(SCENE_PREDICATE_VG_COUNTS[i] > 0)) throw new Error(`synthetic predicate ${SCENE_PREDICATES[i]} is not a VG150 predicate`);

export interface SceneImage {
  width: number;
  height: number;
  /** xyxy, n×4 */
  boxes: Float32Array;
  /** 1-based classes of SCENE_OBJECTS */
  labels: Int32Array;
  /** (subject, object, predicate) m×3 */
  relations: Int32Array;
  /** CHW float pixels in [0, 1] */
  pixels: Float32Array;
}

type Box = [number, number, number, number];
interface Placed { cls: Obj; box: Box; depth: number }

const COLORS: Record<Obj, [number, number, number]> = {
  __background__: [0, 0, 0], man: [0.85, 0.55, 0.4], table: [0.55, 0.35, 0.15], cup: [0.95, 0.95, 0.95], hat: [0.1, 0.1, 0.6],
  shirt: [0.9, 0.2, 0.2], horse: [0.45, 0.25, 0.1], building: [0.6, 0.6, 0.65], window: [0.4, 0.8, 0.95], street: [0.25, 0.25, 0.25],
  car: [0.1, 0.5, 0.9], bag: [0.2, 0.7, 0.3], lamp: [1, 0.9, 0.2], dog: [0.8, 0.7, 0.5], chair: [0.5, 0.2, 0.5],
};
const SHAPE: Record<Obj, 'rect' | 'ellipse' | 'tri'> = {
  __background__: 'rect', man: 'ellipse', table: 'rect', cup: 'rect', hat: 'tri', shirt: 'rect', horse: 'ellipse', building: 'rect',
  window: 'rect', street: 'rect', car: 'rect', bag: 'ellipse', lamp: 'tri', dog: 'ellipse', chair: 'rect',
};

interface Template {
  pred: Pred;
  subj: Obj;
  obj: Obj;
  /** Places subject and object inside the slot [x0, x1) (ground at y = groundY); depth: larger is drawn later (in front). */
  place(r: DataRng, x0: number, x1: number, groundY: number): { s: Box; o: Box; sDepth: number; oDepth: number };
}

const U = (r: DataRng, lo: number, hi: number) => r.uniform(lo, hi);
const clampBox = (b: Box): Box => [Math.max(0, b[0]), Math.max(0, b[1]), Math.min(SCENE_SIZE - 1, b[2]), Math.min(SCENE_SIZE - 1, b[3])].map((v) => Math.round(v)) as Box;

/** An object of width w, height h standing on the ground at horizontal centre cx. */
const standing = (cx: number, w: number, h: number, groundY: number): Box => [cx - w / 2, groundY - h, cx + w / 2, groundY];

/** [min width, max width, min height, max height] of each category, in pixels of the 64×64 scene. */
const SIZE: Record<Obj, [number, number, number, number]> = {
  __background__: [1, 1, 1, 1], man: [7, 10, 20, 27], table: [14, 20, 8, 12], cup: [3, 5, 4, 6], hat: [6, 8, 3, 5], shirt: [5, 7, 6, 9],
  horse: [15, 20, 11, 15], building: [15, 20, 26, 36], window: [4, 6, 4, 6], street: [18, 30, 5, 8], car: [14, 19, 9, 12], bag: [4, 6, 5, 7],
  lamp: [5, 7, 4, 6], dog: [6, 8, 4, 7], chair: [8, 11, 9, 12],
};
type Placer = (r: DataRng, s: Obj, o: Obj, x0: number, x1: number, g: number) => { s: Box; o: Box; sFront: boolean };
const dims = (r: DataRng, c: Obj, maxW: number): [number, number] => {
  const [a, b, h0, h1] = SIZE[c];
  return [Math.min(U(r, a, b), maxW), U(r, h0, h1)];
};
/** o stands on the ground, centred in the slot (or at a random position when it leaves room). */
const ground = (r: DataRng, c: Obj, x0: number, x1: number, g: number, room = 0): Box => {
  const [w, h] = dims(r, c, x1 - x0 - 2 - room);
  const cx = U(r, x0 + w / 2 + room / 2 + 1, x1 - w / 2 - room / 2 - 1);
  return standing(cx, w, h, g);
};
const within = (r: DataRng, o: Box, w: number) => U(r, o[0], Math.max(o[0], o[2] - w));
const PLACERS: Record<string, Placer> = {
  // s rests on o's top edge
  onTop: (r, s, o, x0, x1, g) => { const ob = ground(r, o, x0, x1, g); const [w, h] = dims(r, s, ob[2] - ob[0]); const x = within(r, ob, w); return { o: ob, s: [x, ob[1] - h + 1, x + w, ob[1] + 1], sFront: true }; },
  // s floats over o with a gap of 4–12 px
  above: (r, s, o, x0, x1, g) => { const ob = ground(r, o, x0, x1, g); const [w, h] = dims(r, s, ob[2] - ob[0]); const x = within(r, ob, w), gap = U(r, 4, 12); return { o: ob, s: [x, ob[1] - gap - h, x + w, ob[1] - gap], sFront: true }; },
  // s stands on the ground inside o's span, lower than o's top, drawn behind o
  under: (r, s, o, x0, x1, g) => { const ob = ground(r, o, x0, x1, g); const [w, h] = dims(r, s, ob[2] - ob[0] - 2); const hh = Math.min(h, ob[3] - ob[1] - 2); const x = within(r, [ob[0] + 1, 0, ob[2] - 1, 0], w); return { o: ob, s: [x, g - hh, x + w, g], sFront: false }; },
  // side by side on the ground, 1–5 px apart
  near: (r, s, o, x0, x1, g) => {
    const span = x1 - x0 - 2;
    const [sw, sh] = dims(r, s, span * 0.4), [ow, oh] = dims(r, o, span * 0.55), gap = U(r, 1, 5);
    const start = x0 + 1 + U(r, 0, Math.max(0, span - sw - ow - gap));
    const left = r.below(2) === 0;
    const sx = left ? start : start + ow + gap, ox = left ? start + sw + gap : start;
    return { s: standing(sx + sw / 2, sw, sh, g), o: standing(ox + ow / 2, ow, oh, g), sFront: true };
  },
  // s stands further back (raised ground line) inside o's span, partly hidden by o
  behind: (r, s, o, x0, x1, g) => { const ob = ground(r, o, x0, x1, g); const [w, h] = dims(r, s, ob[2] - ob[0]); const x = within(r, ob, w); const lift = (ob[3] - ob[1]) * U(r, 0.3, 0.6); return { o: ob, s: [x, g - lift - h, x + w, g - lift], sFront: false }; },
  // s lies inside o's upper half
  inside: (r, s, o, x0, x1, g) => { const ob = ground(r, o, x0, x1, g); const [w, h] = dims(r, s, ob[2] - ob[0] - 3); const hh = Math.min(h, (ob[3] - ob[1]) / 2 - 1); const x = within(r, [ob[0] + 1, 0, ob[2] - 1, 0], w), y = U(r, ob[1] + 1, ob[1] + (ob[3] - ob[1]) / 2 - hh); return { o: ob, s: [x, y, x + w, y + hh], sFront: true }; },
  // o lies inside s's upper half (s "has" o)
  contains: (r, s, o, x0, x1, g) => { const p = PLACERS.inside(r, o, s, x0, x1, g); return { s: p.o, o: p.s, sFront: false }; },
  // s's lower third overlaps o's top (a rider)
  riding: (r, s, o, x0, x1, g) => { const ob = ground(r, o, x0, x1, g); const [w, h] = dims(r, s, ob[2] - ob[0]); const x = within(r, [ob[0] + 2, 0, ob[2] - 2, 0], w), bottom = ob[1] + (ob[3] - ob[1]) * U(r, 0.3, 0.45); return { o: ob, s: [x, bottom - h * 0.75, x + w, bottom], sFront: true }; },
  // s's bottom sinks 40 % into o (a seat)
  sitting: (r, s, o, x0, x1, g) => { const ob = ground(r, o, x0, x1, g); const [w, h] = dims(r, s, ob[2] - ob[0]); const cx = (ob[0] + ob[2]) / 2, bottom = ob[1] + (ob[3] - ob[1]) * 0.4; return { o: ob, s: [cx - w / 2, bottom - h * 0.8, cx + w / 2, bottom], sFront: true }; },
  // o sits on s's side edge at 35–50 % of s's height (in the hand)
  holding: (r, s, o, x0, x1, g) => { const sb = ground(r, s, x0, x1, g, 8); const [w, h] = dims(r, o, 6); const edge = r.below(2) === 0 ? sb[0] : sb[2], y = sb[1] + (sb[3] - sb[1]) * U(r, 0.35, 0.5); return { s: sb, o: [edge - w / 2, y, edge + w / 2, y + h], sFront: false }; },
  // o hangs low at s's side, 60–75 % of s's height
  carrying: (r, s, o, x0, x1, g) => { const sb = ground(r, s, x0, x1, g, 8); const [w, h] = dims(r, o, 6); const edge = r.below(2) === 0 ? sb[0] : sb[2], y = sb[1] + (sb[3] - sb[1]) * U(r, 0.6, 0.72); return { s: sb, o: [edge - w / 2, y, edge + w / 2, y + h], sFront: false }; },
  // s hangs from o's top corner, below the top edge, centred on o's side edge
  hanging: (r, s, o, x0, x1, g) => { const ob = ground(r, o, x0, x1, g, 8); const [w, h] = dims(r, s, 6); const edge = r.below(2) === 0 ? ob[0] : ob[2]; return { o: ob, s: [edge - w / 2, ob[1] + 1, edge + w / 2, ob[1] + 1 + h], sFront: true }; },
  // a hat on the head: s on top of o's box (s = hat, o = man)
  onHead: (r, s, o, x0, x1, g) => { const ob = ground(r, o, x0, x1, g); const [w, h] = dims(r, s, 9); const cx = (ob[0] + ob[2]) / 2; return { o: ob, s: [cx - w / 2, ob[1] - h + 2, cx + w / 2, ob[1] + 2], sFront: true }; },
  // worn: o covers s's torso (shirt) or sits on its head (hat)
  worn: (r, s, o, x0, x1, g) => {
    const sb = ground(r, s, x0, x1, g);
    if (o === 'hat') { const p = PLACERS.onHead(r, o, s, x0, x1, g); return { s: p.o, o: p.s, sFront: false }; }
    const h = sb[3] - sb[1];
    return { s: sb, o: [sb[0] + 1, sb[1] + h * 0.3, sb[2] - 1, sb[1] + h * 0.6], sFront: false };
  },
  // a car on the street strip
  parked: (r, s, _o, x0, x1, g) => { const ob: Box = [x0 + 1, g - U(r, 5, 8), x1 - 1, Math.min(SCENE_SIZE - 1, g + 4)]; const [w, h] = dims(r, s, x1 - x0 - 4); const x = U(r, x0 + 2, x1 - 2 - w); return { o: ob, s: [x, g - h, x + w, g], sFront: true }; },
};

/** (predicate, subject, object, geometry) — several predicates share category pairs, so geometry decides. */
const TEMPLATE_LIST: [Pred, Obj, Obj, string][] = [
  ['on', 'cup', 'table', 'onTop'], ['on', 'bag', 'table', 'onTop'], ['on', 'hat', 'man', 'onHead'], ['on', 'dog', 'car', 'onTop'], ['on', 'cup', 'chair', 'onTop'],
  ['has', 'building', 'window', 'contains'], ['has', 'car', 'window', 'contains'],
  ['in', 'dog', 'car', 'inside'], ['in', 'man', 'building', 'inside'],
  ['of', 'window', 'building', 'inside'], ['of', 'window', 'car', 'inside'],
  ['wearing', 'man', 'shirt', 'worn'], ['wearing', 'man', 'hat', 'worn'],
  ['near', 'man', 'car', 'near'], ['near', 'dog', 'man', 'near'], ['near', 'cup', 'table', 'near'], ['near', 'bag', 'table', 'near'],
  ['near', 'man', 'horse', 'near'], ['near', 'dog', 'car', 'near'], ['near', 'man', 'chair', 'near'], ['near', 'lamp', 'table', 'near'],
  ['above', 'lamp', 'table', 'above'], ['above', 'cup', 'table', 'above'], ['above', 'lamp', 'chair', 'above'],
  ['behind', 'man', 'table', 'behind'], ['behind', 'man', 'horse', 'behind'], ['behind', 'dog', 'chair', 'behind'], ['behind', 'man', 'car', 'behind'],
  ['holding', 'man', 'cup', 'holding'], ['holding', 'man', 'bag', 'holding'],
  ['under', 'dog', 'table', 'under'], ['under', 'bag', 'table', 'under'], ['under', 'dog', 'chair', 'under'],
  ['sitting on', 'man', 'chair', 'sitting'], ['sitting on', 'man', 'table', 'sitting'],
  ['riding', 'man', 'horse', 'riding'],
  ['hanging from', 'bag', 'chair', 'hanging'], ['hanging from', 'bag', 'table', 'hanging'],
  ['carrying', 'man', 'bag', 'carrying'], ['carrying', 'man', 'cup', 'carrying'],
  ['parked on', 'car', 'street', 'parked'],
];
const TEMPLATES: Template[] = TEMPLATE_LIST.map(([pred, subj, obj, geometry]) => ({
  pred, subj, obj,
  place(r, x0, x1, g) {
    const p = PLACERS[geometry](r, subj, obj, x0, x1, g);
    return { s: p.s, o: p.o, sDepth: p.sFront ? 2 : 1, oDepth: p.sFront ? 1 : 2 };
  },
}));

/** Probability of each predicate (index 0 unused): ∝ VG150 count^exponent. */
export function scenePredicateProbabilities(exponent = 0.5): Float64Array {
  const w = SCENE_PREDICATE_VG_COUNTS.map((c, i) => (i === 0 ? 0 : c ** exponent));
  const total = w.reduce((a, b) => a + b, 0);
  return Float64Array.from(w, (v) => v / total);
}

function drawShape(px: Float32Array, box: Box, color: [number, number, number], shape: 'rect' | 'ellipse' | 'tri', r: DataRng): void {
  const S = SCENE_SIZE, [x1, y1, x2, y2] = box;
  const jitter = U(r, 0.8, 1.15);
  const cx = (x1 + x2) / 2, cy = (y1 + y2) / 2, rx = Math.max(0.5, (x2 - x1) / 2), ry = Math.max(0.5, (y2 - y1) / 2);
  for (let y = Math.max(0, Math.floor(y1)); y <= Math.min(S - 1, Math.ceil(y2)); y++) {
    for (let x = Math.max(0, Math.floor(x1)); x <= Math.min(S - 1, Math.ceil(x2)); x++) {
      let inside = true;
      if (shape === 'ellipse') inside = ((x - cx) / (rx + 0.5)) ** 2 + ((y - cy) / (ry + 0.5)) ** 2 <= 1;
      else if (shape === 'tri') inside = Math.abs(x - cx) <= (rx + 0.5) * ((y - y1 + 0.5) / (y2 - y1 + 1));
      if (!inside) continue;
      for (let c = 0; c < 3; c++) px[c * S * S + y * S + x] = Math.min(1, Math.max(0, color[c] * jitter + U(r, -0.06, 0.06)));
    }
  }
}

export interface SceneSetOptions {
  seed?: number;
  /** predicate sampling exponent on VG150 counts (default 0.5) */
  exponent?: number;
}

/** Scene `index` of split `split` (0 train, 1 test). */
export function generateScene(split: number, index: number, { seed = 0, exponent = 0.5 }: SceneSetOptions = {}): SceneImage {
  const r = new DataRng(seed, split, index);
  const S = SCENE_SIZE;
  const probs = scenePredicateProbabilities(exponent);
  const nTemplates = 2 + r.below(2);
  const groundY = Math.round(U(r, 48, 58));
  const placed: Placed[] = [];
  const rels: number[] = [];
  const slot = S / nTemplates;
  for (let t = 0; t < nTemplates; t++) {
    let u = r.random(), p = 1;
    while (p < probs.length - 1 && u >= probs[p]) { u -= probs[p]; p++; }
    const choices = TEMPLATES.filter((tp) => predIndex(tp.pred) === p);
    const tp = choices[r.below(choices.length)];
    const g = tp.pred === 'parked on' ? Math.min(groundY, S - 6) : groundY;
    const { s, o, sDepth, oDepth } = tp.place(r, t * slot + 1, (t + 1) * slot - 1, g);
    const si = placed.length;
    placed.push({ cls: tp.subj, box: clampBox(s), depth: sDepth * 10 + t }, { cls: tp.obj, box: clampBox(o), depth: oDepth * 10 + t });
    rels.push(si, si + 1, p);
  }
  // pixels: sky above the ground line, ground below, noise; objects back to front
  const px = new Float32Array(3 * S * S);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) {
    const sky = y < groundY;
    const base = sky ? [0.75, 0.85, 0.95] : [0.45, 0.6, 0.3];
    for (let c = 0; c < 3; c++) px[c * S * S + y * S + x] = base[c] + U(r, -0.05, 0.05);
  }
  const order = placed.map((_, i) => i).sort((a, b) => placed[a].depth - placed[b].depth || a - b);
  for (const i of order) drawShape(px, placed[i].box, COLORS[placed[i].cls], SHAPE[placed[i].cls], r);
  const boxes = new Float32Array(placed.length * 4);
  placed.forEach((p, i) => {
    const b = p.box;
    if (b[2] <= b[0]) b[2] = b[0] + 1;
    if (b[3] <= b[1]) b[3] = b[1] + 1;
    boxes.set(b, 4 * i);
  });
  return { width: S, height: S, boxes, labels: Int32Array.from(placed, (p) => objIndex(p.cls)), relations: Int32Array.from(rels), pixels: px };
}

export function generateScenes(split: number, count: number, options: SceneSetOptions = {}): SceneImage[] {
  return Array.from({ length: count }, (_, i) => generateScene(split, i, options));
}

/** Predicate instance counts of a list of scenes (index 0 unused). */
export function scenePredicateCounts(scenes: readonly { relations: ArrayLike<number> }[]): Int32Array {
  const out = new Int32Array(SCENE_PREDICATES.length);
  for (const s of scenes) for (let k = 2; k < s.relations.length; k += 3) out[s.relations[k]]++;
  return out;
}
