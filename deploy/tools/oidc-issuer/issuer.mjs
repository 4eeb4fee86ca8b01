// A real OpenID Connect issuer for the console's sign-in tests (never for production): panva's oidc-provider with
// its development login pages (any user name signs in). Access tokens are JWTs for the audience "kapnet" carrying
// the claims kapnet's services read (shared/auth/tokens.py): name, site and roles.
//
//   node issuer.mjs <port> <redirect uri> <site> <role>
import Provider from "oidc-provider";

const [port, redirectUri, site, role] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: "kapnet-console",
      redirect_uris: [redirectUri],
      response_types: ["code"],
      grant_types: ["authorization_code"],
      token_endpoint_auth_method: "none", // a public client: PKCE protects the code
    },
  ],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => "urn:kapnet:services", // its tokens' audience is "kapnet"
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        audience: "kapnet",
        scope: "openid",
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
  // Consent is the issuer's business; for the test every client is trusted.
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid");
    grant.addResourceScope("urn:kapnet:services", "openid");
    await grant.save();
    return grant;
  },
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
  extraTokenClaims: async (ctx, token) => ({ name: `OIDC ${token.accountId}`, site: site, roles: [role] }),
});
provider.proxy = false;
provider.listen(Number(port), "127.0.0.1", () => console.log(`issuer ${issuer} ready`));
