// A static file server for the repository on 127.0.0.1 (WebGPU needs a secure context, and
// 127.0.0.1 is one): read-only, no caching, plus optional in-memory files by URL path. Used by
// `npm run demo` (scripts/serve-demo.mjs) and the browser test runner (scripts/test-browser.mjs).
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';

const MIME = {
  '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.map': 'application/json', '.json': 'application/json',
  '.css': 'text/css', '.png': 'image/png', '.jpg': 'image/jpeg', '.svg': 'image/svg+xml', '.txt': 'text/plain', '.safetensors': 'application/octet-stream',
};

/** Serves `root` (and `memory`: URL path → body) on 127.0.0.1:`port` (0: any free port); resolves to the listening server. */
export async function serveStatic(root, { port = 0, memory = new Map() } = {}) {
  const server = createServer(async (req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://localhost');
    let file = path.join(root, decodeURIComponent(pathname));
    let body = memory.get(pathname);
    try {
      if (body === undefined) {
        if (!file.startsWith(root)) throw new Error('outside the repository');
        if ((await stat(file)).isDirectory()) file = path.join(file, 'index.html');
        body = await readFile(file);
      }
      res.writeHead(200, { 'content-type': MIME[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return server;
}
