// `npm run demo`: builds the browser bundles, then serves the repository on 127.0.0.1 and prints
// the demo's URL (PORT=8000 by default; PORT=0 picks a free one).
import { fileURLToPath } from 'node:url';
import { buildWeb } from './build.mjs';
import { serveStatic } from './static-server.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
await buildWeb();
const server = await serveStatic(root, { port: Number(process.env.PORT ?? 8000) });
const base = `http://127.0.0.1:${server.address().port}`;
console.log(`the long-tail lab:  ${base}/demo/\nthe smoke test:     ${base}/demo/smoke.html\n(Ctrl-C stops the server)`);
