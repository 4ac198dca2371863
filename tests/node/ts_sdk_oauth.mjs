// The TypeScript SDK 2.x client (@modelcontextprotocol/client) through the whole OAuth flow against
// our server and oidc-provider: the 401's resource metadata, the authorization server's metadata,
// dynamic client registration, an authorization code with PKCE and the resource indicator, then tool
// calls; a cancel asked with a read-only token is answered 403 insufficient_scope, and the client
// steps up. The person at the authorization server is played here: the script signs in as `account`
// and consents on oidc-provider's development interaction pages, over plain HTTP.
//
// argv[2] is JSON {url, account, project, jobId}. Prints one JSON line per step.
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from "@modelcontextprotocol/client";

const { url, account, project, jobId } = JSON.parse(process.argv[2]);
const REDIRECT = "http://127.0.0.1:9/callback"; // never reached: the code is read from the redirect
const say = (step) => console.log(JSON.stringify(step));

class Browser {
  // A cookie jar and manual redirects: just enough of a browser for oidc-provider's forms.
  cookies = new Map();

  async request(target, init = {}) {
    const headers = { ...(init.headers ?? {}), cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ") };
    const answer = await fetch(target, { ...init, headers, redirect: "manual" });
    for (const cookie of answer.headers.getSetCookie()) {
      const [pair] = cookie.split(";");
      const [name, ...value] = pair.split("=");
      this.cookies.set(name.trim(), value.join("="));
    }
    return answer;
  }

  // Follow the authorization request until it redirects to REDIRECT; returns that URL's parameters.
  async authorize(authorizationUrl) {
    let next = new URL(authorizationUrl);
    for (let hop = 0; hop < 20; hop++) {
      if (next.href.startsWith(REDIRECT)) return next.searchParams;
      let answer = await this.request(next);
      if (next.pathname.startsWith("/interaction/") && answer.status === 200) {
        const page = await answer.text();
        const form = page.includes('name="login"')
          ? { prompt: "login", login: account, password: "any" }
          : { prompt: "consent" };
        say({ step: "interaction", prompt: form.prompt });
        answer = await this.request(next, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams(form).toString(),
        });
      }
      const location = answer.headers.get("location");
      if (!location) throw new Error(`no redirect from ${next.pathname}: HTTP ${answer.status} ${await answer.text()}`);
      next = new URL(location, next);
    }
    throw new Error("too many redirects");
  }
}

class Provider {
  // An OAuthClientProvider kept in memory; its authorization "redirect" is the Browser above.
  browser = new Browser();
  pending = undefined;
  saved = {};

  get redirectUrl() { return REDIRECT; }
  get clientMetadata() {
    return {
      client_name: "cancel-job-mcp test (TypeScript SDK)",
      redirect_uris: [REDIRECT],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
      scope: "jobs:read jobs:cancel", // what this client may ever ask for; each request asks for less
    };
  }
  clientInformation() { return this.saved.client; }
  saveClientInformation(client) {
    this.saved.client = client;
    say({ step: "registered", client_id: client.client_id });
  }
  tokens() { return this.saved.tokens; }
  saveTokens(tokens) {
    this.saved.tokens = tokens;
    const claims = JSON.parse(Buffer.from(tokens.access_token.split(".")[1], "base64url").toString());
    say({ step: "token", scope: claims.scope, aud: claims.aud, sub: claims.sub, client_id: claims.client_id });
  }
  saveDiscoveryState(state) { this.saved.discovery = state; }
  discoveryState() { return this.saved.discovery; }
  saveCodeVerifier(verifier) { this.saved.verifier = verifier; }
  codeVerifier() { return this.saved.verifier; }
  async redirectToAuthorization(authorizationUrl) {
    const asked = Object.fromEntries(authorizationUrl.searchParams);
    say({
      step: "authorize",
      scope: asked.scope,
      resource: asked.resource,
      code_challenge_method: asked.code_challenge_method,
      has_state: Boolean(asked.state),
    });
    this.pending = await this.browser.authorize(authorizationUrl);
    if (!this.pending.get("code")) throw new Error(`authorization refused: ${this.pending}`);
  }

  async finish(transport) {
    const params = this.pending;
    this.pending = undefined;
    await transport.finishAuth(params);
  }
}

const provider = new Provider();
let client;

async function connect() {
  for (let attempt = 0; attempt < 3; attempt++) {
    client = new Client({ name: "ts-sdk-oauth-test", version: "0" });
    const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
    try {
      await client.connect(transport);
      return;
    } catch (error) {
      if (!(error instanceof UnauthorizedError) || !provider.pending) throw error;
      await provider.finish(transport);
    }
  }
  throw new Error("could not connect");
}

async function call(name, args) {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const result = await client.callTool({ name, arguments: args });
      say({ step: "call", name, isError: result.isError ?? false, result: result.structuredContent ?? result.content });
      return;
    } catch (error) {
      if (!(error instanceof UnauthorizedError) || !provider.pending) throw error;
      say({ step: "step-up", name });
      await client.close();
      const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
      await provider.finish(transport);
      await connect();
    }
  }
  throw new Error(`${name} kept failing`);
}

await connect();
const tools = await client.listTools();
say({ step: "tools", names: tools.tools.map((tool) => tool.name).sort() });
await call("get_job", { project_reference: project, job_id: jobId });
await call("cancel_job", { project_reference: project, job_id: jobId });
await client.close();
