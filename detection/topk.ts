// Top-k per FPN level, as torchvision's RegionProposalNetwork._get_top_n_idx: the anchors' objectness
// [B, A] (levels concatenated along A) -> for each image the indices of the min(preNmsTopN, A_l)
// highest scores of every level, in descending score order within a level (ties by the lower
// index), offset to index into A. The top-k is the stable radix sort of kernels/sort.ts; nothing is
// read back. The per-image top-n after NMS (post_nms_top_n, detections_per_img) is nms's maxOutput.

import { full } from '../kernels/creation.js';
import { binary } from '../kernels/elementwise.js';
import { check, fmtShape } from '../kernels/errors.js';
import { concat, narrow } from '../kernels/layout.js';
import { topk } from '../kernels/sort.js';
import type { Tensor } from '../kernels/tensor.js';

export interface LevelTopK {
  /** i32 [B, Σ k_l]: indices into A, level by level */
  indices: Tensor;
  /** i32 [Σ k_l]: the level of each column */
  levels: Tensor;
  /** k_l per level */
  perLevel: number[];
}

export function topkPerLevel(objectness: Tensor, anchorsPerLevel: readonly number[], preNmsTopN: number): LevelTopK {
  const op = 'topkPerLevel';
  check(objectness.dtype === 'f32' && objectness.rank === 2, op, () => `objectness must be f32 [B, A], got ${objectness.dtype} ${fmtShape(objectness.shape)}`);
  const A = anchorsPerLevel.reduce((a, b) => a + b, 0);
  check(A === objectness.shape[1] && anchorsPerLevel.every((n) => Number.isInteger(n) && n >= 0), op,
    () => `anchors per level [${anchorsPerLevel.join(', ')}] must sum to the ${objectness.shape[1]} columns of ${fmtShape(objectness.shape)}`);
  check(Number.isInteger(preNmsTopN) && preNmsTopN > 0, op, `preNmsTopN must be a positive integer, got ${preNmsTopN}`);
  const dev = objectness.device;
  const parts: Tensor[] = [], lv: Tensor[] = [], perLevel: number[] = [];
  let offset = 0;
  anchorsPerLevel.forEach((n, level) => {
    const k = Math.min(preNmsTopN, n);
    perLevel.push(k);
    if (k > 0) {
      const slice = narrow(objectness, 1, offset, n);
      const { values, indices } = topk(slice, k);
      const off = full([1], offset, { dtype: 'i32', device: dev });
      parts.push(binary('add', indices, off));
      lv.push(full([k], level, { dtype: 'i32', device: dev }));
      for (const t of [slice, values, indices, off]) t.dispose();
    }
    offset += n;
  });
  if (parts.length === 0) return { indices: full([objectness.shape[0], 0], 0, { dtype: 'i32', device: dev }), levels: full([0], 0, { dtype: 'i32', device: dev }), perLevel };
  const indices = parts.length === 1 ? parts[0] : concat(parts, 1);
  const levels = lv.length === 1 ? lv[0] : concat(lv, 0);
  if (parts.length > 1) for (const t of [...parts, ...lv]) t.dispose();
  return { indices, levels, perLevel };
}
