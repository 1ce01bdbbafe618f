// @slow (real processes, real time or external tools: `node scripts/run-tests.mjs --fast` leaves it out)
// test/http2/h2c.test.ts on the HTTP/2 engine that is not the default (see other-engine.ts).
import './other-engine.js';
import '../h2c.test.js';
