// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// test/http2/limits-proxy.test.ts on the HTTP/2 engine that is not the default (see other-engine.ts).
import './other-engine.js';
import '../limits-proxy.test.js';
