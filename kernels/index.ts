// The kernel layer: device, runtime, tensors and the raw (non-differentiable) ops on both backends.
export * from './device.js';
export * from './errors.js';
export * from './tensor.js';
export * from './creation.js';
export * from './random.js';
export * from './elementwise.js';
export { runtime, grid1, LINEAR_WG, Kernel, type Bound, type Uniforms } from './runtime.js';
export { sizeClass, type PoolStats } from './pool.js';
