// The data pipeline, browser-safe part (no Node built-ins): lists, CIFAR binaries, long-tailed
// subsets, decoding, augmentation, the in-thread loader.
export * from './errors.js';
export * from './rng.js';
export * from './lists.js';
export * from './cifar.js';
export * from './subsets.js';
export * from './decode.js';
export * from './augment.js';
export * from './loader.js';
export * from './coco.js';
export * from './masks.js';
export * from './detection-transforms.js';
export * from './vg150.js';
export * from './ade20k.js';
export * from './ade20k-classes.js';
export * from './instance-sets.js';
export * from './synthetic-lvis.js';
