// Drives onepasswordtest (or `keyprov emulate --connect`) with the official
// 1Password Connect JavaScript SDK through every read it has and its item
// update (PATCH, which the SDK lacks, by fetch), asserting the answers as
// Connect gives them. Run by onepasswordtest's TestConnectJSSDK:
// node --test connect.test.js, with OP_CONNECT_HOST, OP_CONNECT_TOKEN and
// CONNECT_FIXTURE (the IDs and the expected OTP code the Go test seeded).
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const { OnePasswordConnect } = require("@1password/connect");

const host = process.env.OP_CONNECT_HOST;
const fx = JSON.parse(process.env.CONNECT_FIXTURE);
const op = OnePasswordConnect({ serverURL: host, token: process.env.OP_CONNECT_TOKEN, keepAlive: false, timeout: 10000 });

async function control(cmd, body) {
  const r = await fetch(host + "/_emulator/" + cmd, { method: "POST", body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.text());
}

async function rejects(promise, status) {
  await assert.rejects(promise, (e) => { assert.equal(e.status, status, JSON.stringify(e)); return true; });
}

test("vaults: list, by ID, by title, computed fields", async () => {
  const vaults = await op.listVaults(); // GET /v1/vaults/
  assert.deepEqual(vaults.map((v) => v.name).sort(), ["prod", "staging"]);
  const prod = vaults.find((v) => v.name === "prod");
  assert.equal(prod.id, fx.prod);
  assert.equal(prod.items, 3, "the item count");
  assert.ok(prod.contentVersion >= 4 && prod.attributeVersion >= 1, JSON.stringify(prod));
  assert.ok(prod.createdAt instanceof Date && !isNaN(prod.createdAt), "createdAt is a date");
  assert.deepEqual((await op.listVaultsByTitle("staging")).map((v) => v.id), [fx.staging]);
  assert.equal((await op.getVault(fx.prod)).name, "prod");
  assert.equal((await op.getVault("prod")).id, fx.prod, "a title is looked up with a filter");
  assert.equal((await op.getVaultById(fx.staging)).name, "staging");
  assert.equal((await op.getVaultByTitle("prod")).id, fx.prod);
  await assert.rejects(op.getVaultByTitle("nope"));
});

test("items: list, by ID, by title, title contains", async () => {
  const items = await op.listItems(fx.prod);
  assert.deepEqual(items.map((i) => i.title).sort(), ["otp", "tessera", "tesseral"]);
  assert.ok(items.every((i) => !i.fields), "a listing holds summaries");
  const byTitle = await op.listItemsByTitle(fx.prod, "tessera");
  assert.equal(byTitle.length, 1);
  assert.equal(byTitle[0].extractOTP(), "");
  assert.equal(byTitle[0].fields.find((f) => f.label === "credential").value, "tessera-v1");
  const contains = await op.listItemsByTitleContains(fx.prod, "TESS");
  assert.deepEqual(contains.map((i) => i.title).sort(), ["tessera", "tesseral"]);
  const item = await op.getItem(fx.prod, fx.tessera); // GET .../items/{id}
  assert.equal(item.title, "tessera");
  assert.equal(item.version, 1);
  assert.equal(item.vault.id, fx.prod);
  assert.ok(item.createdAt instanceof Date && item.updatedAt instanceof Date);
  assert.equal((await op.getItem(fx.prod, "tesseral")).id, fx.tesseral, "by title: GET .../items/?filter=");
  assert.equal((await op.getItemById(fx.prod, fx.tesseral)).title, "tesseral");
  assert.equal((await op.getItemByTitle(fx.prod, "tessera")).id, fx.tessera);
});

test("OTP field", async () => {
  assert.equal(await op.getItemOTP(fx.prod, fx.otp), fx.totp);
  assert.equal(await op.getItemOTP(fx.prod, "otp"), fx.totp);
});

test("errors as Connect gives them", async () => {
  await rejects(op.getVaultById("not-a-vault-id"), 400);
  await rejects(op.getItemById(fx.prod, "not-an-item-id"), 400);
  await rejects(op.getVaultById("abcdefghijklmnopqrstuvwxyz"), 404);
  await rejects(op.getItemById(fx.prod, "abcdefghijklmnopqrstuvwxyz"), 404);
  const bad = OnePasswordConnect({ serverURL: host, token: "not-the-token", keepAlive: false });
  await rejects(bad.listVaults(), 401);
  await rejects(bad.listItemsByTitle(fx.prod, "tessera"), 401);
});

test("health endpoints", async () => {
  const hb = await fetch(host + "/heartbeat");
  assert.equal(hb.status, 200);
  assert.equal(await hb.text(), ".");
  const health = await (await fetch(host + "/health")).json();
  assert.equal(health.name, "1Password Connect API");
  assert.ok(Array.isArray(health.dependencies));
});

test("faults and rotation from the control path", async () => {
  await control("fail", { status: 503, count: 1 });
  await rejects(op.listVaults(), 503);
  assert.equal((await op.listVaults()).length, 2);
  const before = await op.getItem(fx.prod, fx.tesseral);
  await control("rotate", { vault: fx.prod, item: fx.tesseral, field: "credential", value: "tesseral-v2" });
  const after = await op.getItem(fx.prod, fx.tesseral);
  assert.equal(after.fields.find((f) => f.label === "credential").value, "tesseral-v2");
  assert.equal(after.version, before.version + 1);
  await control("deny", { vault: fx.staging, denied: true });
  await rejects(op.getVaultById(fx.staging), 403);
  await control("deny", { vault: fx.staging, denied: false });
});

test("item writes: PUT through the SDK, PATCH as Connect serves it", async () => {
  const item = await op.getItem(fx.prod, fx.tessera);
  const stale = item.version;
  item.fields.find((f) => f.label === "credential").value = "tessera-v2";
  const put = await op.updateItem(fx.prod, item); // PUT .../items/{id}
  assert.equal(put.version, stale + 1, "one version up");
  assert.equal(put.fields.find((f) => f.label === "credential").value, "tessera-v2");
  assert.equal((await op.getItem(fx.prod, fx.tessera)).fields.find((f) => f.label === "credential").value, "tessera-v2");
  item.version = stale; // a writer that read before the PUT above
  await rejects(op.updateItem(fx.prod, item), 409);
  const patch = await fetch(host + "/v1/vaults/" + fx.prod + "/items/" + fx.tessera, {
    method: "PATCH",
    headers: { Authorization: "Bearer " + process.env.OP_CONNECT_TOKEN, "Content-Type": "application/json" },
    body: JSON.stringify([{ op: "replace", path: "/fields/credential/value", value: "tessera-v3" }]),
  });
  assert.equal(patch.status, 200, await patch.clone().text());
  assert.equal((await patch.json()).version, stale + 2);
  assert.equal((await op.getItem(fx.prod, fx.tessera)).fields.find((f) => f.label === "credential").value, "tessera-v3");
});
