// The peers the edge is measured against, each run in its own Node process (so the benchmark
// client does not share an event loop with the server it measures):
//   node peers.mjs tus DIR       @tus/server + @tus/file-store writing into DIR
//   node peers.mjs socketio      a Socket.IO server; POST /emit/ROOM {json} emits to the room
// Each prints `listening on PORT` once ready.
import { FileStore } from '@tus/file-store';
import { Server as TusServer } from '@tus/server';
import http from 'node:http';
import { Server as IoServer } from 'socket.io';

const [kind, dir] = process.argv.slice(2);

if (kind === 'tus') {
  const tus = new TusServer({ path: '/files', datastore: new FileStore({ directory: dir }) });
  const server = http.createServer((req, res) => tus.handle(req, res));
  server.listen(0, '127.0.0.1', () => console.log(`listening on ${server.address().port}`));
} else if (kind === 'socketio') {
  const server = http.createServer((req, res) => {
    const room = req.url.startsWith('/emit/') ? req.url.slice('/emit/'.length) : null;
    if (req.method !== 'POST' || !room) {
      res.writeHead(404).end();
      return;
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      io.to(room).emit('event', JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(204).end();
    });
  });
  const io = new IoServer(server, { transports: ['websocket'] });
  io.on('connection', (socket) => socket.join(String(socket.handshake.query.room)));
  server.listen(0, '127.0.0.1', () => console.log(`listening on ${server.address().port}`));
} else {
  console.error('usage: node peers.mjs tus DIR | socketio');
  process.exit(2);
}
