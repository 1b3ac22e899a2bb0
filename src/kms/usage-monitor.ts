/**
 * Usage monitoring: counters per key, operation and caller, and a detector for the two patterns that most
 * often mean a stolen credential or a broken client: a caller whose request rate jumps far above its own
 * baseline, and a burst of denied requests. Warnings go to a listener (the server logs them) and to metrics.
 *
 * Time is cut into fixed windows; a caller's baseline is an exponentially weighted average of its past
 * windows, so slow growth is learned and only sudden jumps are flagged.
 *
 * Memory and metrics stay bounded whatever callers send: at most `maxSeries` counters and tracked callers
 * exist; past that, new combinations fold into one `(other)` series. Callers that name keys that do not
 * exist are counted under the key `(unknown)` by the key manager, so random names cannot grow either.
 */

export interface UsageWarning {
  readonly kind: 'rate_spike' | 'denied_burst';
  readonly caller: string;
  /** Requests (or denials) in the window that triggered the warning. */
  readonly count: number;
  /** The caller's baseline requests per window (rate spikes only). */
  readonly baseline?: number;
  readonly windowStart: number;
  readonly message: string;
}

export interface UsageMonitorOptions {
  /** Window length in milliseconds (default one minute). */
  windowMs?: number;
  /** A window is a spike when it exceeds baseline × this factor (default 10). */
  spikeFactor?: number;
  /** …and has at least this many requests (default 100), so quiet callers do not trip it. */
  spikeMinimum?: number;
  /** Windows of history needed before spikes are judged (default 3). */
  warmupWindows?: number;
  /** Denied requests in one window that count as a burst (default 20). */
  deniedBurst?: number;
  /** Distinct counters and tracked callers kept before new ones fold into `(other)` (default 10,000). */
  maxSeries?: number;
  onWarning?: (warning: UsageWarning) => void;
}

/** The label that folded series carry. */
export const OTHER_LABEL = '(other)';

interface CallerWindow {
  start: number;
  count: number;
  denied: number;
  baseline: number;
  windows: number;
  spikeWarned: boolean;
  deniedWarned: boolean;
}

/** Requests in one window, by key and by caller (a bounded history kept for charts). */
export interface UsageWindow {
  readonly start: number;
  readonly byKey: Readonly<Record<string, number>>;
  readonly byCaller: Readonly<Record<string, number>>;
}

/** Windows of history kept, and series per window before new names fold into `(other)`. */
const HISTORY_WINDOWS = 60;
const HISTORY_SERIES = 100;
/** Recent warnings kept for the console (older ones remain in the counters and the log). */
const RECENT_WARNINGS = 50;

export interface UsageCounter {
  readonly key: string;
  readonly op: string;
  readonly caller: string;
  readonly ok: number;
  readonly denied: number;
  readonly errors: number;
}

const EWMA_WEIGHT = 0.3;

export class UsageMonitor {
  readonly #windowMs: number;
  readonly #spikeFactor: number;
  readonly #spikeMinimum: number;
  readonly #warmup: number;
  readonly #deniedBurst: number;
  readonly #onWarning: ((w: UsageWarning) => void) | undefined;
  readonly #maxSeries: number;
  readonly #counters = new Map<
    string,
    { key: string; op: string; caller: string; ok: number; denied: number; errors: number }
  >();
  readonly #callers = new Map<string, CallerWindow>();
  readonly #warnings = { rate_spike: 0, denied_burst: 0 };
  readonly #recent: UsageWarning[] = [];
  readonly #history: { start: number; byKey: Map<string, number>; byCaller: Map<string, number> }[] = [];

  constructor(options: UsageMonitorOptions = {}) {
    this.#windowMs = options.windowMs ?? 60_000;
    this.#spikeFactor = options.spikeFactor ?? 10;
    this.#spikeMinimum = options.spikeMinimum ?? 100;
    this.#warmup = options.warmupWindows ?? 3;
    this.#deniedBurst = options.deniedBurst ?? 20;
    this.#onWarning = options.onWarning;
    this.#maxSeries = options.maxSeries ?? 10_000;
  }

  /** Counts one request. `key` is '' for operations that name no key. */
  observe(now: number, key: string, op: string, caller: string, outcome: 'ok' | 'denied' | 'error'): void {
    let id = `${key}\u0000${op}\u0000${caller}`;
    let c = this.#counters.get(id);
    if (c === undefined && this.#counters.size >= this.#maxSeries) {
      [key, caller] = [OTHER_LABEL, OTHER_LABEL];
      id = `${key}\u0000${op}\u0000${caller}`;
      c = this.#counters.get(id);
    }
    if (c === undefined) {
      c = { key, op, caller, ok: 0, denied: 0, errors: 0 };
      this.#counters.set(id, c);
    }
    if (outcome === 'ok') c.ok += 1;
    else if (outcome === 'denied') c.denied += 1;
    else c.errors += 1;
    this.#observeCaller(now, caller, outcome === 'denied');
    this.#record(now, key, caller);
  }

