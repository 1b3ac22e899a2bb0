/**
 * What the checks of `enseal doctor` are given: the server's configuration (read as `enseal serve` reads it)
 * and the files it implies, where procfs and sysfs are (a test points them at a fake tree), the time, and,
 * when an address was given, the running server's API. The API is an interface, not the HTTP client itself:
 * the client layer sits beside this one, and the CLI hands its client in.
 */
import type { AuditEntry } from '../../kms/index.js';
import type { AuditReport } from '../../tls/index.js';
import type { DeploymentFiles, ServeConfig } from '../serve.js';
import type { SystemRoots } from './block-device.js';

export interface SealStatusReply {
  readonly initialized: boolean;
  readonly sealed: boolean;
  readonly type?: string;
  readonly t: number;
  readonly n: number;
  readonly progress: number;
}

/** The calls the checks make on a running server (EnsealClient has them all). */
export interface DoctorApi {
  sealStatus(): Promise<SealStatusReply>;
  lookupSelf(): Promise<{ accessor: string; policies: string[]; ttl: number }>;
  auditVerify(): Promise<{
    ok: boolean;
    entries: number;
    problems: { kind: string; seq: number; message: string }[];
  }>;
  auditQuery(filter: { op?: string; limit?: number }): Promise<AuditEntry[]>;
  listKeys(): Promise<string[]>;
  readKey(name: string): Promise<Record<string, unknown>>;
}

export interface DoctorServer {
  /** The server's URL, e.g. `https://enseal.internal:8200`. */
  readonly address: string;
  readonly api: DoctorApi;
  /** Whether a token was given (the checks that read keys, tokens and the audit log need one). */
  readonly hasToken: boolean;
  /** PEM of a private CA that signed the server certificate (ENSEAL_CACERT). */
  readonly caPem?: string;
}

export type Answer<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

export interface DoctorContext {
  readonly config: ServeConfig;
  /** The config file the configuration came from, if any. */
  readonly configFile?: string;
  readonly files: DeploymentFiles;
  readonly roots: SystemRoots;
  readonly now: Date;
  readonly server?: DoctorServer;
  /** The server's seal status (asked once). */
  readonly sealStatus: () => Promise<Answer<SealStatusReply>>;
  /** The TLS audit of the server (run once); undefined without an https address. */
  readonly tlsAudit: () => Promise<Answer<AuditReport> | undefined>;
}

/** Runs `fn` once, on first call, and keeps its answer (a failure included). */
export function once<T>(fn: () => Promise<T>): () => Promise<Answer<T>> {
  let answer: Promise<Answer<T>> | undefined;
  return () =>
    (answer ??= fn().then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    ));
}
