// Detection building blocks (browser-safe): the box coder, the multi-scale ROI pooler, the long-tail box-classifier methods (longtail.ts) and the
// helpers around the GPU kernels of kernels/boxes.ts, kernels/nms.ts and kernels/roi-align.ts.
export * from './box-coder.js';
export * from './poolers.js';
export * from './topk.js';
export * from './eval/index.js';
export * from './longtail.js';
export * from './anchors.js';
export * from './backbone.js';
export * from './rpn.js';
export * from './roi-heads.js';
export * from './mask-rcnn.js';
export * from './training.js';
