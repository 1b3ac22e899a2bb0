/**
 * What the OpenAPI document (and the `/docs` reference rendered from it) says about each route: its body,
 * parameters, success shape, error shape and an example.
 *
 * These schemas are documentation only. A route carries them in `config.docs`, never in `schema`, and
 * {@link withRouteDocs} merges them into the route's schema when the document is built. Fastify never sees them,
 * and that is the point: a response schema in `schema.response` becomes the answer's serialiser, which drops every
 * property it leaves out and coerces the rest, so a field Vault clients read could vanish without a test
 * noticing. A request schema in `schema.body` would validate with type coercion and wrap a stray object into a
 * list, so input the handlers refuse today with a stable error code would be changed or refused with another
 * message. The handlers stay the only judges of their input; the schemas that did validate before (key names,
 * the few routes that declared theirs) still do.
 */
import type { FastifySchema, RouteOptions } from 'fastify';

/** A JSON Schema, as the OpenAPI generator takes it. */
export type Schema = Record<string, unknown>;

/** A route's documentation: merged into its schema in the OpenAPI document only. */
export interface RouteDocs {
  readonly params?: Schema;
  readonly querystring?: Schema;
  readonly body?: Schema;
  readonly response: Record<string, Schema>;
}

/** The part of a route's schema that is shown in the document and never validates or serialises. */
export interface RouteSchema extends RouteDocs {
  readonly description?: string;
  readonly security?: readonly Record<string, readonly string[]>[];
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Documentation only (see route-docs.ts). */
    docs?: RouteDocs;
  }
}

/**
 * `transform` for the OpenAPI generator: the route's schema with its `config.docs` merged in. The documentation
 * wins: where a route also declares a schema Fastify checks (a key name's length), the documentation describes
 * the same input more fully.
 */
export function withRouteDocs({
  schema,
  url,
  route,
}: {
  schema: FastifySchema;
  url: string;
  route: RouteOptions;
}): { schema: FastifySchema; url: string } {
  const docs = route.config?.docs;
  if (docs === undefined) return { schema, url };
  const own = (schema ?? {}) as Record<string, unknown>;
  return {
    schema: {
      ...own,
      ...docs,
      response: { ...(own.response as Record<string, Schema> | undefined), ...docs.response },
    } as FastifySchema,
    url,
  };
}

/** Splits a route's documentation into what Fastify sees (`schema`) and what only the document shows. */
export function documented(
  tags: readonly string[],
  summary: string,
  doc: RouteSchema,
): { schema: FastifySchema; docs: RouteDocs } {
  const { description, security, params, querystring, body, response } = doc;
  return {
    schema: {
      tags,
      summary,
      ...(description !== undefined ? { description } : {}),
      ...(security !== undefined ? { security } : {}),
    } as FastifySchema,
    docs: {
      response,
      ...(params !== undefined ? { params } : {}),
      ...(querystring !== undefined ? { querystring } : {}),
      ...(body !== undefined ? { body } : {}),
    },
  };
}

/** Vault's error answer. */
export const ERRORS: Schema = {
  type: 'object',
  description: 'Vault-shaped error: each entry is `ERR_CODE: what to do`',
  properties: { errors: { type: 'array', items: { type: 'string' } } },
  required: ['errors'],
  examples: [
    { errors: ['ERR_PERMISSION_DENIED: a valid token is required (X-Vault-Token or Authorization: Bearer)'] },
  ],
};

/** A 204 answer. */
export const NO_CONTENT: Schema = { type: 'null', description: 'Done; no body' };

/** Vault's response envelope around `data`, with an example of the whole answer. */
export function vault(data: Schema, example: unknown, description = 'Success'): Schema {
  return {
    type: 'object',
    description,
    properties: {
      request_id: { type: 'string' },
      lease_id: { type: 'string' },
      renewable: { type: 'boolean' },
      lease_duration: { type: 'integer' },
      data,
      wrap_info: { nullable: true },
      warnings: { nullable: true },
      auth: { nullable: true },
    },
    examples: [
      {
        request_id: '2b578061-82e8-4c9b-a58e-14b8a89a3c75',
        lease_id: '',
        renewable: false,
        lease_duration: 0,
        data: example,
        wrap_info: null,
        warnings: null,
        auth: null,
      },
    ],
  };
}

/** An object schema with the given properties (none required, others allowed: clients send extras). */
export function object(properties: Record<string, Schema>, example?: unknown, description?: string): Schema {
  return {
    type: 'object',
    properties,
    ...(description !== undefined ? { description } : {}),
    ...(example !== undefined ? { examples: [example] } : {}),
  };
}

/** A request body: a JSON object, or no body at all (Vault clients send both). */
export function body(properties: Record<string, Schema>, example: unknown, description?: string): Schema {
  return { ...object(properties, example, description), nullable: true };
}

/** A body with no fields. */
export const EMPTY_BODY = body({}, {}, 'No fields: an empty object or no body');

/** Path parameters, all strings. */
export function params(names: Record<string, string>): Schema {
  return {
    type: 'object',
    properties: Object.fromEntries(
      Object.entries(names).map(([name, description]) => [
        name,
        { type: 'string', maxLength: 128, description },
      ]),
    ),
    required: Object.keys(names),
  };
}

/** A query string (values arrive as strings). */
export function query(properties: Record<string, Schema>, required: readonly string[] = []): Schema {
  return { type: 'object', properties, ...(required.length > 0 ? { required } : {}) };
}

/** The `list=true` a list route needs (the `LIST` method adds it). */
export const LIST_FLAG: Schema = {
  type: 'string',
  enum: ['true'],
  description: 'Required on list routes; the LIST method is the same request',
};

/** A string field, base64 unless said otherwise. */
export const base64 = (description: string, example: string): Schema => ({
  type: 'string',
  description: `${description} (base64)`,
  examples: [example],
});
export const text = (description: string, example?: string): Schema => ({
  type: 'string',
  description,
  ...(example !== undefined ? { examples: [example] } : {}),
});
/** A field the handler parses itself (an integer, a boolean or a duration, also given as a string). */
export const loose = (description: string, example: unknown): Schema => ({
  description,
  examples: [example],
});
export const strings = (description: string, example: string[]): Schema => ({
  type: 'array',
  items: { type: 'string' },
  description,
  examples: [example],
});
/** `batch_input`: items are checked one by one, so a bad item is that item's error, not the request's. */
export const batchInput = (example: unknown[]): Schema => ({
  type: 'array',
  description: 'Batch items, each with the single-item fields and an optional `reference`; up to 10,000',
  items: { type: 'object' },
  examples: [example],
});

/** Success (and, for batch routes, the per-item answer), plus errors for every 4xx and 5xx. */
export function responses(success: Record<string, Schema>): Record<string, Schema> {
  return { ...success, '4xx': ERRORS, '5xx': ERRORS };
}

/** Routes that answer without a token say so, so try-it-out sends none. */
export const NO_TOKEN: readonly Record<string, readonly string[]>[] = [];
