// Riverside ID: an OpenID Connect provider for the reference portal's SSO mode.
//
// node's `oidc-provider` with interaction pages that follow the library's documented example
// (example/routes/koa.js and example/standalone.js: a login form, a consent page, helmet's
// headers without `form-action`). Two things a hospital IdP has and the example has not:
// passwords are really checked (scrypt hashes made at start from the environment; the example
// accepts any), and consecutive wrong passwords lock the account for a while. The portal is a
// first-party client, so the provider grants it consent itself (`loadExistingGrant`, the
// library's documented way to skip consent). Session and cookie settings are the library's.
//
//   node server.mjs --port 8443 --issuer https://localhost:8443 --cert chain.pem --key key.pem \
//     --redirect-uri https://127.0.0.1:9443/login/sso/callback \
//     --post-logout-redirect-uri 'https://127.0.0.1:9443/login?signed_out=1'
//
// Environment (never files): OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, and OIDC_ACCOUNTS, a JSON list
// of {"sub", "username", "password", "email", "name"}. When the HTTPS listener is up, one JSON
// line {"issuer", "host", "port", "pid"} is printed to stdout; logs go to stderr.

import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import { parseArgs, promisify } from 'node:util';

import helmet from 'helmet';
import Provider, { errors } from 'oidc-provider';

const MAX_FORM_BYTES = 16 * 1024;
const GENERIC_SIGN_IN_ERROR = 'The username or password is incorrect.';
// Mozilla intermediate (TLS 1.2 suites; node's TLS 1.3 suites already match it).
const TLS_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384', 'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');
const FIRST_PARTY_SCOPE = 'openid email profile';

function fail(message) {
  console.error(`oidc_provider: ${message}`);
  process.exit(2);
}

function options() {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      issuer: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      'redirect-uri': { type: 'string' },
      'post-logout-redirect-uri': { type: 'string' },
      'lockout-threshold': { type: 'string', default: '5' },
      'lockout-seconds': { type: 'string', default: '15' },
    },
    strict: true,
  });
  for (const name of ['port', 'issuer', 'cert', 'key', 'redirect-uri', 'post-logout-redirect-uri']) {
    if (!values[name]) fail(`--${name} is required`);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) fail(`not a port: ${values.port}`);
  const threshold = Number(values['lockout-threshold']);
  const lockSeconds = Number(values['lockout-seconds']);
  if (!Number.isInteger(threshold) || threshold < 1) fail('--lockout-threshold: a whole number >= 1');
  if (!(lockSeconds > 0)) fail('--lockout-seconds: a positive number');
  return { ...values, port, threshold, lockSeconds };
}

function secretsFromEnvironment() {
  const clientId = process.env.OIDC_CLIENT_ID;
  const clientSecret = process.env.OIDC_CLIENT_SECRET;
  const accountsJson = process.env.OIDC_ACCOUNTS;
  if (!clientId || !clientSecret) fail('OIDC_CLIENT_ID and OIDC_CLIENT_SECRET must be set');
  if (!accountsJson) fail('OIDC_ACCOUNTS must be set (a JSON list of accounts)');
  let accounts;
  try {
    accounts = JSON.parse(accountsJson);
  } catch {
    fail('OIDC_ACCOUNTS is not JSON');
  }
  if (!Array.isArray(accounts) || !accounts.length) fail('OIDC_ACCOUNTS: a non-empty list');
  for (const account of accounts) {
    for (const key of ['sub', 'username', 'password']) {
      if (typeof account?.[key] !== 'string' || !account[key]) fail(`every account needs a ${key}`);
    }
  }
  // Nothing secret stays in the environment any child or crash report could read.
  delete process.env.OIDC_CLIENT_SECRET;
  delete process.env.OIDC_ACCOUNTS;
  return { clientId, clientSecret, accounts };
}

// -- accounts: scrypt hashes in memory, per-account lockout ---------------------------------

function hashPassword(password, salt = crypto.randomBytes(16)) {
  return { salt, hash: crypto.scryptSync(password, salt, 32) };
}

class Accounts {
  constructor(list, { threshold, lockSeconds }) {
    this.byUsername = new Map();
    this.bySub = new Map();
    for (const { sub, username, password, email, name } of list) {
      const entry = {
        sub, username, email: email || undefined, name: name || undefined, ...hashPassword(password),
      };
      this.byUsername.set(username.toLowerCase(), entry);
      this.bySub.set(sub, entry);
    }
    // Verified against for unknown usernames, so both answers cost the same scrypt work.
    this.dummy = hashPassword(crypto.randomBytes(32).toString('base64url'));
    this.threshold = threshold;
    this.lockMs = lockSeconds * 1000;
    this.failures = new Map(); // sub -> { count, lockedUntil }
  }

