// A key-manager node in its own process, for the crash-safety and two-node tests. It runs the built
// package (npm test builds first) and prints one JSON line per event so the parent can follow along.
import { writeFileSync, renameSync } from 'node:fs';
import { KeyManager, backupAllKeys } from '../../dist/kms/index.js';
import { openStore } from '../../dist/store/index.js';

const [mode, storeUrl, arg] = process.argv.slice(2);
const say = (event) => process.stdout.write(JSON.stringify(event) + '\n');

const km = await KeyManager.open({ store: await openStore(storeUrl), cacheTtlMs: 50, reservationBlock: 16 });
await km.unsealDev();
say({ ready: true });

if (mode === 'rotate') {
  for (;;) {
    await km.rotateKey('a');
    await km.rotateKey('d');
  }
} else if (mode === 'rewrap') {
  for (;;) await km.rotateKeyring({}, 1);
} else if (mode === 'backup') {
  for (let i = 0; ; i++) {
    const file = await backupAllKeys(km, { recipients: [arg] });
    // Written the way the CLI writes: to a temporary name, renamed only when complete.
    writeFileSync(`${process.env.BACKUP_PATH}.tmp`, file);
    renameSync(`${process.env.BACKUP_PATH}.tmp`, process.env.BACKUP_PATH);
  }
} else if (mode === 'node') {
  // Two of these share one PostgreSQL: each rotates `shared` and encrypts with it, reporting ciphertexts.
  const rounds = Number(arg);
  for (let i = 0; i < rounds; i++) {
    if (i % 5 === 0) await km.rotateKey('shared');
    const batch = await Promise.all(
      Array.from({ length: 10 }, (_, j) =>
        km.encrypt('shared', new TextEncoder().encode(`${process.pid}-${i}-${j}`)),
      ),
    );
    say({ cts: batch, pid: process.pid, i });
  }
  await km.close();
  say({ done: true });
}
