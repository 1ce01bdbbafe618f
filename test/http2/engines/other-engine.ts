// Imported first by every file of this folder: the HTTP/2 tests imported after it run their edges
// with the HTTP/2 engine that is NOT the default (listen[].http2_engine; test/harness/edge.ts reads
// the variable), so each h2 test passes on both engines: the original file runs the default one.
import { DEFAULT_HTTP2_ENGINE } from '../../../edge/http2/config.js';

export const OTHER_ENGINE = DEFAULT_HTTP2_ENGINE === 'node' ? 'portcullis' : 'node';
process.env.PORTCULLIS_TEST_H2_ENGINE = OTHER_ENGINE;
