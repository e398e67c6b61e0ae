// The TypeScript SDK's authorization-code flow with a Client ID Metadata Document: the client_id is
// the document's URL (`clientMetadataUrl`), and — the document saying private_key_jwt — every token
// request carries an assertion made by the SDK's createPrivateKeyJwtAuth (addClientAuthentication).
// Prints {"authorize": url} for the test's browser, takes the code at the loopback callback, then
// lists the tools and calls whoami, then the notes tools (add_note, list_notes, delete_note: the MCP
// server calls the notes API as the user, by token exchange); prints the results as the last JSON line.
//   node --require ./localhost.cjs ts-cimd.mjs <mcp url> <client_id url> <key.pem> <callback port>
import fs from 'node:fs';
import http from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { createPrivateKeyJwtAuth } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const [url, clientId, keyPath, port] = process.argv.slice(2);
const redirectUrl = `http://127.0.0.1:${port}/callback`;

class Provider {
  clientMetadataUrl = clientId;
  addClientAuthentication = createPrivateKeyJwtAuth({
    issuer: clientId, subject: clientId, privateKey: fs.readFileSync(keyPath, 'utf8'), alg: 'ES256',
  });
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return {
      client_name: 'MCP TypeScript SDK (interop test)', redirect_uris: [redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      token_endpoint_auth_method: 'private_key_jwt',
    };
  }
  clientInformation() { return this.info; }
  saveClientInformation(info) { this.info = info; }
  tokens() { return this.saved; }
  saveTokens(tokens) { this.saved = tokens; }
  redirectToAuthorization(authorizationUrl) { console.log(JSON.stringify({ authorize: authorizationUrl.toString() })); }
  saveCodeVerifier(verifier) { this.verifier = verifier; }
  codeVerifier() { return this.verifier; }
}

let server;
const code = new Promise((resolve, reject) => {
  server = http.createServer((req, res) => {
    const at = new URL(req.url, redirectUrl);
    if (at.pathname !== '/callback') { res.writeHead(404).end(); return; }
    res.end('Signed in; you can close this page.');
    if (at.searchParams.get('error')) reject(new Error(at.searchParams.get('error')));
    else resolve(at.searchParams.get('code'));
  });
  server.listen(Number(port), '127.0.0.1');
});

const provider = new Provider();
const client = new Client({ name: 'interop-ts-cimd', version: '1.0.0' });
let transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
try {
  await client.connect(transport);
} catch (error) {
  if (!(error instanceof UnauthorizedError)) throw error;
  await transport.finishAuth(await code);
  transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  await client.connect(transport);
}
server.close();
const tools = await client.listTools();
const call = await client.callTool({ name: 'whoami', arguments: {} });
const added = await client.callTool({ name: 'add_note', arguments: { text: `typescript sdk ${process.pid}` } });
const listed = await client.callTool({ name: 'list_notes', arguments: {} });
const note = added.structuredContent?.note;
const deleted = note ? await client.callTool({ name: 'delete_note', arguments: { note_id: note.id } }) : null;
const outcome = (r) => (r ? { isError: r.isError ?? false, content: r.structuredContent ?? null } : null);
console.log(JSON.stringify({
  tools: tools.tools.map((t) => t.name),
  clientId: provider.clientInformation()?.client_id ?? null,
  whoami: call.structuredContent ?? null,
  notes: { added: outcome(added), listed: outcome(listed), deleted: outcome(deleted) },
}));
await client.close();
