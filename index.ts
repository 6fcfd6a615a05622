// Browser-safe library entry: no Node built-ins may be reached from here (the web build fails if
// one is). The top-level op names are the differentiable ones (autograd/); the raw kernels, which
// record nothing on the tape, stay reachable under `raw`.
export * from './kernels/index.js';
export * as raw from './kernels/index.js';
export * from './autograd/index.js';
export * from './nn/index.js';
export * from './longtail/index.js';
export * from './data/index.js';
export * from './segmentation/index.js';
// names both layers define: the differentiable op wins; the functional option types come from kernels/
export {
  adaptiveAvgPool2d, avgPool2d, concat, conv2d, convTranspose2d, logSoftmaxAxis, softmaxAxis, upsampleNearest, expand, gather, logSoftmax, matmul, max, maxPool2d, mean, min, narrow, pad, permute,
  scatterAdd, segmentMax, segmentSoftmax, segmentSum, slice, softmax, softmaxKL, split, sum, transpose, upsampleBilinear, where, type BatchNormOptions,
} from './autograd/index.js';
export type { AvgPool2dOptions, MaxPool2dOptions } from './kernels/index.js';
