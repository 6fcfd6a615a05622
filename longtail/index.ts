// The long-tail toolbox: samplers, re-weighting formulas, losses, split metrics, calibration
// (with its heads, stage-2 training, DisAlign and BGS) and the two-stage runner.
export * from './samplers.js';
export * from './weights.js';
export * from './losses.js';
export * from './metrics.js';
export * from './calibration.js';
export * from './runner.js';
