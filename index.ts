// Browser-safe library entry: no Node built-ins may be reached from here.
export * from './kernels/index.js';
