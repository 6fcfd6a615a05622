// Where the tests find the shared COCO and LVIS copies: ../shared/data beside the repository (CI lays
// shared/ there), or SHARED_DATA_DIR. Node only (the browser suite skips the files that use it).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const SHARED_DATA_DIR = process.env.SHARED_DATA_DIR ?? fileURLToPath(new URL('../../../shared/data', import.meta.url));
export const COCO_MINI_VAL = join(SHARED_DATA_DIR, 'coco_mini/annotations/instances_val2017.json');
export const COCO_MINI_TRAIN = join(SHARED_DATA_DIR, 'coco_mini/annotations/instances_train2017.json');
export const LVIS_SAMPLE = join(SHARED_DATA_DIR, 'lvis/lvis_v0.5_val_100.json');

for (const f of [COCO_MINI_VAL, LVIS_SAMPLE]) if (!existsSync(f)) throw new Error(`the shared COCO/LVIS copy is missing: no ${f} (set SHARED_DATA_DIR)`);

export const readShared = (path: string): string => readFileSync(path, 'utf8');
