// Where the tests find the three real ADE20K validation images: ../shared/data/ade20k_sample beside
// the repository (CI lays shared/ there), or ADE20K_SAMPLE_DIR.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const ADE20K_SAMPLE_DIR = process.env.ADE20K_SAMPLE_DIR ?? fileURLToPath(new URL('../../../shared/data/ade20k_sample', import.meta.url));

if (!existsSync(`${ADE20K_SAMPLE_DIR}/objectInfo150.csv`)) throw new Error(`the shared ADE20K sample is missing: no ${ADE20K_SAMPLE_DIR}/objectInfo150.csv (set ADE20K_SAMPLE_DIR)`);
