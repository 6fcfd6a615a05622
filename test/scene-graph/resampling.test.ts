import { describe, expect, it } from 'vitest';
import { BilevelResampler, PYSGG_VG_BILEVEL } from '../../scene-graph/resampling.js';

// 40 images with five 'p1' relations each, one image with p1 + p3 + p3, one with p2 only.
function dataset(): Int32Array[] {
  const imgs: Int32Array[] = [];
  for (let i = 0; i < 40; i++) imgs.push(Int32Array.from([0, 1, 1, 1, 2, 1, 2, 0, 1, 0, 2, 1, 2, 1, 1]));
  imgs.push(Int32Array.from([0, 1, 1, 1, 2, 3, 2, 0, 3]));
  imgs.push(Int32Array.from([0, 1, 2]));
  return imgs;
}

describe('BilevelResampler (BGNN bi-level resampling, PySGG bi_lvl_rsmp.py)', () => {
  it('image-level repeat: r_p = max(1, sqrt(t / f_p)) rounded once, R_i = max over the image', () => {
    const rs = new BilevelResampler(dataset(), { numPredicates: 3, seed: 3 });
    expect(PYSGG_VG_BILEVEL).toEqual({ repeatThreshold: 0.13, dropRate: 1.6 });
    const total = 201 + 2 + 1;
    const r = [0, Math.max(1, Math.sqrt(0.13 / (201 / total))), Math.sqrt(0.13 / (1 / total)), Math.sqrt(0.13 / (2 / total))];
    for (let p = 1; p <= 3; p++) expect([Math.floor(r[p]), Math.ceil(r[p])]).toContain(rs.predicateRepeats[p]);
    expect(rs.predicateRepeats[1]).toBe(1);
    expect(rs.imageRepeats[0]).toBe(1);
    expect(rs.imageRepeats[40]).toBe(Math.max(rs.predicateRepeats[1], rs.predicateRepeats[3]));
    expect(rs.imageRepeats[41]).toBe(rs.predicateRepeats[2]);
    const ep = rs.epoch(0);
    const counts = new Int32Array(42);
    ep.images.forEach((i) => counts[i]++);
    expect([...counts]).toEqual([...rs.imageRepeats]);
  });

  it('instance-level drop: head relations of repeated images dropped with clip(γ(1 − R_p/R_i)); rare ones kept', () => {
    const gamma = 0.5;
    const rs = new BilevelResampler(dataset(), { numPredicates: 3, seed: 1, dropRate: gamma });
    const Ri = rs.imageRepeats[40];
    expect(Ri).toBeGreaterThan(1);
    const pDrop = Math.min(1, gamma * (1 - rs.predicateRepeats[1] / Ri));
    let dropped = 0, seen = 0;
    for (let e = 0; e < 60; e++) {
      const ep = rs.epoch(e);
      ep.images.forEach((img, k) => {
        const rels = ep.relations(k);
        if (img < 40) expect(rels.every((v, i) => i % 3 !== 2 || v === 1)).toBe(true); // R_i = 1: nothing dropped
        if (img === 40) {
          seen++;
          if (rels[2] === -1) dropped++;
          if (rs.predicateRepeats[3] === Ri) expect([rels[5], rels[8]]).toEqual([3, 3]);
          expect([...rels.filter((_, i) => i % 3 !== 2)]).toEqual([0, 1, 1, 2, 2, 0]);
        }
      });
    }
    const sd = Math.sqrt((pDrop * (1 - pDrop)) / seen);
    expect(Math.abs(dropped / seen - pDrop)).toBeLessThan(4 * sd + 1e-9);
    // deterministic per (seed, epoch)
    const a = rs.epoch(5), b = rs.epoch(5);
    expect([...a.images]).toEqual([...b.images]);
    expect(a.images.length).toBe(b.images.length);
  });

  it('bad input names the image and relation', () => {
    expect(() => new BilevelResampler([Int32Array.from([0, 1, 4])], { numPredicates: 3 })).toThrow(/image 0: relation 0 has predicate 4/);
    expect(() => new BilevelResampler([Int32Array.from([0, 1])], { numPredicates: 3 })).toThrow(/image 0: relations must be m×3/);
  });
});