  // The account's sub for the right password of an unlocked account; null otherwise. A locked
  // account, an unknown username and a wrong password cost the same and read the same.
  authenticate(username, password) {
    const entry = this.byUsername.get(String(username).trim().toLowerCase());
    const { salt, hash } = entry ?? this.dummy;
    const matches = crypto.timingSafeEqual(crypto.scryptSync(String(password), salt, 32), hash);
    if (!entry) return null;
    const now = Date.now();
    const state = this.failures.get(entry.sub) ?? { count: 0, lockedUntil: 0 };
    if (state.lockedUntil > now) return null; // attempts while locked are not counted
    if (!matches) {
      state.count += 1;
      if (state.count >= this.threshold) {
        state.count = 0;
        state.lockedUntil = now + this.lockMs;
      }
      this.failures.set(entry.sub, state);
      return null;
    }
    this.failures.delete(entry.sub);
    return entry.sub;
  }

  find(sub) {
    const entry = this.bySub.get(sub);
    if (!entry) return undefined;
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          email: entry.email,
          email_verified: entry.email ? true : undefined,
          name: entry.name,
          preferred_username: entry.username,
        };
      },
    };
  }
}

// -- pages ------------------------------------------------------------------------------------

function escapeHtml(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function layout({ title, uid, body }) {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} | Riverside ID</title>
<style>
body { font-family: system-ui, sans-serif; background: #f4f6f8; margin: 0; }
.login-card { max-width: 22rem; margin: 4rem auto; background: #fff; padding: 2rem; border-radius: 6px; }
.login-card input, .login-card button { display: block; width: 100%; margin: .5rem 0; padding: .6rem; box-sizing: border-box; }
.error { color: #a40000; }
</style>
</head>
<body>
<div class="login-card">
<p class="brand">Riverside ID</p>
<h1>${escapeHtml(title)}</h1>
${body}
<div class="login-help"><a href="/interaction/${escapeHtml(uid)}/abort">[ Cancel ]</a></div>
</div>
</body>
</html>`;
}

function loginPage({ uid, client, params, error }) {
  const hint = params.login_hint ? ` value="${escapeHtml(params.login_hint)}"` : ' autofocus="on"';
  const message = error ? `<p class="error" role="alert">${escapeHtml(error)}</p>\n` : '';
  return layout({
    title: 'Sign-in',
    uid,
    body: `<p>Sign in to continue to ${escapeHtml(client?.clientName || client?.clientId)}.</p>
${message}<form autocomplete="off" action="/interaction/${escapeHtml(uid)}/login" method="post">
  <input required type="text" name="login" placeholder="Username" aria-label="Username"${hint}>
  <input required type="password" name="password" placeholder="Password" aria-label="Password">
  <button type="submit" class="login login-submit">Sign-in</button>
</form>`,
  });
}

function consentPage({ uid, client, details }) {
  const scopes = (details.missingOIDCScope || []).map((s) => `<li>${escapeHtml(s)}</li>`).join('');
  return layout({
    title: 'Authorize',
    uid,
    body: `<p>${escapeHtml(client?.clientName || client?.clientId)} asks for:</p>
<ul>${scopes}</ul>
<form autocomplete="off" action="/interaction/${escapeHtml(uid)}/confirm" method="post">
  <button autofocus type="submit" class="login login-submit">Continue</button>
</form>`,
  });
}

function errorPage(title, detail) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} | Riverside ID</title></head>
<body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(detail)}</p></body></html>`;
}

async function readForm(ctx) {
  const type = (ctx.get('content-type') || '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') ctx.throw(415);
  const chunks = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) ctx.throw(413);
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// The interaction routes of the library's example, on the provider's koa app.
function interactions(provider, accounts) {
  const route = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/;
  return async (ctx, next) => {
    const match = route.exec(ctx.path);
    if (!match) return next();
    const [, , action] = match;
    ctx.set('cache-control', 'no-store');
    try {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      const { uid, prompt, params } = details;
      const client = await provider.Client.find(params.client_id);
      if (!action && ctx.method === 'GET') {
        ctx.type = 'html';
        ctx.body = prompt.name === 'login'
          ? loginPage({ uid, client, params })
          : consentPage({ uid, client, details: prompt.details });
        return undefined;
      }
      if (action === 'abort' && ctx.method === 'GET') {
        const result = { error: 'access_denied', error_description: 'End-User aborted interaction' };
        return finish(ctx, provider, result, false);
      }
      if (action === 'login' && ctx.method === 'POST' && prompt.name === 'login') {
        const form = await readForm(ctx);
        const accountId = accounts.authenticate(form.get('login') ?? '', form.get('password') ?? '');
        if (!accountId) {
          ctx.status = 401;
          ctx.type = 'html';
          ctx.body = loginPage({ uid, client, params, error: GENERIC_SIGN_IN_ERROR });
          return undefined;
        }
        return finish(ctx, provider, { login: { accountId } }, false);
      }
      if (action === 'confirm' && ctx.method === 'POST' && prompt.name === 'consent') {
        await readForm(ctx);
        return finish(ctx, provider, { consent: await grantConsent(provider, details) }, true);
      }
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = errorPage('Bad request', 'That sign-in step is not expected now.');
      return undefined;
    } catch (err) {
      if (!(err instanceof errors.SessionNotFound)) throw err;
      ctx.status = err.status;
      ctx.type = 'html';
      ctx.body = errorPage('Sign-in expired', 'Start again from the application you came from.');
      return undefined;
    }
  };
}

async function finish(ctx, provider, result, merge) {
  const target = await provider.interactionResult(ctx.req, ctx.res, result, {
    mergeWithLastSubmission: merge,
  });
  ctx.status = 303;
  ctx.redirect(target);
}

async function grantConsent(provider, details) {
  const { prompt: { details: missing }, params, session: { accountId } } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scope] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scope.join(' '));
  }
  const grantId = await grant.save();
  return details.grantId ? {} : { grantId };
}

