/** The server's built-in API page: a static document that loads the OpenAPI description from this server. */
export const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>enseal API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}code{background:#f3f3f3;padding:0 .2rem}</style>
</head><body>
<h1>enseal HTTP API</h1>
<p>A Vault-Transit-compatible encryption service. Authenticate with <code>X-Vault-Token</code> or
<code>Authorization: Bearer</code>. The machine-readable description is at
<a href="/v1/sys/openapi.json">/v1/sys/openapi.json</a>; load it into any OpenAPI viewer.</p>
<pre>curl --cacert dev-ca.pem -H "X-Vault-Token: $ENSEAL_TOKEN" \\
  -d '{"plaintext":"aGVsbG8="}' https://127.0.0.1:8200/v1/transit/encrypt/orders</pre>
</body></html>`;
