// Free loopback ports for tests, without loading the edge (the stick and upstream tests use it too):
// the load harness's helper, so that the project asks the kernel for a port in one place.
export { freePort } from '../../loadtest/lib/util.js';
