// jsforce 3 against the Lightbridge Salesforce org emulator, unchanged: code exchange with
// PKCE through the emulator's sign-in pages, refresh on session expiry, REST and Tooling
// SOQL, StaticResource create / read / update / delete, /limits and the identity URL.
//
// Started by crates/emulator/tests/compat.rs, which passes the emulator's addresses in
// the environment. Run by hand: see compat/README.md.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import jsforce from 'jsforce';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run through cargo test, see compat/README.md)`);
  return value;
};
const base = env('EMULATOR_URL');
const admin = `${base}/__emulator`;
const loginUrl = `${base}/hosts/login`;
const clientId = env('WEB_CLIENT_ID');
const clientSecret = env('WEB_CLIENT_SECRET');
const redirectUri = env('WEB_CALLBACK');
const username = env('SF_USERNAME');
const password = env('SF_PASSWORD');

const txnOf = (html) => /name="txn" value="([^"]+)"/.exec(html)[1];

// Signs in on the emulator's pages the way a person would, and returns the callback URL.
async function signInAndApprove(authorizeUrl) {
  const page = await (await fetch(authorizeUrl)).text();
  const txn = txnOf(page);
  const form = (fields) => ({ method: 'POST', redirect: 'manual', body: new URLSearchParams(fields) });
  const login = await fetch(`${loginUrl}/services/oauth2/authorize/login`, form({ txn, username, password }));
  if (login.status === 302) return login.headers.get('location');
  assert.match(await login.text(), /Allow access\?/);
  const approve = await fetch(`${loginUrl}/services/oauth2/authorize/approve`, form({ txn, decision: 'allow' }));
  assert.equal(approve.status, 302, 'the approval redirects to the callback');
  return approve.headers.get('location');
}

async function requestLog() {
  return (await fetch(`${admin}/requests`)).json();
}

test('jsforce works against the emulator unchanged', async (t) => {
  const oauth2 = new jsforce.OAuth2({ loginUrl, clientId, clientSecret, redirectUri, useVerifier: true });
  const authorizeUrl = oauth2.getAuthorizationUrl({ scope: 'api refresh_token web id', state: 'jsforce-state' });
  const callback = new URL(await signInAndApprove(authorizeUrl));
  assert.equal(callback.searchParams.get('state'), 'jsforce-state');
  const code = callback.searchParams.get('code');
  assert.ok(code, `callback has a code: ${callback}`);

  const conn = new jsforce.Connection({ oauth2, version: '50.0' });
  const userInfo = await conn.authorize(code);
  assert.match(userInfo.organizationId, /^00D/);
  assert.match(userInfo.id, /^005/);
  assert.ok(conn.refreshToken, 'a refresh token came with the code exchange');
  assert.equal(conn.instanceUrl, base);

  await t.test('identity URL', async () => {
    const identity = await conn.identity();
    assert.equal(identity.username, username);
    assert.equal(identity.user_id, userInfo.id);
  });

  await t.test('SOQL on REST and Tooling', async () => {
    const org = await conn.query('SELECT Id, Name, IsSandbox FROM Organization');
    assert.equal(org.totalSize, 1);
    assert.equal(org.records[0].IsSandbox, false);
    const perms = await conn.query('SELECT PermissionsCustomizeApplication, PermissionsApiEnabled FROM UserPermissionAccess');
    assert.equal(perms.records[0].PermissionsCustomizeApplication, true);
    const tooling = await conn.tooling.query("SELECT Id, Name FROM StaticResource WHERE Name = 'nothing_here'");
    assert.equal(tooling.totalSize, 0);
  });

  await t.test('StaticResource create, read, update, delete', async () => {
    const body = Buffer.from('console.log("from jsforce")').toString('base64');
    const created = await conn.sobject('StaticResource').create({
      Name: 'jsforce_bundle', ContentType: 'application/javascript', CacheControl: 'Private', Body: body,
    });
    assert.equal(created.success, true);
    const record = await conn.sobject('StaticResource').retrieve(created.id);
    assert.equal(record.Name, 'jsforce_bundle');
    assert.equal(record.BodyLength, 27);
    const updated = await conn.sobject('StaticResource').update({ Id: created.id, Description: 'updated by jsforce' });
    assert.equal(updated.success, true);
    const viaTooling = await conn.tooling.sobject('StaticResource').retrieve(created.id);
    assert.equal(viaTooling.Description, 'updated by jsforce');
    const found = await conn.tooling.query("SELECT Id FROM StaticResource WHERE Name = 'jsforce_bundle' AND NamespacePrefix = null");
    assert.equal(found.records[0].Id, created.id);
    const deleted = await conn.sobject('StaticResource').destroy(created.id);
    assert.equal(deleted.success, true);
    await assert.rejects(conn.sobject('StaticResource').retrieve(created.id), /NOT_FOUND|does not exist|not accessible/);
  });

  await t.test('/limits', async () => {
    const limits = await conn.limits();
    assert.ok(limits.DailyApiRequests.Max > 0);
    assert.ok(limits.DailyApiRequests.Remaining < limits.DailyApiRequests.Max);
  });

  await t.test('injected 503s are retried by jsforce and then answered', async () => {
    const fault = {
      path_contains: '/limits', times: 2,
      action: { kind: 'error', status: 503, error_code: 'SERVER_UNAVAILABLE' },
    };
    const added = await fetch(`${admin}/faults`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(fault),
    });
    assert.equal(added.status, 201);
    const limits = await conn.limits();
    assert.ok(limits.DailyApiRequests.Max > 0);
    const calls = (await requestLog()).filter((r) => r.path.endsWith('/limits')).slice(-3);
    assert.deepEqual(calls.map((r) => r.status), [503, 503, 200], 'two faults, then the real answer');
    assert.deepEqual(calls.map((r) => r.fault), ['SERVER_UNAVAILABLE', 'SERVER_UNAVAILABLE', null]);
  });

  await t.test('refresh on session expiry', async () => {
    const before = conn.accessToken;
    let refreshed = null;
    conn.on('refresh', (token) => { refreshed = token; });
    const expired = await (await fetch(`${admin}/tokens/expire`, { method: 'POST' })).json();
    assert.ok(expired.expired >= 1);
    const org = await conn.query('SELECT Name FROM Organization');
    assert.equal(org.totalSize, 1, 'the query succeeded after jsforce refreshed the session');
    assert.ok(refreshed, 'jsforce fired its refresh event');
    assert.notEqual(conn.accessToken, before);
    const log = await requestLog();
    const refreshes = log.filter((r) => r.operation === 'token:refresh_token' && r.status === 200);
    assert.equal(refreshes.length, 1, 'exactly one refresh');
    assert.ok(log.some((r) => r.status === 401), 'the expired call was answered 401 first');
  });
});
