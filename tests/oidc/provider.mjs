// A real OpenID Connect provider (node-oidc-provider) for the hub's login tests.
// Started by tests/src/oidc_support.rs on loopback:
//   PORT, REDIRECT_URI, CLIENT_ID, CLIENT_SECRET from the environment.
// One confidential client; PKCE (S256) required; the provider's development
// interactions are the login and consent pages (any login name, any password).
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const redirectUri = process.env.REDIRECT_URI;
const clientId = process.env.CLIENT_ID;
const clientSecret = process.env.CLIENT_SECRET;
if (!port || !redirectUri || !clientId || !clientSecret) {
  console.error('provider.mjs needs PORT, REDIRECT_URI, CLIENT_ID and CLIENT_SECRET');
  process.exit(2);
}

// People: the login name is the account id; names derived from it.
function claimsOf(id) {
  const given = id.charAt(0).toUpperCase() + id.slice(1);
  return {
    sub: id,
    name: `${given} Tester`,
    given_name: given,
    family_name: 'Tester',
    email: `${id}@example.org`,
    email_verified: true,
  };
}

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
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
