// Where the tests find the shared CIFAR-10 JPEG copy: ../shared/data/cifar10 beside the repository
// (CI lays shared/ there), or CIFAR10_DIR.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const CIFAR10_DIR = process.env.CIFAR10_DIR ?? fileURLToPath(new URL('../../../shared/data/cifar10', import.meta.url));

if (!existsSync(`${CIFAR10_DIR}/train.txt`)) throw new Error(`the shared CIFAR-10 copy is missing: no ${CIFAR10_DIR}/train.txt (set CIFAR10_DIR)`);
