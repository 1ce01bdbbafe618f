// Where things live. Compiled code runs from dist/loadtest/lib/, sources live in loadtest/.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** Repository root (…/dist/loadtest/lib/ → …/). */
export const repoRoot: string = fileURLToPath(new URL('../../../', import.meta.url));
/** Results go to the source tree so they can be committed. */
export const resultsDir: string = join(repoRoot, 'loadtest', 'results');
export const portcullisBin: string = join(repoRoot, 'bin', 'portcullis');
/** Compiled entry of the origin server child process. */
export const originMain: string = fileURLToPath(new URL('../origin-main.js', import.meta.url));
