/**
 * Turning driver rows into the contract's records, shared by both stores. Drivers differ only in how they
 * hand back numbers (pg returns BIGINT as text) and bytes (both return Buffers), which these absorb.
 */
import type { AuditRow, KeyContextRow, KeyVersionRow } from './types.js';

export type Row = Record<string, unknown>;

export function num(value: unknown): number {
  return typeof value === 'number' ? value : Number(value);
}

export function bytes(value: unknown): Uint8Array {
  return value instanceof Uint8Array ? value : new Uint8Array(0);
}

/** Drivers bind Buffers as binary; a plain Uint8Array is viewed as one without copying. */
export function buffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

export function versionRow(r: Row): KeyVersionRow {
  return {
    name: r.name as string,
    version: num(r.version),
    term: num(r.term),
    wrapped: bytes(r.wrapped),
    createdAt: num(r.created_at),
    reserved: num(r.reserved),
  };
}

export function contextRow(r: Row): KeyContextRow {
  return {
    name: r.name as string,
    contextId: r.context_id as string,
    term: num(r.term),
    wrapped: bytes(r.wrapped),
    createdAt: num(r.created_at),
  };
}

export function auditRow(r: Row): AuditRow {
  return { seq: num(r.seq), entry: r.entry as string, hash: r.hash as string, mac: r.mac as string };
}
