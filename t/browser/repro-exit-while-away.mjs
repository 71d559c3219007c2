// Regression check for a keeper bug fixed since (no browser needed), with Debian's node-ws:
//   node t/browser/repro-exit-while-away.mjs ws://127.0.0.1:PORT/ws/exit5-later
// A websession.v1 client sends a line to /ws/exit5-later (which exits 5 a
// second later), drops its TCP connection at once, and resumes 2.5 s later,
// after the script has exited. Expected: the resumed connection gets R1, then
// a close frame 4005 "script exited with status 5". Seen: R1, then nothing,
// and the server drops the connection 5 s later ("client did not read the
// close frame"); a client that resumes again gets the same, for ever.
// Exits 0 when the close arrives, 1 when it does not within 9 s.
import { createRequire } from 'node:module';
const WebSocket = createRequire(import.meta.url)('/usr/share/nodejs/ws');
const base = process.argv[2] || 'ws://127.0.0.1:8529/ws/exit5-later';
const t0 = Date.now();
const log = (...a) => console.log(String(Date.now() - t0).padStart(5), ...a);
const ws1 = new WebSocket(base, ['websession.v1']);
let id;
ws1.on('message', (m, bin) => {
  m = String(m); log('conn1 <-', m);
  if (m[0] === 'I') id = m.slice(1);
  if (m[0] === 'R') { ws1.send('R0'); ws1.send('Dgo'); log('conn1 -> R0, Dgo');
    setTimeout(() => { log('conn1: drop TCP (no close frame)'); ws1._socket.destroy(); }, 100); }
});
ws1.on('close', (c, r) => log('conn1 close', c, String(r)));
setTimeout(() => {
  log('conn2: resume with id', id);
  const ws2 = new WebSocket(base, ['websession.v1', 'websession.id.' + id]);
  ws2.on('open', () => { ws2.send('R0'); log('conn2 -> R0'); });
  ws2.on('message', (m) => log('conn2 <-', String(m)));
  ws2.on('ping', () => log('conn2 <- ping'));
  ws2.on('close', (c, r) => { log('conn2 close', c, String(r)); process.exit(c === 4005 ? 0 : 1); });
  ws2.on('error', (e) => log('conn2 error', e.message));
}, 2500);
setTimeout(() => { log('no close after 9 s'); process.exit(1); }, 9000);
