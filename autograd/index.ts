// The differentiable API: the tape, the op table and every recorded op.
export * from './tape.js';
export * from './table.js';
export * from './ops.js';
export * from './nn-ops.js';
export * from './conv-ops.js';
export * from './segment-ops.js';
export * from './pixel-ops.js';
