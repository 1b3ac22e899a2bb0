/**
 * What the e2ee routes share: decoding request values (names, base64, group ids, frames), the calling device,
 * the audit context, and the JSON schema pieces of the routes.
 */
import {
  EnsealError,
  ErrorCode,
  base64Decode,
  base64UrlDecode,
  invalidArgument,
} from '../../crypto/index.js';
import type { CallContext } from '../../kms/index.js';
import type { E2eeMember } from '../../store/index.js';
import { callerOf, type FastifyRequest } from '../http.js';
import { checkFrame } from './frames.js';

/** User and device names: the key-name alphabet. */
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$';
const NAME = new RegExp(NAME_PATTERN);
/** A group id in a path or body: 16 to 64 bytes as unpadded base64url. */
export const GID_PATTERN = '^[A-Za-z0-9_-]{22,86}$';
export const GID = new RegExp(GID_PATTERN);
/** Standard base64 with padding. */
export const B64_PATTERN = '^[A-Za-z0-9+/]*={0,2}$';

export type Body = Record<string, unknown>;

export function ctxOf(request: FastifyRequest): CallContext {
  return { caller: callerOf(request) };
}

/** The device a device token is bound to; ERR_PERMISSION_DENIED for any other token. */
export function deviceOf(request: FastifyRequest): E2eeMember {
  const d = request.token?.device;
  if (d === undefined) throw new EnsealError(ErrorCode.PERMISSION_DENIED, 'this route needs a device token');
  return { user: d.user, device: d.device };
}

export function checkName(what: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME.test(value) || value.includes('..'))
    throw invalidArgument(
      what,
      'must be 1-128 characters of A-Z a-z 0-9 _ . -, starting with a letter or digit',
    );
  return value;
}

/** Decodes a base64 field of at most `maxBytes` bytes (decoded). */
export function b64(what: string, value: unknown, maxBytes: number): Uint8Array {
  if (typeof value !== 'string' || value.length === 0) throw invalidArgument(what, 'is required (base64)');
  if (value.length > Math.ceil(maxBytes / 3) * 4 + 4)
    throw invalidArgument(what, `must be at most ${maxBytes} bytes`);
  const bytes = base64Decode(value, what);
  if (bytes.length > maxBytes) throw invalidArgument(what, `must be at most ${maxBytes} bytes`);
  return bytes;
}

/** A frame field: base64 of a correctly padded frame (ERR_MALFORMED otherwise). */
export function frameField(what: string, value: unknown): Uint8Array {
  const frame = b64(what, value, 4 * 1024 * 1024);
  checkFrame(frame);
  return frame;
}

/** A group id: unpadded base64url of 16 to 64 bytes; returned as given (its canonical text). */
export function groupId(value: unknown): string {
  if (typeof value !== 'string' || !GID.test(value))
    throw invalidArgument('group_id', 'must be 16 to 64 bytes as unpadded base64url');
  const raw = base64UrlDecode(value, 'group_id');
  if (raw.length < 16 || raw.length > 64) throw invalidArgument('group_id', 'must be 16 to 64 bytes');
  return value;
}

/** A roster: distinct `{user, device}` members, at most `max`. */
export function roster(what: string, value: unknown, max = 10_000): E2eeMember[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > max)
    throw invalidArgument(what, `must list 1 to ${max} members`);
  const seen = new Set<string>();
  return value.map((m: unknown) => {
    const o = (typeof m === 'object' && m !== null ? m : {}) as Body;
    const member = {
      user: checkName(`${what}[].user`, o.user),
      device: checkName(`${what}[].device`, o.device),
    };
    const key = `${member.user}/${member.device}`;
    if (seen.has(key)) throw invalidArgument(what, 'lists a member twice');
    seen.add(key);
    return member;
  });
}

export function sameMember(a: E2eeMember, b: E2eeMember): boolean {
  return a.user === b.user && a.device === b.device;
}

export function inRoster(list: readonly E2eeMember[], m: E2eeMember): boolean {
  return list.some((x) => sameMember(x, m));
}

/** A non-negative integer from a body or query value (query values arrive as text). */
export function count(what: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0 || n > max)
    throw invalidArgument(what, `must be an integer between 0 and ${max}`);
  return n;
}

// ---- JSON schema pieces (every route has a full schema with an example)

export const nameSchema = { type: 'string', pattern: NAME_PATTERN, maxLength: 128 } as const;
export const b64Schema = (maxBytes: number) =>
  ({ type: 'string', pattern: B64_PATTERN, maxLength: Math.ceil(maxBytes / 3) * 4 }) as const;
export const memberSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['user', 'device'],
  properties: { user: nameSchema, device: nameSchema },
} as const;
export const rosterSchema = { type: 'array', minItems: 1, maxItems: 10_000, items: memberSchema } as const;
export const gidSchema = { type: 'string', pattern: GID_PATTERN } as const;
export const seqSchema = { type: 'integer', minimum: 0 } as const;
/** Query values arrive as text; they are parsed by {@link count}. */
export const intQuery = { type: 'string', pattern: '^[0-9]{1,16}$' } as const;
export const FRAME_B64_MAX = Math.ceil((4 * 1024 * 1024) / 3) * 4;
export const frameSchema = { type: 'string', pattern: B64_PATTERN, maxLength: FRAME_B64_MAX } as const;

/** A route's schema: tags, summary, the parts given, and `examples` (an OpenAPI example) on each. */
export function routeSchema(
  summary: string,
  parts: {
    params?: Record<string, unknown>;
    querystring?: Record<string, unknown>;
    body?: Record<string, unknown>;
    response: Record<string, unknown>;
  },
  examples: { params?: unknown; querystring?: unknown; body?: unknown; response: unknown },
): Record<string, unknown> {
  const withExample = (schema: Record<string, unknown>, example: unknown) =>
    example === undefined ? schema : { ...schema, examples: [example] };
  return {
    tags: ['e2ee'],
    summary,
    ...(parts.params ? { params: withExample(parts.params, examples.params) } : {}),
    ...(parts.querystring ? { querystring: withExample(parts.querystring, examples.querystring) } : {}),
    ...(parts.body ? { body: withExample(parts.body, examples.body) } : {}),
    response: { 200: withExample(parts.response, examples.response) },
  };
}

/** An object schema with every property required unless listed in `optional`, and no others. */
export function obj(
  properties: Record<string, unknown>,
  optional: readonly string[] = [],
): Record<string, unknown> {
  return {
    type: 'object',
    additionalProperties: false,
    required: Object.keys(properties).filter((k) => !optional.includes(k)),
    properties,
  };
}
