// torchvision's BoxCoder (models/detection/_utils.py): regression targets of boxes relative to
// reference boxes, and their inverse. Weights (1, 1, 1, 1) for the RPN, (10, 10, 5, 5) for the ROI
// heads; decode clamps dw/dh at log(1000/16) before the exp. The arithmetic is the GPU kernels of
// kernels/boxes.ts (CPU references beside them).

import { boxDecode, boxEncode, BBOX_XFORM_CLIP, type BoxWeights } from '../kernels/boxes.js';
import { concat, split } from '../kernels/layout.js';
import { check, fmtShape } from '../kernels/errors.js';
import type { Tensor } from '../kernels/tensor.js';

/** Weights of the RPN's coder. */
export const RPN_BOX_WEIGHTS: BoxWeights = [1, 1, 1, 1];
/** Weights of the ROI heads' coder. */
export const ROI_HEADS_BOX_WEIGHTS: BoxWeights = [10, 10, 5, 5];

export class BoxCoder {
  constructor(
    readonly weights: BoxWeights,
    readonly bboxXformClip: number = BBOX_XFORM_CLIP,
  ) {
    check(weights.length === 4 && weights.every((w) => Number.isFinite(w) && w !== 0), 'BoxCoder', `weights must be 4 non-zero numbers, got [${weights.join(', ')}]`);
  }

  /** Targets of referenceBoxes [N, 4] (ground truth) relative to proposals [N, 4] -> [N, 4]. */
  encodeSingle(referenceBoxes: Tensor, proposals: Tensor): Tensor {
    return boxEncode(referenceBoxes, proposals, this.weights);
  }

  /** Per image: the lists are concatenated, encoded in one launch and split back. */
  encode(referenceBoxes: readonly Tensor[], proposals: readonly Tensor[]): Tensor[] {
    check(referenceBoxes.length === proposals.length && referenceBoxes.length > 0, 'BoxCoder.encode', `needs one proposal list per reference list, got ${referenceBoxes.length} and ${proposals.length}`);
    const sizes = referenceBoxes.map((b) => b.shape[0]);
    const ref = referenceBoxes.length === 1 ? referenceBoxes[0] : concat(referenceBoxes, 0);
    const prop = proposals.length === 1 ? proposals[0] : concat(proposals, 0);
    const out = this.encodeSingle(ref, prop);
    if (ref !== referenceBoxes[0]) ref.dispose();
    if (prop !== proposals[0]) prop.dispose();
    if (sizes.length === 1) return [out];
    const parts = split(out, sizes, 0);
    out.dispose();
    return parts;
  }

  /** codes [N, 4·C] relative to boxes [N, 4] -> boxes [N, 4·C] (torchvision's decode_single). */
  decodeSingle(relCodes: Tensor, boxes: Tensor): Tensor {
    return boxDecode(relCodes, boxes, this.weights, this.bboxXformClip);
  }

  /** codes for the concatenated per-image boxes -> [ΣN, C, 4] (torchvision's decode). */
  decode(relCodes: Tensor, boxes: readonly Tensor[]): Tensor {
    check(boxes.length > 0, 'BoxCoder.decode', 'needs at least one box list');
    const total = boxes.reduce((s, b) => s + b.shape[0], 0);
    check(relCodes.size % Math.max(total, 1) === 0 && relCodes.size % 4 === 0, 'BoxCoder.decode', () => `codes ${fmtShape(relCodes.shape)} do not split into ${total} boxes of 4·C values`);
    const all = boxes.length === 1 ? boxes[0] : concat(boxes, 0);
    const codes = total > 0 ? relCodes.reshape([total, relCodes.size / total]) : relCodes;
    const dec = this.decodeSingle(codes, all);
    if (codes !== relCodes) codes.dispose();
    if (all !== boxes[0]) all.dispose();
    if (total === 0) return dec;
    const out = dec.reshape([total, dec.size / total / 4, 4]);
    dec.dispose();
    return out;
  }
}
