// The TypeScript client 2.x's machine flow: PrivateKeyJwtProvider (client credentials with a
// private_key_jwt assertion), then tools/list and a tool call. With --dpop the provider also
// implements dpop() (the client's DPoP option, RFC 9449): the token request carries a proof,
// Keycloak binds the token to the session's key, every MCP request carries `Authorization: DPoP`
// and a fresh proof. Then the same token is tried as Bearer without a proof. Prints one JSON line.
//   node --require ./localhost.cjs ts2-machine.mjs <mcp url> <client id> <key.pem> <issuer> [--dpop]
import fs from 'node:fs';
import { Client, PrivateKeyJwtProvider, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { asBearer, binding, withDpopOption } from './ts2-common.mjs';

const [url, clientId, keyPath, issuer, flag] = process.argv.slice(2);
const provider = withDpopOption(new PrivateKeyJwtProvider({
  clientId,
  privateKey: fs.readFileSync(keyPath, 'utf8'),
  algorithm: 'ES256',
  expectedIssuer: issuer,
}), flag === '--dpop');
const client = new Client({ name: 'interop-ts2-machine', version: '1.0.0' });
await client.connect(new StreamableHTTPClientTransport(new URL(url), { authProvider: provider }));
const tools = await client.listTools();
const call = await client.callTool({ name: 'get_time', arguments: {} });
const whoami = await client.callTool({ name: 'whoami', arguments: {} });
const tokens = provider.tokens();
console.log(JSON.stringify({
  tools: tools.tools.map((t) => t.name),
  callIsError: call.isError ?? false,
  whoami: whoami.structuredContent ?? null,
  ...binding(tokens, provider.dpop ? await provider.dpop() : null),
  asBearer: await asBearer(url, tokens.access_token),
}));
await client.close();
