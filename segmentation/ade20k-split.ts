// The DisAlign paper's head / body / tail split of ADE20K, as its official evaluation
// (Megvii-BaseDetection/DisAlign, semantic_seg/disalign/datasets/ade_lt.py) takes it: on the
// benchmark's class order, which objectInfo150 sorts by share of all labelled pixels, head = classes
// [0, 20), body = [20, 75), tail = [75, 150) (0-based after reduce_zero_label); each mean is taken
// with NaN (absent) classes left out. The class table itself (names, pixel ratios, palette) is
// data/ade20k-classes.ts, generated from assets/ade20k by scripts/make-seg-ade20k-classes.ts.
export { ADE20K_CLASSES, ADE20K_PALETTE, ADE20K_PIXEL_RATIO, ADE20K_STUFF, ADE20K_TRAIN_IMAGES } from '../data/ade20k-classes.js';

/** DisAlign's split boundaries on the frequency-sorted class order: [0, 20) head, [20, 75) body, [75, 150) tail. */
export const ADE20K_SPLIT_BOUNDS = { head: [0, 20], body: [20, 75], tail: [75, 150] } as const;
