/**
 * Entry point of a batch worker thread (see batch-pool.ts): runs chunks of a batch's symmetric work and
 * posts the results back. It writes nothing anywhere and logs nothing; the keys it receives live only in
 * this thread's memory and are wiped once their chunk is done.
 */
import { parentPort } from 'node:worker_threads';
import { wipe } from '../crypto/index.js';
import { runChunk, type BatchChunk } from './batch-work.js';

parentPort?.on('message', (message: { id: number; chunk: BatchChunk }) => {
  let result;
  try {
    result = runChunk(message.chunk);
  } finally {
    wipe(...message.chunk.keys);
  }
  parentPort!.postMessage({ id: message.id, result });
});
