// The long-tail toolbox's numeric core: samplers, re-weighting formulas and split metrics.
export * from './samplers.js';
export * from './weights.js';
export * from './metrics.js';
export * from './calibration.js';
