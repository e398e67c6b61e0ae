// The TypeScript SDK's machine flow (SEP-1046): PrivateKeyJwtProvider, client credentials with a
// private_key_jwt assertion — which it signs without a `kid` — and no scope configured (it sends
// only `resource`). Then tools/list and a tool call. Prints one JSON line.
//   node --require ./localhost.cjs ts-machine.mjs <mcp url> <client id> <key.pem> <issuer>
import fs from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { PrivateKeyJwtProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const [url, clientId, keyPath, issuer] = process.argv.slice(2);
const provider = new PrivateKeyJwtProvider({
  clientId,
  privateKey: fs.readFileSync(keyPath, 'utf8'),
  algorithm: 'ES256',
  expectedIssuer: issuer,
});
const client = new Client({ name: 'interop-ts-machine', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
const tools = await client.listTools();
const call = await client.callTool({ name: 'get_time', arguments: {} });
const tokens = provider.tokens();
console.log(JSON.stringify({
  tools: tools.tools.map((t) => t.name),
  callIsError: call.isError ?? false,
  scope: tokens?.scope ?? null,
}));
await client.close();
