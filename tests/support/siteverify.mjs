// A local stand-in for Cloudflare Turnstile's siteverify API
// (POST /turnstile/v0/siteverify, JSON {secret, response, remoteip} →
// {"success": bool, "error-codes": [...]}), so the edge's challenge check runs against a real
// HTTP server without the internet. The token "pass" is valid once (as real tokens are); any
// other is invalid. `mode` switches it to answering 500 or to failing the connection.
import http from 'node:http';

export async function startSiteverify() {
  const seen = [];
  const used = new Set();
  let mode = 'ok';
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (piece) => (body += piece));
    req.on('end', () => {
      if (mode === 'down') return req.socket.destroy();
      if (mode === 'error') {
        res.writeHead(500, { 'content-type': 'text/plain' });
        return res.end('internal');
      }
      let request = {};
      try {
        request = JSON.parse(body);
      } catch {}
      seen.push({ path: req.url, contentType: req.headers['content-type'], ...request });
      const token = String(request.response ?? '');
      let answer = { success: true, 'error-codes': [] };
      if (request.secret !== server.secret) answer = { success: false, 'error-codes': ['invalid-input-secret'] };
      else if (!token.startsWith('pass')) answer = { success: false, 'error-codes': ['invalid-input-response'] };
      else if (used.has(token)) answer = { success: false, 'error-codes': ['timeout-or-duplicate'] };
      used.add(token);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer));
    });
  });
  server.secret = `turnstile-test-${process.pid}`;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  let tokens = 0;
  return {
    url: `http://127.0.0.1:${server.address().port}/turnstile/v0/siteverify`,
    secret: server.secret,
    seen,
    /** A token the stand-in accepts once. */
    token: () => `pass-${process.pid}-${++tokens}`,
    setMode: (m) => (mode = m),
    stop: () => new Promise((resolve) => server.close(resolve)),
  };
}
