// Prints the predicate counts of the embedded scene-graph set's default splits (the generator is
// scene-graph/synthetic.ts; `node tasks/vg-sgg.js` draws the same scenes on first use):
//   npx esbuild scripts/make-sgg-scenes.ts --bundle --platform=node --format=esm --outfile=/tmp/s.mjs && node /tmp/s.mjs
import { generateScenes, scenePredicateCounts, SCENE_PREDICATES, SCENE_PREDICATE_VG_COUNTS } from '../scene-graph/synthetic.js';

const train = generateScenes(0, 1500), test = generateScenes(1, 400);
const a = scenePredicateCounts(train), b = scenePredicateCounts(test);
console.log('| predicate | VG150 count | train | test |\n| --- | --- | --- | --- |');
for (let p = 1; p < SCENE_PREDICATES.length; p++) console.log(`| ${SCENE_PREDICATES[p]} | ${SCENE_PREDICATE_VG_COUNTS[p]} | ${a[p]} | ${b[p]} |`);
