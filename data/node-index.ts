// The data pipeline's Node-only part: file access and the worker-thread loader.
export * from './node-datasets.js';
export * from './node-loader.js';
export * from './node-coco.js';
export * from './node-vg150.js';
export * from './node-ade20k.js';
export * from './node-instance-sets.js';
