// Shared by ts2-machine.mjs and ts2-cimd.mjs (the TypeScript client 2.x): what the tests assert about
// the token the client holds, without printing the token itself.
import { DpopSession } from '@modelcontextprotocol/client';

// The token's claims (decoding only: the MCP server is the one that verifies it, and did, when the
// calls succeeded).
export function claimsOf(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

// What a test needs to tell a DPoP-bound token (RFC 9449 §6.1: cnf.jkt = the RFC 7638 thumbprint
// of the client's key) from a bearer one.
export function binding(tokens, session) {
  const claims = claimsOf(tokens.access_token);
  return {
    tokenType: tokens.token_type ?? null,
    cnfJkt: claims.cnf?.jkt ?? null,
    thumbprint: session ? session.thumbprint : null,
    scope: tokens.scope ?? claims.scope ?? null,
  };
}

// The same token sent as Bearer, with no proof, in a raw request: what a thief who copied it would
// send. Returns the status, the WWW-Authenticate error and the reason, never the token.
export async function asBearer(url, token) {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`, 'content-type': 'application/json',
      accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_time', arguments: {} } }),
  });
  const body = await response.text();
  const challenge = response.headers.get('www-authenticate') ?? '';
  let description = null;
  try { description = JSON.parse(body).error_description ?? null; } catch { /* not a JSON error */ }
  return { status: response.status, error: /error="([^"]*)"/.exec(challenge)?.[1] ?? null, description };
}

// The client's DPoP option: a provider that implements dpop() and returns the same session for its
// whole life (the SDK signs a proof into every token request with it and presents a
// `token_type: DPoP` token as `Authorization: DPoP` with a fresh proof on every MCP request).
export function withDpopOption(provider, enabled) {
  if (!enabled) return provider;
  const session = DpopSession.create();
  provider.dpop = () => session;
  return provider;
}
