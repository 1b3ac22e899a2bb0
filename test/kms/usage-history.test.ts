/** The usage monitor's bounded history (requests per window by key and caller) and its recent warnings. */
import { describe, expect, it } from 'vitest';
import { OTHER_LABEL, UsageMonitor } from '../../src/kms/usage-monitor.js';

describe('usage history', () => {
  it('counts requests per window by key and by caller, oldest first, at most 60 windows', () => {
    const m = new UsageMonitor({ windowMs: 1000 });
    m.observe(10, 'orders', 'encrypt', 'alice', 'ok');
    m.observe(20, 'orders', 'decrypt', 'bob', 'denied');
    m.observe(1500, 'users', 'encrypt', 'alice', 'error');
    expect(m.history()).toEqual([
      { start: 0, byKey: { orders: 2 }, byCaller: { alice: 1, bob: 1 } },
      { start: 1000, byKey: { users: 1 }, byCaller: { alice: 1 } },
    ]);
    for (let w = 2; w < 100; w++) m.observe(w * 1000, 'orders', 'encrypt', 'alice', 'ok');
    const h = m.history();
    expect(h).toHaveLength(60);
    expect(h[0]!.start).toBe(40_000);
    expect(h.at(-1)!.start).toBe(99_000);
  });

  it('folds names past 100 per window into (other)', () => {
    const m = new UsageMonitor({ windowMs: 1000 });
    for (let i = 0; i < 150; i++) m.observe(5, `k${i}`, 'encrypt', `c${i}`, 'ok');
    const [w] = m.history();
    expect(Object.keys(w!.byKey)).toHaveLength(101);
    expect(w!.byKey[OTHER_LABEL]).toBe(50);
    expect(w!.byCaller[OTHER_LABEL]).toBe(50);
  });

  it('keeps the last 50 warnings', () => {
    const m = new UsageMonitor({ windowMs: 1000, deniedBurst: 1 });
    for (let w = 0; w < 70; w++) m.observe(w * 1000, '', 'encrypt', 'mallory', 'denied');
    const warnings = m.recentWarnings();
    expect(warnings).toHaveLength(50);
    expect(warnings[0]!.windowStart).toBe(20_000);
    expect(warnings.every((w) => w.kind === 'denied_burst' && w.caller === 'mallory')).toBe(true);
    expect(m.warningCounts().denied_burst).toBe(70);
  });
});
