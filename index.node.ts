// Node entry: the whole library, with Dawn installed as the GPU provider, plus the Node-only
// pieces (files, worker-thread loading, atomic checkpoints).
import './node-dawn.js';

export * from './index.js';
export * from './data/node-index.js';
export * from './nn/node-checkpoint.js';
