// Semantic segmentation: models with torchvision's names (FCN, DeepLabV3, DeepLabV3+), per-pixel
// losses, DisAlign per pixel and post-hoc calibration, inference, mIoU with head/body/tail.
export { ADE20K_SPLIT_BOUNDS } from './ade20k-split.js';
export * from './metrics.js';
export * from './models.js';
export * from './losses.js';
export * from './disalign.js';
export * from './inference.js';
