// A real authorization server for the OAuth tests: npm's oidc-provider (OpenID Certified), on
// 127.0.0.1, with dynamic client registration, PKCE (required for authorization codes), resource
// indicators (RFC 8707: each token names the resource it was issued for), client credentials and
// introspection. Its development interactions (login and consent forms) stand in for a person.
//
// argv[2] is JSON: {port, issuer?, jwks, resources: {URL: {format: "jwt"|"opaque"}}, clients, accounts}.
// A client or an account may carry `cjm_projects` (copied into its tokens); a client `cjm_token_ttl`
// (seconds) and `cjm_token_format` ("opaque" for tokens only introspection can read). Prints
// {"issuer": ...} once it listens.
import http from "node:http";
import Provider, { errors } from "oidc-provider";

const config = JSON.parse(process.argv[2]);
const server = http.createServer();
await new Promise((resolve) => server.listen(config.port ?? 0, "127.0.0.1", resolve));
const issuer = config.issuer ?? `http://127.0.0.1:${server.address().port}`;
const SCOPES = "jobs:read jobs:cancel";

const provider = new Provider(issuer, {
  jwks: config.jwks,
  clients: config.clients ?? [],
  extraClientMetadata: { properties: ["cjm_projects", "cjm_token_ttl", "cjm_token_format"] },
  scopes: ["openid", "offline_access", "jobs:read", "jobs:cancel"],
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx, client, oneOf) => oneOf,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => {
        const known = config.resources[resource];
        if (!known) throw new errors.InvalidTarget();
        return {
          scope: SCOPES,
          audience: resource,
          accessTokenTTL: client?.cjm_token_ttl ?? 600,
          accessTokenFormat: client?.cjm_token_format ?? known.format,
          jwt: { sign: { alg: "RS256" } },
        };
      },
    },
  },
  extraTokenClaims: async (ctx, token) => {
    const client = token.clientId ? await provider.Client.find(token.clientId) : undefined;
    const account = token.accountId ? (config.accounts ?? {})[token.accountId] : undefined;
    const projects = account?.cjm_projects ?? client?.cjm_projects;
    return projects ? { cjm_projects: projects } : undefined;
  },
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  pkce: { required: () => true },
  loadExistingGrant: async (ctx) => {
    // A client that asks again (a scope step-up) goes through consent again; the first grant stays.
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    return grantId ? provider.Grant.find(grantId) : undefined;
  },
});
provider.proxy = false;
// A registered client may later ask for any scope (as many authorization servers allow): oidc-provider
// would bind it to the `scope` it registered with, and the TypeScript SDK registers with the scope of
// the first challenge (jobs:read), so a step-up to jobs:cancel could never be granted.
provider.use(async (ctx, next) => {
  if (ctx.method === "POST" && ctx.path === "/reg") {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const metadata = JSON.parse(Buffer.concat(chunks).toString());
    delete metadata.scope;
    ctx.req.body = metadata;
  }
  await next();
});
server.on("request", provider.callback());
console.log(JSON.stringify({ issuer, port: server.address().port }));
process.on("SIGTERM", () => server.close(() => process.exit(0)));
