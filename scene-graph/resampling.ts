// BGNN's bi-level data resampling for scene-graph training (Li et al., CVPR 2021, §3.4), on top of
// the BgnnSampler of longtail/samplers.ts (which follows PySGG's bi_lvl_rsmp.py):
//   image level:    r_p = max(1, sqrt(t / f_p)) per predicate (f_p = share of relation instances),
//                   rounded once; image repeat R_i = max over its predicates of R_p;
//   instance level: each time an image with R_i > 1 is drawn, a relation of predicate p is dropped
//                   with probability clip(γ_d · (1 − R_p / R_i), 0, 1).
// PySGG's VG training scripts (scripts/rel_train_BGNN_vg.sh) use t = 0.13 and γ_d = 1.6
// (configs/e2e_relBGNN_vg.yaml holds 0.1 / 0.9, overridden there). A dropped relation gets
// predicate −1 as in PySGG's apply_resampling: neither a foreground target nor a background pair,
// it is ignored by the losses.

import { BgnnSampler } from '../longtail/samplers.js';

/** PySGG's VG settings for bi-level resampling (the BGNN training scripts). */
export const PYSGG_VG_BILEVEL = { repeatThreshold: 0.13, dropRate: 1.6 } as const;

export interface BilevelOptions {
  seed?: number;
  repeatThreshold?: number;
  dropRate?: number;
  /** Number of foreground predicates P (labels 1..P). */
  numPredicates: number;
}

export interface ResampledEpoch {
  /** Image indices of the epoch (image i appears R_i times), shuffled. */
  images: Int32Array;
  /** Relations (subject, object, predicate) of the k-th drawn image, dropped ones with predicate −1. */
  relations(k: number): Int32Array;
}

/** Bi-level resampling over a training set given as per-image relation lists (m×3: subject, object, predicate ≥ 1). */
export class BilevelResampler {
  readonly sampler: BgnnSampler;

  constructor(private readonly imageRelations: readonly Int32Array[], options: BilevelOptions) {
    const labels = imageRelations.map((rels, i) => {
      if (rels.length % 3 !== 0) throw new Error(`BilevelResampler: image ${i}: relations must be m×3 values, got ${rels.length}`);
      const out = new Int32Array(rels.length / 3);
      for (let r = 0; r < out.length; r++) {
        const p = rels[3 * r + 2];
        if (!(Number.isInteger(p) && p >= 1 && p <= options.numPredicates)) throw new Error(`BilevelResampler: image ${i}: relation ${r} has predicate ${p}, expected 1..${options.numPredicates}`);
        out[r] = p;
      }
      return out;
    });
    this.sampler = new BgnnSampler(labels, {
      seed: options.seed ?? 0,
      numClasses: options.numPredicates + 1,
      repeatThreshold: options.repeatThreshold ?? PYSGG_VG_BILEVEL.repeatThreshold,
      dropRate: options.dropRate ?? PYSGG_VG_BILEVEL.dropRate,
    });
  }

  /** R_i per image. */
  get imageRepeats(): Int32Array { return this.sampler.imageRepeats; }
  /** R_p per predicate (index 0 unused). */
  get predicateRepeats(): Int32Array { return this.sampler.predicateRepeats; }

  epoch(epoch: number): ResampledEpoch {
    const draw = this.sampler.draw(epoch);
    const { offsets, keep } = draw.relationKeep!;
    return {
      images: draw.indices,
      relations: (k: number) => {
        const src = this.imageRelations[draw.indices[k]];
        const out = src.slice();
        for (let r = 0; r < out.length / 3; r++) if (!keep[offsets[k] + r]) out[3 * r + 2] = -1;
        return out;
      },
    };
  }
}
