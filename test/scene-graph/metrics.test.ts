import { describe, expect, it } from 'vitest';
import { SggEvaluator, boxIouLegacy, groupsByCount, formatSggResult } from '../../scene-graph/metrics.js';
import { VG150_PREDICATE_GROUPS, VG150_PREDICATES, VG150_PREDICATE_COUNTS } from '../../scene-graph/vg150-table.js';

// Image A: three entities, GT (0,1,p1) (1,2,p2) (0,2,p3); P = 3.
const A = {
  boxes: [0, 0, 9, 9, 20, 20, 29, 29, 40, 0, 49, 9],
  labels: [1, 2, 3],
  relations: [0, 1, 1, 1, 2, 2, 0, 2, 3],
};
// predicted pairs and scores [bg, p1, p2, p3]
const A_PRED = {
  pairs: [0, 1, 1, 2, 0, 2, 1, 0],
  relScores: [
    0.1, 0.6, 0.3, 0.1, // (0,1): p1 .6 — correct
    0.0, 0.5, 0.4, 0.1, // (1,2): p1 .5 wrong, the GT p2 is second (.4)
    0.0, 0.1, 0.1, 0.8, // (0,2): p3 .8 — correct
    0.0, 0.7, 0.2, 0.1, // (1,0): p1 .7 — no GT for this pair
  ],
};
// Image B: two entities of the same class, GT (0,1,p1) (1,0,p2).
const B = { boxes: [0, 0, 9, 9, 5, 5, 19, 19], labels: [1, 1], relations: [0, 1, 1, 1, 0, 2] };
const B_PRED = { pairs: [0, 1, 1, 0], relScores: [0, 0.9, 0.05, 0.05, 0, 0.2, 0.3, 0.5] };
const GROUPS = [null, 'head', 'body', 'tail'] as const;

