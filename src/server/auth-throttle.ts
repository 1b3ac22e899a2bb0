/**
 * Failed authentication, throttled per client address before any token lookup: a client that keeps sending
 * missing, unknown or expired tokens is refused with 429 without costing a store read, so guessing tokens
 * or flooding the lookup path is bounded. Memory is bounded too: at most `maxAddresses` windows are kept,
 * and when full the oldest window is dropped (a dropped address only gets a fresh allowance).
 */
export interface AuthThrottleOptions {
  /** Failed attempts allowed per address per window (default 100). */
  readonly maxFailures?: number;
  /** Window length in milliseconds (default 60 s). */
  readonly windowMs?: number;
  /** Addresses tracked at once (default 10,000). */
  readonly maxAddresses?: number;
}

export class AuthThrottle {
  readonly #max: number;
  readonly #windowMs: number;
  readonly #maxAddresses: number;
  readonly #clock: () => number;
  /** Insertion order is age order, so the first key is the oldest window. */
  readonly #windows = new Map<string, { start: number; failures: number }>();

  constructor(options: AuthThrottleOptions = {}, clock: () => number = Date.now) {
    this.#max = options.maxFailures ?? 100;
    this.#windowMs = options.windowMs ?? 60_000;
    this.#maxAddresses = options.maxAddresses ?? 10_000;
    this.#clock = clock;
  }

  /** Whether `address` has used up its failed attempts for the current window. */
  blocked(address: string): boolean {
    const w = this.#windows.get(address);
    if (w === undefined) return false;
    if (this.#clock() - w.start >= this.#windowMs) {
      this.#windows.delete(address);
      return false;
    }
    return w.failures >= this.#max;
  }

  /** Counts one failed authentication from `address`. */
  fail(address: string): void {
    const now = this.#clock();
    let w = this.#windows.get(address);
    if (w === undefined || now - w.start >= this.#windowMs) {
      this.#windows.delete(address);
      if (this.#windows.size >= this.#maxAddresses) {
        const oldest = this.#windows.keys().next().value;
        if (oldest !== undefined) this.#windows.delete(oldest);
      }
      w = { start: now, failures: 0 };
      this.#windows.set(address, w);
    }
    w.failures += 1;
  }

  /** Addresses currently tracked (for tests and metrics). */
  get size(): number {
    return this.#windows.size;
  }
}
