// Why: the stages a request passes are data built from the config, in the documented order
// (identity → guard → redirect → canonical path → WebSocket limit → rules), so no kind of request
// (a redirect, an upgrade, a refusal) can skip the guard or its access line by taking another route.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { edgeYaml, startTestEdge } from '../harness/edge.js';

test('stage chain: identity → guard → canonical path → WebSocket limit by default; redirect_https and the WebSocket limit only when configured', async (t) => {
  const plain = await startTestEdge(edgeYaml({ servers: [{ name: 's1', url: 'http://127.0.0.1:9' }] }));
  t.after(() => plain.stop());
  assert.deepEqual(plain.edge.pipeline.stages, ['identity', 'guard', 'canonical_path', 'websocket_per_client']);
  const redirect = await startTestEdge(edgeYaml({
    servers: [{ name: 's1', url: 'http://127.0.0.1:9' }],
    listener: 'redirect_https: { port: 8443 }',
    limits: 'websocket: { enabled: false }',
  }));
  t.after(() => redirect.stop());
  assert.deepEqual(redirect.edge.pipeline.stages, ['identity', 'guard', 'redirect_https', 'canonical_path']);
});
