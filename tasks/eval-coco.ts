// node tasks/eval-coco.js --gt GT.json --dt DETECTIONS.json [--iou bbox|segm] [--json OUT]
// Evaluates COCO-format detections against a COCO instances file (the 12 numbers of pycocotools'
// COCOeval.summarize(), in its text layout) or an LVIS file, recognised by categories that carry
// `frequency` (lvis-api's numbers: AP, AP50, AP75, APs/m/l, APr/c/f, AR@300, in its layout).
// --json writes the numbers and the per-category AP. Bad input: one line naming the file and the
// entry, exit 1.
import { writeFile } from 'node:fs/promises';
import { parseCli, opt } from './lib/cli.js';
import { readCocoDataset, readCocoResults } from '../data/node-coco.js';
import { DataError } from '../data/errors.js';
import { evaluateCoco, evaluateLvis } from '../detection/eval/index.js';

const spec = {
  name: 'eval-coco',
  title: 'COCO / LVIS box and mask AP of detections in the COCO result format',
  description:
    'Prints the numbers of pycocotools COCOeval.summarize() for a COCO ground truth, or of lvis-api LVISEval for an LVIS one (categories with `frequency`): 300 detections per image, federated negatives, not-exhaustive categories, AP_r / AP_c / AP_f.\n\n' +
    'Detections: a JSON list of {image_id, category_id, bbox [x, y, w, h], score, segmentation?} where segmentation is an RLE {size, counts} (compressed or not) or polygons.',
  options: {
    gt: opt.string({ required: true, metavar: 'GT.json', help: 'Ground truth: COCO instances json or LVIS json.' }),
    dt: opt.string({ required: true, metavar: 'DT.json', help: 'Detections in the COCO result format.' }),
    iou: opt.enum(['bbox', 'segm'], { default: 'bbox', help: 'Box IoU or mask IoU.' }),
    json: opt.string({ metavar: 'OUT.json', help: 'Also write the numbers and per-category AP as JSON here.' }),
    maxDets: opt.integer({ default: 300, min: -1, help: 'LVIS only: detections kept per image, top by score (-1: all).' }),
  },
  examples: [
    'node tasks/eval-coco.js --gt ../shared/data/coco_mini/annotations/instances_val2017.json --dt results.json --iou segm',
    'node tasks/eval-coco.js --gt ../shared/data/lvis/lvis_v0.5_val_100.json --dt lvis_results.json --iou segm --json metrics.json',
  ],
};

const config = parseCli(spec);
try {
  const gt = await readCocoDataset(config.gt);
  const dts = await readCocoResults(config.dt, gt);
  const kind = gt.lvis ? 'lvis' : 'coco';
  const result = gt.lvis ? evaluateLvis(gt, dts, { iouType: config.iou, maxDetsPerImage: config.maxDets }, config.dt) : evaluateCoco(gt, dts, { iouType: config.iou }, config.dt);
  process.stdout.write(`${kind === 'lvis' ? 'LVIS' : 'COCO'} ${config.iou} evaluation: ${gt.images.length} images, ${gt.annotations.length} ground-truth instances, ${dts.length} detections\n`);
  process.stdout.write(result.text);
  if (config.json) {
    const out = { kind, iouType: config.iou, gt: config.gt, dt: config.dt, metrics: result.metrics, ...('stats' in result ? { stats: result.stats } : {}), perCategory: result.perCategory };
    await writeFile(config.json, JSON.stringify(out, null, 1) + '\n');
  }
} catch (e) {
  // bad input is one line; anything else too, with the stack only under DEBUG
  if (!(e instanceof DataError) && process.env.DEBUG) throw e;
  process.stderr.write(`eval-coco: ${e instanceof DataError ? e.message : `${config.dt}: ${(e as Error).message}`}\n`);
  process.exit(1);
}
