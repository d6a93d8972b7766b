// A real OpenID provider for internal/auth's tests: oauth2-mock-server on a
// loopback port it picks, serving its discovery document and JWKS. It
// prints {"issuer": URL} once listening, then answers each line of standard
// input, a JSON request, with one JSON line:
//   {"claims": {...}, "expires_in": N, "kid": K} -> {"token": JWT}
//     (claims set or, when null, removed; expires_in may be negative)
//   {"generate": KID} -> {"kid": KID} (a new RS256 key in the JWKS)
// It stops when standard input closes.
import { createInterface } from 'node:readline';
import { OAuth2Server } from 'oauth2-mock-server';

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256', { kid: 'k1' });
await server.start(0, '127.0.0.1');
console.log(JSON.stringify({ issuer: server.issuer.url }));

const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  const req = JSON.parse(line);
  if (req.generate) {
    await server.issuer.keys.generate('RS256', { kid: req.generate });
    console.log(JSON.stringify({ kid: req.generate }));
    continue;
  }
  const token = await server.issuer.buildToken({
    kid: req.kid ?? 'k1',
    expiresIn: req.expires_in ?? 3600,
    scopesOrTransform: (header, payload) => {
      for (const [k, v] of Object.entries(req.claims ?? {})) {
        if (v === null) delete payload[k];
        else payload[k] = v;
      }
    },
  });
  console.log(JSON.stringify({ token }));
}
await server.stop();
