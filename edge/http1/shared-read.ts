// Reading an accepted plain TCP socket through one shared buffer (Node's `onread`), without the
// stream machinery. A socket accepted by a net.Server is created without `onread` (only net.connect()
// takes it), so each read costs a fresh 64 KB zero-filled allocation (shrunk to the bytes read), a
// Buffer, Readable.push and a 'data' emit. Setting the two fields Node's Socket constructor sets for
// `onread` (found on a probe socket by their symbols' names, Node 20: lib/net.js) and the handle's
// useUserBuffer() gives the accepted socket the same path as the upstream pool's sockets
// (edge/upstream/h1pool.ts): libuv reads into SHARED_READ and onStreamRead calls back with the length.
// 'end', 'close', pause() (readStop) and resume() (readStart) keep working: net.Socket handles a
// socket with a user buffer in all of them.
// The bytes are valid only during the callback: whoever keeps them copies them (ownBytes()).
import net from 'node:net';
import type { Socket } from 'node:net';

/** The shared read buffer of the edge's client sockets (one thread reads one socket at a time). */
const SHARED_READ = Buffer.allocUnsafeSlow(64 * 1024);
const SHARED_AB = SHARED_READ.buffer;

/** Called with the bytes read (a view of the shared buffer, valid during the call only); false stops reading. */
export type SharedReadCallback = (chunk: Buffer) => boolean;

interface OnreadFields { kBuffer: symbol; kBufferCb: symbol }

function findOnreadFields(): OnreadFields | null {
  try {
    const probe = new net.Socket({ onread: { buffer: Buffer.alloc(1), callback: () => true } } as net.SocketConstructorOpts);
    const syms = Object.getOwnPropertySymbols(probe);
    probe.destroy();
    const kBuffer = syms.find((s) => s.description === 'kBuffer');
    const kBufferCb = syms.find((s) => s.description === 'kBufferCb');
    const fields = probe as unknown as Record<symbol, unknown>;
    if (kBuffer === undefined || kBufferCb === undefined || !Buffer.isBuffer(fields[kBuffer]) || typeof fields[kBufferCb] !== 'function') return null;
    return { kBuffer, kBufferCb };
  } catch {
    return null;
  }
}
const FIELDS = findOnreadFields();

interface UserBufferHandle { useUserBuffer?: (buf: Uint8Array) => void }

/**
 * Switches an accepted plain TCP socket to shared-buffer reads delivering to `onBytes`. False (and
 * nothing changed) when this Node does not have the fields, the socket is not a plain TCP socket with
 * its handle, or bytes already wait in its Readable buffer (they would never be delivered).
 */
export function readIntoShared(sock: Socket, onBytes: SharedReadCallback): boolean {
  if (FIELDS === null || sock.readableLength !== 0 || sock.destroyed) return false;
  const handle = (sock as unknown as { _handle: UserBufferHandle | null })._handle;
  if (handle === null || typeof handle.useUserBuffer !== 'function') return false;
  handle.useUserBuffer(SHARED_READ);
  const fields = sock as unknown as Record<symbol, unknown>;
  fields[FIELDS.kBuffer] = SHARED_READ;
  fields[FIELDS.kBufferCb] = (nread: number): boolean => onBytes(SHARED_READ.subarray(0, nread));
  return true;
}

/** bytes itself, or its copy when it is a view of the shared read buffer (to keep past the callback). */
export function ownBytes(bytes: Buffer): Buffer {
  return bytes.buffer === SHARED_AB ? Buffer.from(bytes) : bytes;
}
