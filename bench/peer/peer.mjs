// The benchmark's peer: oidc-provider (panva/node-oidc-provider), configured
// the way a team would to issue client_credentials access tokens as JWTs.
//
//   node peer.mjs   with PEER_PORT, PEER_ALG (RS256 | ES256 | EdDSA),
//                   PEER_CLIENT_ID, PEER_CLIENT_SECRET
//
// Resource https://api.example.com receives JWT access tokens signed with
// PEER_ALG; https://opaque.example.com receives opaque ones, which are what
// oidc-provider's introspection endpoint answers for (a JWT access token is
// not stored, so it cannot be introspected). A line "peer listening" on
// stdout says the server is up.
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PEER_PORT);
const alg = process.env.PEER_ALG ?? 'RS256';
const clientId = process.env.PEER_CLIENT_ID;
const clientSecret = process.env.PEER_CLIENT_SECRET;
if (!port || !clientId || !clientSecret) {
  console.error('peer.mjs: PEER_PORT, PEER_CLIENT_ID and PEER_CLIENT_SECRET are required');
  process.exit(2);
}

function key(kty, options, jwkAlg) {
  const { privateKey } = generateKeyPairSync(kty, options);
  return { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: jwkAlg, kid: `bench-${jwkAlg}` };
}
const keys = {
  RS256: () => key('rsa', { modulusLength: 2048 }, 'RS256'),
  ES256: () => key('ec', { namedCurve: 'P-256' }, 'ES256'),
  EdDSA: () => key('ed25519', {}, 'EdDSA'),
};
if (!keys[alg]) {
  console.error(`peer.mjs: PEER_ALG must be one of ${Object.keys(keys).join(', ')}`);
  process.exit(2);
}
// oidc-provider needs an RS256 key in its key set whatever else it signs with.
const jwks = { keys: alg === 'RS256' ? [keys.RS256()] : [keys[alg](), keys.RS256()] };

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    redirect_uris: [],
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resource) => {
        const common = { scope: 'api', audience: resource, accessTokenTTL: 900 };
        if (resource === 'https://api.example.com') {
          return { ...common, accessTokenFormat: 'jwt', jwt: { sign: { alg } } };
        }
        if (resource === 'https://opaque.example.com') {
          return { ...common, accessTokenFormat: 'opaque' };
        }
        throw new Provider.errors.InvalidTarget();
      },
    },
  },
});
provider.listen(port, '127.0.0.1', () => console.log('peer listening'));
