// Scene-graph generation (BGNN, CVPR 2021): metrics, the VG150 table, resampling, the model. Browser-safe.
export * from './vg150-table.js';
export * from './metrics.js';
export * from './resampling.js';
export * from './bgnn.js';
export * from './pipeline.js';
export * from './draw.js';
export * from './detector.js';