// -- the provider -------------------------------------------------------------------------------

// Signing keys made for this run only: ES256 signs the portal's ID tokens; an RSA key is there
// because OpenID Connect makes RS256 mandatory to implement and the library insists on one.
function signingKeys() {
  const kid = () => crypto.randomBytes(8).toString('base64url');
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  return [
    { ...ec.export({ format: 'jwk' }), kid: kid(), use: 'sig', alg: 'ES256' },
    { ...rsa.export({ format: 'jwk' }), kid: kid(), use: 'sig', alg: 'RS256' },
  ];
}

function configuration(args, { clientId, clientSecret }, accounts) {
  return {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      client_name: 'Riverside Health patient portal',
      redirect_uris: [args['redirect-uri']],
      post_logout_redirect_uris: [args['post-logout-redirect-uri']],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
      require_auth_time: true,
    }],
    async findAccount(ctx, sub) {
      return accounts.find(sub);
    },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
    },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true },
    },
    interactions: {
      url(ctx, interaction) {
        return `/interaction/${interaction.uid}`;
      },
    },
    // The hospital's own portal is a first-party client: no consent page (the library's
    // documented pattern for skipping consent).
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      if (ctx.oidc.client.clientId !== clientId) return undefined;
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope(FIRST_PARTY_SCOPE);
      await grant.save();
      return grant;
    },
    pkce: { required: () => true },
    // Keys made for this run only (cookie signatures, ID tokens).
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    jwks: { keys: signingKeys() },
  };
}

async function main() {
  const args = options();
  const secrets = secretsFromEnvironment();
  const accounts = new Accounts(secrets.accounts, args);
  const provider = new Provider(args.issuer, configuration(args, secrets, accounts));

  // The example's headers: helmet's defaults, without form-action (the sign-in and sign-out
  // forms end in a redirect to the client, which form-action would block).
  const directives = helmet.contentSecurityPolicy.getDefaultDirectives();
  delete directives['form-action'];
  const pHelmet = promisify(helmet({ contentSecurityPolicy: { useDefaults: false, directives } }));
  provider.use(async (ctx, next) => {
    const origSecure = ctx.req.secure;
    ctx.req.secure = ctx.request.secure;
    await pHelmet(ctx.req, ctx.res);
    ctx.req.secure = origSecure;
    return next();
  });
  provider.use(interactions(provider, accounts));

  const server = https.createServer({
    cert: readFileSync(args.cert),
    key: readFileSync(args.key),
    minVersion: 'TLSv1.2',
    ciphers: TLS_CIPHERS,
    ecdhCurve: 'X25519:prime256v1:secp384r1',
  }, provider.callback());
  server.on('error', (err) => fail(`cannot listen on ${args.host}:${args.port}: ${err.message}`));
  server.listen(args.port, args.host, () => {
    const ready = { issuer: args.issuer, host: args.host, port: server.address().port, pid: process.pid };
    process.stdout.write(`${JSON.stringify(ready)}\n`);
    console.error(`oidc_provider: ${args.issuer} listening on ${args.host}:${args.port}`);
  });
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => fail(err?.stack || String(err)));