describe('SggEvaluator, hand-worked', () => {
  it('PredCls with graph constraint: one predicate per pair, ranked by its score', () => {
    const ev = new SggEvaluator({ numPredicates: 3, mode: 'predcls', ks: [1, 2, 3, 4], groups: [...GROUPS] });
    ev.add(A, A_PRED);
    const r = ev.result().graph;
    // ranking: (0,2,p3) .8 hit, (1,0,p1) .7 miss, (0,1,p1) .6 hit, (1,2,p1) .5 miss
    expect(r.recall[1]).toBeCloseTo(1 / 3, 12);
    expect(r.recall[2]).toBeCloseTo(1 / 3, 12);
    expect(r.recall[3]).toBeCloseTo(2 / 3, 12);
    expect(r.recall[4]).toBeCloseTo(2 / 3, 12); // p2 of (1,2) is never the arg-max
    expect([...r.perPredicate[3]].slice(1)).toEqual([1, 0, 1]);
    expect(r.meanRecall[3]).toBeCloseTo(2 / 3, 12);
    expect(r.groups[3]).toEqual({ head: 1, body: 0, tail: 1 });
  });

  it('PredCls without graph constraint: every (pair, predicate) ranked', () => {
    const ev = new SggEvaluator({ numPredicates: 3, mode: 'predcls', ks: [1, 3, 5] });
    ev.add(A, A_PRED);
    const r = ev.result().noGraph;
    // .8 (0,2,p3) hit, .7 (1,0,p1), .6 (0,1,p1) hit, .5 (1,2,p1), .4 (1,2,p2) hit
    expect(r.recall[1]).toBeCloseTo(1 / 3, 12);
    expect(r.recall[3]).toBeCloseTo(2 / 3, 12);
    expect(r.recall[5]).toBeCloseTo(1, 12);
  });

  it('two images: R@K averages images, mR@K averages predicates of per-image recalls', () => {
    const ev = new SggEvaluator({ numPredicates: 3, mode: 'predcls', ks: [3], groups: [...GROUPS] });
    ev.add(A, A_PRED, 'A');
    ev.add(B, B_PRED, 'B');
    const res = ev.result();
    expect(res.images).toBe(2);
    expect([...res.gtCounts]).toEqual([0, 2, 2, 1]);
    // B graph: (0,1,p1) .9 hit, (1,0,p3) .5 miss → 1/2
    expect(res.graph.recall[3]).toBeCloseTo((2 / 3 + 1 / 2) / 2, 12);
    expect([...res.graph.perPredicate[3]].slice(1)).toEqual([1, 0, 1]);
    expect(res.graph.meanRecall[3]).toBeCloseTo(2 / 3, 12);
    // B no-graph: .9 (0,1,p1) hit, .5 (1,0,p3), .3 (1,0,p2) hit → 1
    expect(res.noGraph.recall[3]).toBeCloseTo((2 / 3 + 1) / 2, 12);
    expect([...res.noGraph.perPredicate[3]].slice(1)).toEqual([1, 0.5, 1]);
    expect(res.noGraph.meanRecall[3]).toBeCloseTo(2.5 / 3, 12);
    expect(res.noGraph.groups[3]).toEqual({ head: 1, body: 0.5, tail: 1 });
    expect(formatSggResult(res)).toContain('mR@3 66.67');
  });

  it("mR over present predicates by default, over all P with meanOver 'all' (PySGG)", () => {
    const groups = [null, 'head', 'body', 'tail', 'tail'] as const;
    const pred = { pairs: A_PRED.pairs, relScores: A_PRED.relScores.flatMap((v, i) => (i % 4 === 3 ? [v, 0] : [v])) };
    const present = new SggEvaluator({ numPredicates: 4, mode: 'predcls', ks: [3], groups: [...groups] });
    const all = new SggEvaluator({ numPredicates: 4, mode: 'predcls', ks: [3], groups: [...groups], meanOver: 'all' });
    present.add(A, pred);
    all.add(A, pred);
    expect(present.result().graph.meanRecall[3]).toBeCloseTo(2 / 3, 12);
    expect(all.result().graph.meanRecall[3]).toBeCloseTo(2 / 4, 12);
    expect(present.result().graph.groups[3].tail).toBe(1);
    expect(all.result().graph.groups[3].tail).toBe(0.5);
    expect(Number.isNaN(present.result().graph.perPredicate[3][4])).toBe(true);
  });

  it('SGCls: predicted labels must match, triplet score multiplies object scores', () => {
    const ev = new SggEvaluator({ numPredicates: 3, mode: 'sgcls', ks: [1, 2, 4] });
    // entity 2 mislabelled; scores .9 .8 .5 → (1,0,p1) .504, (0,1,p1) .432 hit, (0,2,p3) .36 label miss, (1,2,p1) .2
    ev.add(A, { ...A_PRED, labels: [1, 2, 1], objScores: [0.9, 0.8, 0.5] });
    const r = ev.result().graph;
    expect(r.recall[1]).toBe(0);
    expect(r.recall[2]).toBeCloseTo(1 / 3, 12);
    expect(r.recall[4]).toBeCloseTo(1 / 3, 12);
  });

  it('SGDet: both boxes need IoU ≥ 0.5; one GT is counted once however many predictions hit it', () => {
    const gt = { boxes: [0, 0, 9, 9, 20, 0, 29, 9], labels: [1, 2], relations: [0, 1, 1] };
    // entity 0 and 1 cover the GT exactly; entity 2 is a shifted copy of 0 with IoU 25/175 < 0.5; entity 3 a duplicate of 0
    const boxes = [0, 0, 9, 9, 20, 0, 29, 9, 5, 5, 14, 14, 0, 0, 9, 9];
    expect(boxIouLegacy(boxes, 2, boxes, 0)).toBeCloseTo(25 / 175, 12);
    const pred = {
      boxes, labels: [1, 2, 1, 1], objScores: [1, 1, 1, 1],
      pairs: [2, 1, 0, 1, 3, 1],
      relScores: [0, 1, 0, 0, 0, 0.9, 0, 0, 0, 0.8, 0, 0],
    };
    const ev = new SggEvaluator({ numPredicates: 3, mode: 'sgdet', ks: [1, 2, 3] });
    ev.add(gt, pred);
    const r = ev.result().graph;
    expect(r.recall[1]).toBe(0); // the shifted box
    expect(r.recall[2]).toBe(1);
    expect(r.recall[3]).toBe(1);
    const loose = new SggEvaluator({ numPredicates: 3, mode: 'sgdet', ks: [1], iouThreshold: 0.1 });
    loose.add(gt, pred);
    expect(loose.result().graph.recall[1]).toBe(1);
  });

  it('skips images without GT relations or without predicted pairs (PySGG)', () => {
    const ev = new SggEvaluator({ numPredicates: 3, mode: 'predcls', ks: [1] });
    ev.add({ ...A, relations: [] }, A_PRED);
    ev.add(A, { pairs: [], relScores: [] });
    expect(ev.result().images).toBe(0);
    expect(Number.isNaN(ev.result().graph.recall[1])).toBe(true);
  });

  it('bad input names the image and the entry', () => {
    const ev = new SggEvaluator({ numPredicates: 3, mode: 'predcls' });
    expect(() => ev.add({ ...A, relations: [0, 5, 1] }, A_PRED, 'img7')).toThrow(/image img7: GT relation 0 points at entity \(0, 5\) of 3/);
    expect(() => ev.add({ ...A, relations: [0, 1, 4] }, A_PRED, 'img7')).toThrow(/image img7: GT relation 0 has predicate 4/);
    expect(() => ev.add(A, { pairs: [0, 9], relScores: [0, 1, 0, 0] }, 'img8')).toThrow(/image img8: predicted pair 0 points at entity \(0, 9\)/);
    expect(() => ev.add(A, { pairs: [0, 1], relScores: [0, 1, 0] }, 'img9')).toThrow(/image img9: relScores/);
    expect(() => new SggEvaluator({ numPredicates: 3, mode: 'predcls', groups: [null, 'head'] })).toThrow(/groups must have/);
  });
});

describe('VG150 table', () => {
  it('ships the 50 predicates with PySGG head/body/tail groups', () => {
    expect(VG150_PREDICATES.length).toBe(51);
    expect(VG150_PREDICATES[31]).toBe('on');
    expect(VG150_PREDICATE_COUNTS[31]).toBe(712409);
    const n = { head: 0, body: 0, tail: 0 };
    VG150_PREDICATE_GROUPS.forEach((g) => g && n[g]++);
    expect(n).toEqual({ head: 5, body: 16, tail: 29 });
    expect([31, 20, 22, 30, 48].every((p) => VG150_PREDICATE_GROUPS[p] === 'head')).toBe(true);
    // PySGG's groups are the count ranking: groupsByCount reproduces them from the counts
    expect(groupsByCount(VG150_PREDICATE_COUNTS)).toEqual([...VG150_PREDICATE_GROUPS]);
    // and the evaluator defaults to them when P = 50
    expect(new SggEvaluator({ numPredicates: 50, mode: 'predcls' }).groups[48]).toBe('head');
  });
});