  /** Adds one request to the current window of the bounded history. */
  #record(now: number, key: string, caller: string): void {
    const start = now - (now % this.#windowMs);
    let w = this.#history.at(-1);
    if (w === undefined || w.start !== start) {
      w = { start, byKey: new Map(), byCaller: new Map() };
      this.#history.push(w);
      if (this.#history.length > HISTORY_WINDOWS) this.#history.shift();
    }
    const bump = (m: Map<string, number>, label: string) => {
      const name = m.has(label) || m.size < HISTORY_SERIES ? label : OTHER_LABEL;
      m.set(name, (m.get(name) ?? 0) + 1);
    };
    bump(w.byKey, key);
    bump(w.byCaller, caller);
  }

  /** Requests per window by key and by caller, oldest first (up to 60 windows that had requests). */
  history(): UsageWindow[] {
    return this.#history.map((w) => ({
      start: w.start,
      byKey: Object.fromEntries(w.byKey),
      byCaller: Object.fromEntries(w.byCaller),
    }));
  }

  /** The most recent warnings, oldest first (at most 50). */
  recentWarnings(): UsageWarning[] {
    return [...this.#recent];
  }

  /** The window length in milliseconds. */
  get windowMs(): number {
    return this.#windowMs;
  }

  #observeCaller(now: number, caller: string, denied: boolean): void {
    const start = now - (now % this.#windowMs);
    let w = this.#callers.get(caller);
    if (w === undefined && this.#callers.size >= this.#maxSeries) {
      caller = OTHER_LABEL;
      w = this.#callers.get(caller);
    }
    if (w === undefined) {
      w = { start, count: 0, denied: 0, baseline: 0, windows: 0, spikeWarned: false, deniedWarned: false };
      this.#callers.set(caller, w);
    }
    if (start !== w.start) this.#roll(w, start);
    w.count += 1;
    if (denied) w.denied += 1;
    if (!w.spikeWarned && w.windows >= this.#warmup && w.count >= this.#spikeMinimum) {
      if (w.count > Math.max(1, w.baseline) * this.#spikeFactor) {
        w.spikeWarned = true;
        this.#warn({
          kind: 'rate_spike',
          caller,
          count: w.count,
          baseline: Math.round(w.baseline * 100) / 100,
          windowStart: w.start,
          message: `caller "${caller}" made ${w.count} requests this window, against a baseline of ${w.baseline.toFixed(1)}`,
        });
      }
    }
    if (!w.deniedWarned && w.denied >= this.#deniedBurst) {
      w.deniedWarned = true;
      this.#warn({
        kind: 'denied_burst',
        caller,
        count: w.denied,
        windowStart: w.start,
        message: `caller "${caller}" had ${w.denied} requests denied this window`,
      });
    }
  }

  /** Closes the caller's window(s) up to `start`; empty windows in between pull the baseline down. */
  #roll(w: CallerWindow, start: number): void {
    const elapsed = Math.max(1, Math.round((start - w.start) / this.#windowMs));
    w.baseline = w.windows === 0 ? w.count : w.baseline * (1 - EWMA_WEIGHT) + w.count * EWMA_WEIGHT;
    for (let i = 1; i < Math.min(elapsed, 50); i++) w.baseline *= 1 - EWMA_WEIGHT;
    w.windows += elapsed;
    w.start = start;
    w.count = 0;
    w.denied = 0;
    w.spikeWarned = false;
    w.deniedWarned = false;
  }

  #warn(warning: UsageWarning): void {
    this.#warnings[warning.kind] += 1;
    this.#recent.push(warning);
    if (this.#recent.length > RECENT_WARNINGS) this.#recent.shift();
    this.#onWarning?.(warning);
  }

  counters(): UsageCounter[] {
    return [...this.#counters.values()].map((c) => ({ ...c }));
  }

  warningCounts(): Readonly<Record<UsageWarning['kind'], number>> {
    return { ...this.#warnings };
  }

  /** Prometheus text exposition of the counters and warnings. Labels hold names, never secrets. */
  prometheus(): string {
    const esc = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
    const lines = [
      '# HELP enseal_requests_total Key manager requests by key, operation, caller and outcome.',
      '# TYPE enseal_requests_total counter',
    ];
    for (const c of this.#counters.values()) {
      const labels = `key="${esc(c.key)}",op="${esc(c.op)}",caller="${esc(c.caller)}"`;
      for (const outcome of ['ok', 'denied', 'errors'] as const) {
        if (c[outcome] > 0) lines.push(`enseal_requests_total{${labels},outcome="${outcome}"} ${c[outcome]}`);
      }
    }
    lines.push(
      '# HELP enseal_usage_warnings_total Anomaly warnings raised.',
      '# TYPE enseal_usage_warnings_total counter',
    );
    for (const [kind, n] of Object.entries(this.#warnings))
      lines.push(`enseal_usage_warnings_total{kind="${kind}"} ${n}`);
    return lines.join('\n') + '\n';
  }
}
