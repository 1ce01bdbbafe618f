// Where tests write what a person looks at afterwards (screenshots): PORTCULLIS_TEST_OUTPUT, else
// portcullis-test-output/ in the system temp directory — never into the repository, so that running
// the tests leaves `git status` as it was.
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function testOutputDir(): string {
  const dir = process.env.PORTCULLIS_TEST_OUTPUT || join(tmpdir(), 'portcullis-test-output');
  mkdirSync(dir, { recursive: true });
  return dir;
}
