// A real OpenID Connect provider (node-oidc-provider) for the hub's login tests.
// Started by tests/src/oidc_support.rs on loopback:
//   PORT, REDIRECT_URI, CLIENT_ID, CLIENT_SECRET from the environment.
// One confidential client; PKCE (S256) required; the provider's development
// interactions are the login and consent pages (any login name, any password).
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const redirectUri = process.env.REDIRECT_URI;
const clientId = process.env.CLIENT_ID;
const clientSecret = process.env.CLIENT_SECRET;
if (!port || !redirectUri || !clientId || !clientSecret) {
  console.error('provider.mjs needs PORT, REDIRECT_URI, CLIENT_ID and CLIENT_SECRET');
  process.exit(2);
}

// People: the login name is the account id; names derived from it. A login name
// `who=mail` is account `who=mail` whose e-mail is `mail@example.org` (two accounts with
// one e-mail, for the identity tests).
function claimsOf(id) {
  const [who, mail] = id.includes('=') ? id.split('=', 2) : [id, id];
  const given = who.charAt(0).toUpperCase() + who.slice(1);
  return {
    sub: id,
    name: `${given} Tester`,
    given_name: given,
    family_name: 'Tester',
    email: `${mail}@example.org`,
    email_verified: true,
  };
}

// A signing key of this process's own (not the library's fixed development key), so two
// providers started side by side have different issuers *and* different keys.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  jwks: { keys: [signingKey] },
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  pkce: { methods: ['S256'], required: () => true },
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name'],
    email: ['email', 'email_verified'],
  },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => claimsOf(id),
  }),
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['pek-test-only-cookie-key'] },
});
provider.proxy = false;
provider.on('server_error', (ctx, err) => console.error('server_error', err));

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
