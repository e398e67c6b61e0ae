// The TypeScript client 2.x's authorization-code flow with a Client ID Metadata Document: the
// client_id is the document's URL (`clientMetadataUrl`) and, the document saying private_key_jwt,
// every token request carries an assertion from createPrivateKeyJwtAuth (addClientAuthentication).
// Prints {"authorize": url} for the test's browser, checks `state` at the loopback callback and
// hands the callback's parameters to finishAuth (which checks `iss`, RFC 9207). Then tools/list and
// whoami; then a refresh (the SDK's auth() with the refresh token it holds) and whoami again with
// the new token; without --dpop, the notes tools (add_note, list_notes, delete_note: the MCP server
// calls the notes API as the user, by token exchange). With --dpop the provider implements dpop()
// (RFC 9449): the code exchange and the refresh carry proofs, the tokens are bound to the session's
// key, and the token is also tried as Bearer without a proof. Prints the results as the last JSON line.
//   node --require ./localhost.cjs ts2-cimd.mjs <mcp url> <client_id url> <key.pem> <callback port> [--dpop]
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import {
  Client, StreamableHTTPClientTransport, UnauthorizedError, auth, createPrivateKeyJwtAuth,
} from '@modelcontextprotocol/client';
import { asBearer, binding, withDpopOption } from './ts2-common.mjs';

const [url, clientId, keyPath, port, flag] = process.argv.slice(2);
const dpop = flag === '--dpop';
const redirectUrl = `http://127.0.0.1:${port}/callback`;
const expectedState = crypto.randomBytes(16).toString('base64url');

class Provider {
  clientMetadataUrl = clientId;
  addClientAuthentication = createPrivateKeyJwtAuth({
    issuer: clientId, subject: clientId, privateKey: fs.readFileSync(keyPath, 'utf8'), alg: 'ES256',
  });
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return {
      client_name: 'MCP TypeScript client 2.x (interop test)', redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      token_endpoint_auth_method: 'private_key_jwt',
    };
  }
  state() { return expectedState; }
  clientInformation() { return this.info; }
  saveClientInformation(info) { this.info = info; }
  tokens() { return this.saved; }
  saveTokens(tokens) { this.saved = tokens; }
  // SEP-2352: the callback leg is checked against the authorization server discovered first.
  discoveryState() { return this.discovery; }
  saveDiscoveryState(state) { this.discovery = state; }
  redirectToAuthorization(authorizationUrl) { console.log(JSON.stringify({ authorize: authorizationUrl.toString() })); }
  saveCodeVerifier(verifier) { this.verifier = verifier; }
  codeVerifier() { return this.verifier; }
}

let server;
const callback = new Promise((resolve, reject) => {
  server = http.createServer((req, res) => {
    const at = new URL(req.url, redirectUrl);
    if (at.pathname !== '/callback') { res.writeHead(404).end(); return; }
    res.end('Signed in; you can close this page.');
    // The SDK leaves `state` to the app (RFC 6749 §10.12).
    if (at.searchParams.get('state') !== expectedState) reject(new Error('state mismatch'));
    else if (at.searchParams.get('error')) reject(new Error(at.searchParams.get('error')));
    else resolve(at.searchParams);
  });
  server.listen(Number(port), '127.0.0.1');
});

const provider = withDpopOption(new Provider(), dpop);
const session = dpop ? await provider.dpop() : null;
const client = new Client({ name: 'interop-ts2-cimd', version: '1.0.0' });
let transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
try {
  await client.connect(transport);
} catch (error) {
  if (!(error instanceof UnauthorizedError)) throw error;
  await transport.finishAuth(await callback);
  transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  await client.connect(transport);
}
server.close();
const tools = await client.listTools();
const whoami = await client.callTool({ name: 'whoami', arguments: {} });
const login = binding(provider.tokens(), session);
const loginToken = provider.tokens().access_token;

// Refresh: the SDK's auth() with a refresh token in hand asks the token endpoint (grant_type
// refresh_token, the client assertion, and a DPoP proof with --dpop) rather than the browser.
const hadRefreshToken = Boolean(provider.tokens().refresh_token);
const refreshed = await auth(provider, { serverUrl: new URL(url) });
const afterRefresh = await client.callTool({ name: 'whoami', arguments: {} });
const refresh = {
  result: refreshed, hadRefreshToken, newAccessToken: provider.tokens().access_token !== loginToken,
  whoami: afterRefresh.structuredContent ?? null, isError: afterRefresh.isError ?? false,
  ...binding(provider.tokens(), session),
};

const outcome = (r) => (r ? { isError: r.isError ?? false, content: r.structuredContent ?? null } : null);
let notes = null;
if (!dpop) {
  const added = await client.callTool({ name: 'add_note', arguments: { text: `typescript client 2.x ${process.pid}` } });
  const listed = await client.callTool({ name: 'list_notes', arguments: {} });
  const note = added.structuredContent?.note;
  const deleted = note ? await client.callTool({ name: 'delete_note', arguments: { note_id: note.id } }) : null;
  notes = { added: outcome(added), listed: outcome(listed), deleted: outcome(deleted) };
}
console.log(JSON.stringify({
  tools: tools.tools.map((t) => t.name),
  clientId: provider.clientInformation()?.client_id ?? null,
  whoami: whoami.structuredContent ?? null,
  ...login,
  refresh,
  notes,
  asBearer: dpop ? await asBearer(url, provider.tokens().access_token) : null,
}));
await client.close();
