/**
 * Turning driver rows into the contract's records, shared by both stores. Drivers differ only in how they
 * hand back numbers (pg returns BIGINT as text) and bytes (both return Buffers), which these absorb.
 */
import type {
  AuditRow,
  E2eeBlobRow,
  E2eeCommitRow,
  E2eeGroupRow,
  E2eeLeafRow,
  E2eeMember,
  E2eeQueuedMessage,
  KeyContextRow,
  KeyVersionRow,
} from './types.js';

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

export function leafRow(r: Row): E2eeLeafRow {
  return {
    index: num(r.idx),
    userId: r.user_id as string,
    entry: bytes(r.entry),
    leafHash: bytes(r.leaf_hash),
    createdAt: num(r.created_at),
  };
}

/** A roster as stored: JSON `[[user, device], …]`. */
export function rosterText(roster: readonly E2eeMember[]): string {
  return JSON.stringify(roster.map((m) => [m.user, m.device]));
}

function rosterOf(text: unknown): E2eeMember[] {
  const pairs = JSON.parse(String(text)) as [string, string][];
  return pairs.map(([user, device]) => ({ user, device }));
}

export function groupRow(r: Row): E2eeGroupRow {
  return {
    groupId: r.group_id as string,
    epoch: num(r.epoch),
    roster: rosterOf(r.roster),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

export function commitRow(r: Row): E2eeCommitRow {
  return {
    groupId: r.group_id as string,
    epoch: num(r.epoch),
    sender: { user: r.sender_user as string, device: r.sender_device as string },
    frame: bytes(r.frame),
    createdAt: num(r.created_at),
  };
}

export function queuedRow(r: Row): E2eeQueuedMessage {
  return {
    seq: num(r.seq),
    groupId: r.group_id as string,
    epoch: num(r.epoch),
    kind: r.kind as E2eeQueuedMessage['kind'],
    sender: { user: r.sender_user as string, device: r.sender_device as string },
    frame: bytes(r.frame),
    receivedAt: num(r.received_at),
    expiresAt: num(r.expires_at),
  };
}

export function blobRow(r: Row): E2eeBlobRow {
  return {
    blobId: r.blob_id as string,
    groupId: r.group_id as string,
    owner: { user: r.owner_user as string, device: r.owner_device as string },
    ...(r.chunks === null || r.chunks === undefined ? {} : { chunks: num(r.chunks), size: num(r.size) }),
    createdAt: num(r.created_at),
    expiresAt: num(r.expires_at),
  };
}
