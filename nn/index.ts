// nn/: modules, layers, initialisation and backbones (browser-safe: no Node built-ins).
export * from './module.js';
export * from './layers.js';
export * as initializers from './init.js';
export { skipInit } from './init.js';
export * from './resnet.js';
export * from './optim.js';
export * from './schedule.js';
export * from './safetensors.js';
export * from './frozen-batchnorm.js';
export * from './fpn.js';
