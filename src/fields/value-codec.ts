/**
 * Typed column values as bytes, so that a value decrypts to what was stored: a string stays a string, a
 * number a number, a date a Date. One tag byte names the type and is checked against the column's declared
 * type on the way out, so a ciphertext of one type can never be read back as another.
 */
import { invalidArgument, malformed, utf8Decode, utf8Encode } from '../crypto/index.js';

export type FieldType = 'string' | 'number' | 'boolean' | 'date' | 'json' | 'bytes';
export type FieldValue = string | number | boolean | Date | Uint8Array | unknown;

const TAGS: Readonly<Record<FieldType, number>> = {
  string: 0x73,
  number: 0x6e,
  boolean: 0x62,
  date: 0x64,
  json: 0x6a,
  bytes: 0x78,
};

function withTag(type: FieldType, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 1);
  out[0] = TAGS[type];
  out.set(body, 1);
  return out;
}

/** Encodes `value` as `type`; INVALID_ARGUMENT when it is not a value of that type. */
export function encodeValue(type: FieldType, value: unknown): Uint8Array {
  switch (type) {
    case 'string':
      if (typeof value !== 'string') throw invalidArgument('value', 'must be a string for a string column');
      return withTag(type, utf8Encode(value));
    case 'number':
      if (typeof value !== 'number' || !Number.isFinite(value))
        throw invalidArgument('value', 'must be a finite number');
      return withTag(type, utf8Encode(JSON.stringify(value)));
    case 'boolean':
      if (typeof value !== 'boolean') throw invalidArgument('value', 'must be a boolean');
      return withTag(type, Uint8Array.of(value ? 1 : 0));
    case 'date':
      if (!(value instanceof Date) || Number.isNaN(value.getTime()))
        throw invalidArgument('value', 'must be a valid Date');
      return withTag(type, utf8Encode(value.toISOString()));
    case 'json': {
      let text: string | undefined;
      try {
        text = JSON.stringify(value);
      } catch {
        text = undefined;
      }
      if (text === undefined) throw invalidArgument('value', 'must be JSON-serialisable');
      return withTag(type, utf8Encode(text));
    }
    case 'bytes':
      if (!(value instanceof Uint8Array)) throw invalidArgument('value', 'must be a Uint8Array');
      return withTag(type, value);
  }
}

/** Decodes bytes made by {@link encodeValue} for a column of `type`. */
export function decodeValue(type: FieldType, bytes: Uint8Array): FieldValue {
  if (bytes.length === 0 || bytes[0] !== TAGS[type]) throw malformed('field value', `is not a ${type} value`);
  const body = bytes.subarray(1);
  switch (type) {
    case 'string':
      return utf8Decode(body);
    case 'number':
      return Number(JSON.parse(utf8Decode(body)));
    case 'boolean':
      return body[0] === 1;
    case 'date':
      return new Date(utf8Decode(body));
    case 'json':
      return JSON.parse(utf8Decode(body)) as unknown;
    case 'bytes':
      return new Uint8Array(body);
  }
}

export function isFieldType(value: unknown): value is FieldType {
  return typeof value === 'string' && Object.hasOwn(TAGS, value);
}
