/**
 * The API reference at `/docs`: the OpenAPI document rendered by Swagger UI, whose files are served from the
 * installed package (never a CDN), with try-it-out. The token a user pastes into "Authorize" stays in the
 * page's memory: authorisations are not persisted (no localStorage, no cookie), so a reload forgets it.
 */
import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';
import type { FastifySwaggerUiOptions } from '@fastify/swagger-ui';

/** Where the reference is served; `/` redirects here. */
export const DOCS_PREFIX = '/docs';

/** The OpenAPI document's top level; routes add their paths. */
export const OPENAPI: NonNullable<FastifyDynamicSwaggerOptions['openapi']> = {
  info: {
    title: 'enseal HTTP API',
    version: '1',
    description:
      'Vault-Transit-compatible encryption service. Authenticate with `X-Vault-Token` (or ' +
      '`Authorization: Bearer`): press **Authorize** and paste a token; it is kept in this page only. ' +
      'List routes answer `GET ?list=true` and the `LIST` method alike. Errors are `{"errors": ["…"]}`.',
  },
  tags: [
    { name: 'transit', description: 'Keys and cryptographic operations, as in Vault Transit' },
    { name: 'sys', description: 'Seal, health, audit, policies, backups' },
    { name: 'auth', description: 'Tokens' },
    { name: 'seeds', description: "The seeds' /encrypt and /decrypt, authenticated" },
  ],
  components: { securitySchemes: { token: { type: 'apiKey', in: 'header', name: 'X-Vault-Token' } } },
  security: [{ token: [] }],
};

/** Swagger UI's options: try-it-out on, nothing persisted, no third-party validator. */
export const DOCS_UI: FastifySwaggerUiOptions = {
  routePrefix: DOCS_PREFIX,
  uiConfig: {
    // The base layout has no top bar: no box to load another document, and no logo drawn with an inline
    // <style>, which the CSP refuses.
    layout: 'BaseLayout',
    tryItOutEnabled: true,
    persistAuthorization: false,
    displayRequestDuration: true,
    deepLinking: true,
    docExpansion: 'list',
    defaultModelsExpandDepth: 0,
    filter: true,
  },
  theme: { title: 'enseal API' },
  // A hidden route never reaches the document; the page must not be told otherwise.
  staticCSP: false,
};
