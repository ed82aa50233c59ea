// A standards-compliant OpenID Connect provider for Lightbridge's single sign-on tests:
// panva's oidc-provider (OpenID Certified), unmodified, with its own development login pages
// (any login name and password sign in; the login name becomes the subject).
//
//   node provider.mjs <issuer> <redirect_uri> <client_secret> [<other_redirect_uri> <other_secret>]
//
// Listens on 127.0.0.1 on a free port and prints `listening=<port>` once ready. The issuer is
// given, not derived from that port, so the tests can put a proxy in front of it (to play a
// provider that misbehaves) and reach it under the proxy's address. A second client,
// `other-app`, is registered when its redirect URI and secret are given.
// The person's claims: email `<login>` (or `<login>@acme.example` without an @),
// email_verified true, name, and `lightbridge_role` from the login's prefix before `.`
// (`admin.ada@acme.example` → `admin`).
import http from 'node:http';
import Provider from 'oidc-provider';

const [issuer, redirectUri, clientSecret, otherRedirectUri, otherSecret] = process.argv.slice(2);
if (!issuer || !redirectUri || !clientSecret) {
  console.error('usage: node provider.mjs <issuer> <redirect_uri> <client_secret> [<other_redirect_uri> <other_secret>]');
  process.exit(2);
}
const client = (id, redirect, secret) => ({
  client_id: id,
  client_secret: secret,
  redirect_uris: [redirect],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
});
const clients = [client('lightbridge', redirectUri, clientSecret)];
if (otherRedirectUri && otherSecret) clients.push(client('other-app', otherRedirectUri, otherSecret));

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const provider = new Provider(issuer, {
    clients,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      // The role claim is released with the profile scope, as an administrator would map it.
      profile: ['name', 'lightbridge_role'],
    },
    features: { devInteractions: { enabled: true } },
    cookies: { keys: ['lightbridge-test-cookie-key'] },
    async findAccount(ctx, sub) {
      const email = sub.includes('@') ? sub : `${sub}@acme.example`;
      const prefix = sub.split('.')[0];
      return {
        accountId: sub,
        async claims() {
          return { sub, email, email_verified: true, name: `Person ${sub}`, lightbridge_role: prefix };
        },
      };
    },
  });
  provider.proxy = false;
  server.on('request', provider.callback());
  console.log(`listening=${port}`);
});
