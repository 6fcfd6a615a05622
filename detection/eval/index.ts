// Detection evaluation, browser-safe: COCO (pycocotools COCOeval) and LVIS (lvis-api LVISEval).
export * from './core.js';
export * from './coco-eval.js';
export * from './lvis-eval.js';
