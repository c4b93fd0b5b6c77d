// The web apps in a real browser: Debian's Chromium driven by
// playwright-core against a real node process. The records scenario
// end to end through the pages, the bad inputs, axe-core on every page,
// and a screenshot of each page in web/tests/artifacts/ (git-ignored).
//
//   HYGEIA_BIN=target/debug/hygeia node --test web/tests/   (from the repository root)

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createServer } from "node:http";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../..");
const hygeia = resolve(root, process.env.HYGEIA_BIN ?? "target/debug/hygeia");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const artifacts = join(here, "artifacts");
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

let work;
let node;
let smartApp; // an independent SMART app (the fhirclient library) on another origin
let appUrl;
let url;
let browser;
let patient; // a phone-sized context
let clinician; // a desktop-sized context
const keys = {};

function cli(...args) {
  return execFileSync(hygeia, args, { cwd: work, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
}

async function treeSize() {
  return (await (await fetch(`${url}/v1/node`)).json()).tree_size;
}

async function shot(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
}

/** No WCAG 2.2 A/AA violation that axe-core finds on the page as it is now. */
async function accessible(page, name) {
  if (!(await page.evaluate(() => "axe" in window))) await page.evaluate(axeSource);
  const result = await page.evaluate(() =>
    window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"] } }),
  );
  const found = result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join("; ")})`);
  assert.deepEqual(found, [], `axe found violations on ${name}`);
}

async function visit(page, hash, name) {
  await page.goto(`${url}/app/${hash}`);
  await page.waitForLoadState("networkidle");
  if (name) {
    await accessible(page, name);
    await shot(page, name);
  }
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), "hygeia-web-"));
  rmSync(artifacts, { recursive: true, force: true });
  mkdirSync(artifacts, { recursive: true });
  for (const name of ["governance", "clinic-admin", "clinician", "board", "guardian-1", "guardian-2", "guardian-3", "bob", "dana", "researcher", "lab"]) {
    keys[name] = cli("key", "new", "--out", `${name}.key`);
  }
  // The SMART app is served from its own origin; the node's operator
  // registers it (docs/smart.md) before the node starts.
  const fhirclient = readFileSync(createRequire(import.meta.url).resolve("fhirclient/build/fhir-client.min.js"));
  smartApp = createServer((req, res) => {
    const page = (script) =>
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>SMART test app</title><script src="/fhir-client.js"></script></head><body><main><h1>SMART test app</h1><pre id="out"></pre></main><script>${script}</script></body></html>`;
    const path = new URL(req.url, "http://x").pathname;
    if (path === "/fhir-client.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(fhirclient);
    } else if (path === "/launch.html") {
      const iss = new URL(req.url, "http://x").searchParams.get("iss");
      res.writeHead(200, { "content-type": "text/html" }).end(
        page(`FHIR.oauth2.authorize({ iss: ${JSON.stringify(iss)}, clientId: "e2e-app", scope: "launch/patient patient/Patient.rs patient/Immunization.rs", redirectUri: "callback.html", pkceMode: "required" }).catch((e) => { document.getElementById("out").textContent = "error: " + e.message; });`),
      );
    } else if (path === "/callback.html") {
      res.writeHead(200, { "content-type": "text/html" }).end(
        page(`FHIR.oauth2.ready().then(async (client) => {
          const patient = await client.request("Patient/" + client.patient.id);
          const shot = await client.request("Immunization/" + client.patient.id + "-imm1");
          document.getElementById("out").textContent = JSON.stringify({ patient: client.patient.id, name: patient.name[0].text, lot: shot.lotNumber, scope: client.state.tokenResponse.scope });
          document.body.dataset.done = "ok";
        }).catch((e) => { document.getElementById("out").textContent = "error: " + e.message; document.body.dataset.done = "error"; });`),
      );
    } else {
      res.writeHead(404).end();
    }
  });
  appUrl = await new Promise((ok) => smartApp.listen(0, "127.0.0.1", () => ok(`http://127.0.0.1:${smartApp.address().port}`)));
  mkdirSync(join(work, "node"), { recursive: true });
  writeFileSync(
    join(work, "node", "smart-clients.json"),
    JSON.stringify({ clients: [{ client_id: "e2e-app", name: "Test health app", redirect_uris: [`${appUrl}/callback.html`], purpose_of_use: "PATRQT" }] }),
  );
  node = spawn(hygeia, ["serve", "--data-dir", join(work, "node"), "--listen", "127.0.0.1:0", "--governance", keys.governance], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  url = await new Promise((ok, fail) => {
    let out = "";
    node.stdout.on("data", (chunk) => {
      out += chunk;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) ok(m[1]);
    });
    node.on("exit", (code) => fail(new Error(`the node exited with ${code}`)));
  });
  // A clinic with a licensed clinician, as in the README walkthrough.
  cli("org", "register", "--node", url, "--key", "governance.key", "--org", "did:web:clinic.example", "--admin", keys["clinic-admin"], "--kind", "clinic");
  cli("org", "member", "--node", url, "--key", "clinic-admin.key", "--org", "did:web:clinic.example", "--member", keys.clinician, "--role", "clinician", "--jurisdiction", "FR");
  cli("trust", "add", "--node", url, "--key", "governance.key", "--issuer", keys.board, "--type", "licence", "--jurisdiction", "FR");
  cli("credential", "issue", "licence", "--key", "board.key", "--holder", keys.clinician, "--licence-number", "RPPS-10101010101", "--profession", "physician", "--jurisdiction", "FR", "--out", "licence.sd-jwt");
  cli("licence", "register", "--node", url, "--key", "clinician.key", "licence.sd-jwt");
  // Bob's FHIR records, written with the CLI: a Patient naming his key and a vaccination.
  const bobPatient = { resourceType: "Patient", id: "bob", identifier: [{ system: "urn:ietf:rfc:3986", value: keys.bob }], name: [{ text: "Bob Synthetic" }], birthDate: "1970-01-01" };
  const bobShot = {
    resourceType: "Immunization",
    id: "bob-imm1",
    status: "completed",
    vaccineCode: { coding: [{ system: "http://hl7.org/fhir/sid/cvx", code: "208" }] },
    patient: { reference: "Patient/bob" },
    occurrenceDateTime: "2021-06-23T15:25:00Z",
    lotNumber: "SYN-1",
  };
  writeFileSync(join(work, "bob.ndjson"), `${JSON.stringify(bobPatient)}\n${JSON.stringify(bobShot)}\n`);
  cli("import", "--node", url, "--key", "bob.key", "bob.ndjson");
  writeFileSync(join(work, "not-a-key.key"), "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n");

  browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // Playwright gives each launch a fresh, empty user-data-dir of its own.
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  patient = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  clinician = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  for (const context of [patient, clinician]) {
    context.on("weberror", (e) => console.error("page error:", e.error()));
  }
});

after(async () => {
  await browser?.close();
  smartApp?.close();
  node?.kill("SIGTERM");
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Signs in a context: a key made in the browser, or a key file imported. */
async function signIn(page, label, keyFile) {
  await visit(page, "#/");
  await page.getByLabel("A name for the key").fill(label);
  if (keyFile) {
    await page.getByLabel("Or import a key file").setInputFiles(join(work, keyFile));
    await page.getByText(/^Imported .*: you are signed in as/).waitFor();
  } else {
    await page.getByRole("button", { name: "Create a new key in this browser" }).click();
    await page.getByText("Created a new key").waitFor();
  }
  await page.getByTestId("whoami").getByText(label).waitFor();
}

/** The first verification mark in `scope` once checked: it must say verified. */
async function verified(scope) {
  const mark = scope.locator("[data-verified]").first();
  await mark.waitFor().catch(async (e) => {
    await scope.page().screenshot({ path: join(artifacts, "failed-verified.png"), fullPage: true });
    throw e;
  });
  assert.equal(await mark.getAttribute("data-verified"), "true", await mark.textContent());
}

async function openRecord(page, id) {
  await visit(page, `#/portal/record?id=${id}`);
  await page.getByRole("button", { name: "Open the record" }).click();
  await page.locator('[role="alert"], [data-testid="record-content"]').first().waitFor();
}

let recordId;

test("the records scenario through the pages", async () => {
  const p = await patient.newPage();
  const c = await clinician.newPage();

  // The patient creates a key in the browser and uploads a record.
  await signIn(p, "Alex (patient)");
  await accessible(p, "start");
  await shot(p, "01-start-patient");
  await visit(p, "#/wallet/records", "02-wallet-records-empty");
  await p.getByRole("button", { name: "Add this record" }).click();
  recordId = (await p.getByTestId("uploaded-record").textContent()).trim();
  assert.match(recordId, /^[0-9a-f]{64}$/);
  await p.getByTestId("record-row").first().waitFor();
  await p.getByRole("button", { name: "Open" }).click();
  await p.locator(".card .mark").first().waitFor();
  assert.equal(await p.locator('.card [data-verified="true"]').count(), 1, "the author's provenance signature verifies in the browser");
  await accessible(p, "wallet records");
  await shot(p, "03-wallet-records");

  // The clinician imports their key file and is denied.
  await signIn(c, "Dr Martin", "clinician.key");
  await openRecord(c, recordId);
  await c.getByText(/access denied; this attempt is logged at index \d+/i).waitFor();
  await c.getByText("ask them to grant you access").waitFor();
  await accessible(c, "portal denied");
  await shot(c, "04-portal-denied");

  // The patient grants with the form: who, what, why, how long.
  await visit(p, "#/wallet/grant");
  await p.getByLabel("Search organizations and clinicians").fill("clinician");
  await p.getByLabel(/Clinician at clinic\.example, FR, licensed/).check();
  await p.getByRole("button", { name: "30 days" }).click();
  const preview = await p.getByTestId("grant-preview").textContent();
  assert.match(preview, /^A clinician at clinic\.example \(did:key:z6Mk\w*…\w+\) can see your lab results, for your treatment, until /);
  await accessible(p, "grant form");
  await shot(p, "05-wallet-grant-form");
  await p.getByRole("button", { name: "Give access" }).click();
  await p.getByText(/^Done\. .*Logged on the ledger at index \d+\.$/).waitFor();

  // The clinician reads it; the portal lists the patient and what is covered.
  await visit(c, "#/portal", "06-portal-patients");
  await c.getByTestId("patient-grant").getByText("lab results").first().waitFor();
  await openRecord(c, recordId);
  await c.getByText("Allowed by the patient's consent").waitFor();
  await c.getByText("HbA1c").waitFor();
  await verified(c.getByTestId("record-content"));
  await accessible(c, "record viewer");
  await shot(c, "07-portal-record");

  // The patient revokes with one click on the consent card.
  await visit(p, "#/wallet");
  const card = p.getByTestId("consent-card");
  await card.getByText(/can see your lab results, for your treatment, until/).waitFor();
  await accessible(p, "consent cards");
  await shot(p, "08-wallet-consent-cards");
  await card.getByRole("button", { name: /Stop this access/ }).click();
  await p.getByText(/^Access withdrawn at once/).waitFor();
  await p.getByTestId("consent-card").waitFor({ state: "detached" });

  // The clinician is denied again, then uses break-glass.
  await openRecord(c, recordId);
  await c.getByText(/access denied; this attempt is logged/i).waitFor();
  await c.getByRole("link", { name: "use emergency access (break-glass)" }).click();
  await c.getByText("Break-glass is audited").waitFor();
  await c.getByLabel(/Why is this an emergency/).fill("Synthetic drill: patient unconscious in the ER, HbA1c needed");
  await c.getByLabel(/I understand this access is audited/).check();
  await accessible(c, "break-glass form");
  await shot(c, "09-portal-break-glass-form");
  await c.getByRole("button", { name: "Open the record in an emergency" }).click();
  await c.getByText(/^Emergency access granted at .*The patient will see it first\.$/).waitFor();
  await shot(c, "10-portal-break-glass-done");

  // The patient sees it first, with a verified mark and the justification.
  await visit(p, "#/wallet/audit");
  const first = p.getByTestId("audit-entry").first();
  await first.getByText("Emergency access (break-glass)").waitFor();
  await first.getByText("Synthetic drill: patient unconscious in the ER, HbA1c needed").waitFor();
  await first.locator('[data-verified="true"]').waitFor();
  await p.getByText(/^All \d+ entries verified against checkpoint \d+/).waitFor();
  const entries = await p.getByTestId("audit-entry").count();
  assert.ok(entries >= 5, `upload, denial, read, denial and break-glass are all listed (${entries})`);
  assert.equal(await p.locator('[data-verified="false"]').count(), 0);
  await accessible(p, "audit");
  await shot(p, "11-wallet-audit");

  // The patient erases the record: its keys are destroyed, and the
  // clinician's next attempt is told so (410), even with break-glass.
  await visit(p, "#/wallet/records");
  p.once("dialog", (dialog) => dialog.accept());
  await p.getByTestId("record-row").first().getByRole("button", { name: "Erase" }).click();
  await p.getByText(/^Erased\. Logged on the ledger at index \d+\.$/).waitFor();
  await p.getByTestId("record-row").first().getByText(/^Erased \(entry \d+\)$/).waitFor();
  await openRecord(c, recordId);
  await c.getByText(/was erased.*nobody, not even you|nobody can read it any more/).waitFor();
  await p.close();
  await c.close();
});

test("a tampered entry and a tampered proof show a failing mark", async () => {
  const p = await patient.newPage();
  await p.route("**/v1/audit?**", async (route) => {
    const response = await route.fetch();
    const feed = await response.json();
    const deny = feed.events.find((e) => e.event.decision === "deny");
    deny.entry = deny.entry.replace('"decision":"deny"', '"decision":"permit"');
    const other = feed.events.find((e) => e !== deny && e.inclusion_proof.length > 0);
    other.inclusion_proof[0] = "00".repeat(32);
    await route.fulfill({ response, json: feed });
  });
  await visit(p, "#/wallet/audit");
  await p.getByText(/2 entries failed verification/).waitFor();
  const failed = p.locator('[data-verified="false"]');
  assert.equal(await failed.count(), 2);
  await p.getByText("Verification failed: the entry does not match its leaf hash: it was altered").waitFor();
  await p.getByText("Verification failed: the inclusion proof does not lead to the signed checkpoint").waitFor();
  assert.ok((await p.locator('[data-verified="true"]').count()) >= 3, "the untouched entries still verify");
  await accessible(p, "audit tampered");
  await shot(p, "12-wallet-audit-tampered");
  await p.close();
});

test("each access entry is checked against the custodian set of its time, read from the log", async () => {
  // A node whose key was rotated reports its new DID; the entries its old
  // key signed still verify, since the signers come from the log's genesis
  // and custodian entries, not from what the node says now.
  const p = await patient.newPage();
  await p.route("**/v1/node", async (route) => {
    const response = await route.fetch();
    const info = await response.json();
    info.node_did = keys.bob;
    await route.fulfill({ response, json: info });
  });
  await visit(p, "#/wallet/audit");
  await p.getByText(/^All \d+ entries verified against checkpoint \d+/).waitFor();
  assert.equal(await p.locator('[data-verified="false"]').count(), 0);
  await p.close();

  // A custodian history that does not verify fails every entry, with why.
  const q = await patient.newPage();
  await q.route("**/v1/app/ledger?before=1&limit=1", async (route) => {
    const response = await route.fetch();
    const page = await response.json();
    page.entries[0].entry = page.entries[0].entry.replace('"custodians":["', '"custodians":["did:key:z6Mk');
    await route.fulfill({ response, json: page });
  });
  await visit(q, "#/wallet/audit");
  await q.getByText(/the network's custodian set could not be checked: entry 0: the entry does not match its leaf hash/).first().waitFor();
  assert.equal(await q.locator('[data-verified="true"]').count(), 0);
  await q.close();
});

test("bad input: a key file that is not a key, an end before the start, an expired signature", async () => {
  const p = await patient.newPage();
  await visit(p, "#/");
  const keysBefore = await p.locator(".card .mono").count();
  await p.getByLabel("Or import a key file").setInputFiles(join(work, "not-a-key.key"));
  await p.getByText(/This file is not a Hygeia key file\..*Choose that \.key file/).waitFor();
  assert.equal(await p.locator(".card .mono").count(), keysBefore, "no key was added");
  await shot(p, "13-start-not-a-key");

  // A grant whose end is before its start is refused in the page: nothing is submitted.
  const size = await treeSize();
  await visit(p, "#/wallet/grant");
  await p.getByLabel(/Clinician at clinic\.example/).check();
  await p.getByLabel("Until (included)").fill("2020-01-01");
  await p.getByRole("button", { name: "Give access" }).click();
  await p.getByText("The end date is before the start date. Choose an end date after the start, then grant again.").waitFor();
  await accessible(p, "grant form error");
  await shot(p, "14-wallet-grant-end-before-start");
  assert.equal(await treeSize(), size, "nothing reached the ledger");

  // A signature made with a clock an hour off: the node refuses it, nothing is logged.
  const c = await clinician.newPage();
  await visit(c, `#/portal/record?id=${recordId}`);
  await c.evaluate(() => (globalThis.hygeiaClock.skewMs = -3600_000));
  await c.getByRole("button", { name: "Open the record" }).click();
  await c
    .getByText(/Set this device's clock to the correct time, then try again\./)
    .waitFor({ timeout: 10_000 })
    .catch(async (e) => {
      await shot(c, "failed-expired");
      throw e;
    });
  await shot(c, "15-portal-expired-signature");
  assert.equal(await treeSize(), size, "a refused signature reaches no decision and logs nothing");
  await p.close();
  await c.close();
});

test("guardians: set up in the browser, recovered by the CLI; set up by the CLI, recovered in the browser", async () => {
  const guardians = ["guardian-1", "guardian-2", "guardian-3"].map((g) => keys[g]);
  // Alex's device sets up 2-of-3 recovery and saves the files.
  const p = await patient.newPage();
  await visit(p, "#/recovery");
  const alex = await p.evaluate(async () => localStorage.getItem("hygeia.activeKey"));
  await p.getByLabel(/Guardians' did:keys/).fill(guardians.join("\n"));
  await p.getByLabel(/How many guardians are needed/).fill("2");
  await p.getByRole("button", { name: "Create the shares and register recovery" }).click();
  await p.getByTestId("verifier-file").waitFor();
  const saved = join(work, "alex-guardians");
  mkdirSync(saved, { recursive: true });
  for (const link of await p.getByTestId("share-file").all().then((l) => l.concat([p.getByTestId("verifier-file")]))) {
    const [download] = await Promise.all([p.waitForEvent("download"), link.click()]);
    await download.saveAs(join(saved, download.suggestedFilename()));
  }
  await p.getByRole("button", { name: "I saved the files: register recovery" }).click();
  await p.getByText(/^Recovery registered on the ledger at entry \d+/).waitFor();
  await accessible(p, "recovery set-up");
  await shot(p, "19-recovery-setup");

  // The Rust implementation recovers Alex's identity from two of the
  // browser's shares: Alex's browser key is retired.
  const moved = JSON.parse(cli("recovery", "recover", "--node", url, "--verifier", join(saved, "verifier.json"), "--share", join(saved, "share-1.json"), "--share", join(saved, "share-3.json"), "--identity", alex, "--new-key", "alex-new.key"));
  assert.equal(moved.identity, alex);

  // The retired key's session is refused with what to do next, and changes nothing.
  const size = await treeSize();
  await visit(p, "#/wallet/records");
  await p.getByText(/This key no longer acts for your identity: it was replaced during a key recovery\./).first().waitFor();
  await shot(p, "20-wallet-retired-key");
  if ((await treeSize()) !== size) {
    const last = await (await fetch(`${url}/v1/app/ledger?limit=2`)).json();
    assert.fail(`the retired key changed the ledger: ${JSON.stringify(last.entries.map((e) => e.entry))}`);
  }
  await p.close();

  // Bob set up recovery with the CLI; a new phone recovers in the browser.
  cli("recovery", "setup", "--key", "bob.key", "--node", url, "--threshold", "2", "--guardian", guardians[0], "--guardian", guardians[1], "--guardian", guardians[2], "--out-dir", "bob-guardians");
  const sizeBob = await treeSize();
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const b = await phone.newPage();
  await visit(b, "#/recovery/recover");
  await b.getByLabel(/Your identity/).fill(keys.bob);
  await b.getByLabel(/The verifier file/).setInputFiles(join(work, "bob-guardians/verifier.json"));
  // One share is not enough: a clear message, and no change.
  await b.getByLabel(/guardians' share files/).setInputFiles([join(work, "bob-guardians/share-2.json")]);
  await b.getByRole("button", { name: "Recover my identity" }).click();
  await b.getByText(/1 more guardian share is needed \(2 in all\).*Ask your guardians/).waitFor();
  // A share of Alex's split is refused as another split's.
  await b.getByLabel(/guardians' share files/).setInputFiles([join(work, "bob-guardians/share-2.json"), join(saved, "share-2.json")]);
  await b.getByRole("button", { name: "Recover my identity" }).click();
  await b.getByText(/belongs to another split/).waitFor();
  assert.equal(await treeSize(), sizeBob, "refused recoveries change nothing");
  await b.getByLabel(/guardians' share files/).setInputFiles([join(work, "bob-guardians/share-2.json"), join(work, "bob-guardians/share-3.json")]);
  await b.getByRole("button", { name: "Recover my identity" }).click();
  await b.getByText(/^Recovered\. .* now acts through a new key made in this browser/).waitFor();
  await accessible(b, "recovery recover");
  await shot(b, "21-recovery-recovered");
  // The new browser key acts for Bob: his wallet lists his grants (none).
  await visit(b, "#/wallet");
  await b.getByText("You have not given anyone access.").waitFor();
  assert.equal(await b.locator('[role="alert"]').count(), 0);
  // His SMART Health Card, as a QR code; its content verifies with the CLI.
  await visit(b, "#/wallet/credentials");
  await b
    .getByRole("button", { name: "Make a card: vaccinations" })
    .click({ timeout: 10_000 })
    .catch(async (e) => {
      await shot(b, "failed-health-card");
      throw e;
    });
  await b.getByRole("img", { name: /QR code of your SMART Health Card/ }).waitFor();
  await accessible(b, "health card");
  await shot(b, "22-wallet-health-card");
  writeFileSync(join(work, "qr.txt"), (await b.getByTestId("qr-text").textContent()) + "\n");
  const card = cli("shc", "verify", "--node", url, "qr.txt");
  assert.match(card, /Immunization/);
  await phone.close();
});

test("a patient's research answers in the wallet, in plain words", async () => {
  // Dana holds a lab's eligibility credential (HbA1c 7.2 %), consents to
  // research with the researcher, and answers a study with the CLI.
  cli("org", "register", "--node", url, "--key", "governance.key", "--org", "did:web:research.example", "--admin", keys["clinic-admin"], "--kind", "research");
  cli("org", "member", "--node", url, "--key", "clinic-admin.key", "--org", "did:web:research.example", "--member", keys.researcher, "--role", "researcher", "--jurisdiction", "FR");
  cli("zk", "issue", "--key", "lab.key", "--attribute", "hba1c", "--value", "7.2", "--eligibility", "--out", "dana-cred.json", "--opening", "dana-opening.json");
  cli("research", "publish", "--key", "researcher.key", "--node", url, "--study", "web-hba1c", "--attribute", "hba1c", "--between", "6.5,9.0", "--issuer", keys.lab);
  cli("consent", "grant", "--node", url, "--key", "dana.key", "--to", keys.researcher, "--categories", "lab", "--purpose", "HRESCH", "--days", "30");
  cli("research", "answer", "--key", "dana.key", "--node", url, "--study", "web-hba1c", "--credential", "dana-cred.json", "--opening", "dana-opening.json", "--secret", "dana.secret");
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await signIn(page, "Dana (patient)", "dana.key");
  await visit(page, "#/wallet/research");
  const card = page.getByTestId("research-answer");
  await card.getByText("You proved that your HbA1c was at least 6.5 % and below 9.0 %, without showing the result itself.").waitFor();
  assert.equal(await card.count(), 1);
  assert.match(await card.textContent(), /Study web-hba1c/);
  await accessible(page, "wallet research");
  await shot(page, "23-wallet-research");
  await context.close();
  // Someone who answered nothing sees an empty list, not Dana's answer.
  const other = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const p2 = await other.newPage();
  await signIn(p2, "Someone else");
  await visit(p2, "#/wallet/research");
  await p2.getByText("You have not answered any study yet.").waitFor();
  await other.close();
});

test("a patient's incentives in the wallet: a balance and a stipend waiting", async () => {
  // A care program's token: the governance registers it for its issuer
  // (the lab's key), which pays Dana 25 and sets 40 aside for her, paid on
  // a date.
  cli("unit", "register", "--node", url, "--key", "governance.key", "--unit", "gluco-token", "--issuer", keys.lab);
  cli("unit", "mint", "--node", url, "--key", "lab.key", "--unit", "gluco-token", "--to", keys.dana, "--amount", "25");
  cli("unit", "mint", "--node", url, "--key", "lab.key", "--unit", "gluco-token", "--to", keys.lab, "--amount", "40");
  const at = Math.floor(Date.now() / 1000) + 30 * 86400;
  cli("escrow", "open", "--node", url, "--key", "lab.key", "--unit", "gluco-token", "--amount", "40", "--beneficiary", keys.dana, "--deadline", String(at), "--refund-after", String(at + 86400));
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  await signIn(page, "Dana (patient)", "dana.key");
  await visit(page, "#/wallet/incentives");
  await page.getByTestId("balance").getByText("gluco-token").waitFor();
  assert.match(await page.getByTestId("balance").textContent(), /^25 gluco-token$/);
  assert.match(await page.getByTestId("escrow").textContent(), /^40 gluco-token set aside by .*, paid on /);
  await accessible(page, "wallet incentives");
  await shot(page, "24-wallet-incentives");
  await context.close();
});

test("keyboard only: skip link, then every control in order, with a visible focus", async () => {
  const page = await clinician.newPage();
  await visit(page, "#/wallet/grant");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement.id), "content");
  const reached = [];
  for (let i = 0; i < 60; i++) {
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => {
      const e = document.activeElement;
      if (e === document.body || e === null) return null;
      const style = getComputedStyle(e);
      return { text: (e.getAttribute("aria-label") || e.labels?.[0]?.textContent || e.textContent || "").trim(), outline: style.outlineStyle };
    });
    if (focused === null) break; // past the last control
    assert.notEqual(focused.outline, "none", `focus is visible on ${focused.text}`);
    reached.push(focused.text);
  }
  for (const control of ["Search organizations and clinicians", "Lab results", "For your treatment (also covers emergencies)", "30 days", "Until (included)", "Give access"]) {
    assert.ok(reached.some((t) => t.includes(control)), `${control} is reachable by keyboard: ${reached.join(" | ")}`);
  }
  await page.close();
});

test("dashboards and the ledger explorer show real figures and proofs", async () => {
  const page = await clinician.newPage();
  await visit(page, "#/dashboard");
  await page.getByTestId("figure-decisions").waitFor();
  assert.match(await page.getByTestId("figure-time-to-consent").textContent(), /^\d+(\.\d)? (second|minute)s?$/);
  const decisions = Number((await page.getByTestId("figure-decisions").textContent()).replace(/\D/g, ""));
  assert.ok(decisions >= 6, `decisions counted from the ledger (${decisions})`);
  assert.equal(await page.getByTestId("figure-break-glass").textContent(), "1");
  assert.equal(await page.getByTestId("figure-repeat-tests-avoided").textContent(), "1", "the clinician read one recent lab result");
  await accessible(page, "dashboard");
  await shot(page, "16-dashboard");
  await visit(page, "#/ledger?type=access");
  await page.getByTestId("ledger-entry").first().getByRole("button", { name: "Check proof" }).click();
  await page.getByTestId("ledger-entry").first().locator('[data-verified="true"]').waitFor();
  await accessible(page, "ledger explorer");
  await shot(page, "17-ledger");

  // The log grows; the explorer proves the new checkpoint extends the one
  // it saw (RFC 9162 consistency), and refuses a forged proof.
  writeFileSync(join(work, "doc.txt"), "synthetic document");
  cli("tx", "attest", "--node", url, "--key", "board.key", "--label", "lab.result", "--file", "doc.txt");
  await page.reload();
  await page.getByTestId("consistency").getByText(/the log only grew/).waitFor();
  await verified(page.getByTestId("consistency"));
  await page.route("**/v1/proofs/consistency?**", async (route) => {
    const response = await route.fetch();
    const proof = await response.json();
    proof.proof[0] = "11".repeat(32);
    await route.fulfill({ response, json: proof });
  });
  writeFileSync(join(work, "doc2.txt"), "another synthetic document");
  cli("tx", "attest", "--node", url, "--key", "board.key", "--label", "lab.result", "--file", "doc2.txt");
  await page.reload();
  await page.getByText("This node's log is not an extension of the one you saw before.", { exact: false }).waitFor();
  assert.equal(await page.getByTestId("consistency").locator("[data-verified]").getAttribute("data-verified"), "false");
  await shot(page, "18-ledger-forged-consistency");
  await page.close();
});

test("an independent SMART client (fhirclient) launches, the person approves with their key, and it reads FHIR", async () => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  const page = await context.newPage();
  // Carol: a patient of her own (Bob's key is retired by the recovery test).
  keys.carol = cli("key", "new", "--out", "carol.key");
  const carolPatient = { resourceType: "Patient", id: "carol", identifier: [{ system: "urn:ietf:rfc:3986", value: keys.carol }], name: [{ text: "Carol Synthetic" }], birthDate: "1980-02-02" };
  const carolShot = {
    resourceType: "Immunization",
    id: "carol-imm1",
    status: "completed",
    vaccineCode: { coding: [{ system: "http://hl7.org/fhir/sid/cvx", code: "208" }] },
    patient: { reference: "Patient/carol" },
    occurrenceDateTime: "2022-03-01T10:00:00Z",
    lotNumber: "SYN-2",
  };
  writeFileSync(join(work, "carol.ndjson"), `${JSON.stringify(carolPatient)}\n${JSON.stringify(carolShot)}\n`);
  cli("import", "--node", url, "--key", "carol.key", "carol.ndjson");
  await signIn(page, "Carol", "carol.key");
  const size = await treeSize();
  // Discovery says what works.
  const config = await (await fetch(`${url}/fhir/.well-known/smart-configuration`)).json();
  assert.deepEqual(config.code_challenge_methods_supported, ["S256"]);
  // The app starts the launch; the node sends the browser to its consent page.
  await page.goto(`${appUrl}/launch.html?iss=${encodeURIComponent(`${url}/fhir`)}`);
  await page.waitForURL(/\/app\/#\/authorize\//);
  await page.getByTestId("smart-app").getByText("Test health app").waitFor();
  assert.match(await page.getByTestId("smart-scopes").textContent(), /read and search your own Immunization records/);
  await accessible(page, "SMART consent");
  await shot(page, "19-smart-consent");
  await page.getByRole("button", { name: "Approve" }).click();
  // Back in the app: fhirclient exchanged the code (PKCE) and read as Bob.
  await page.waitForURL(new RegExp(`^${appUrl}/callback.html`));
  await page.locator("body[data-done]").waitFor();
  const out = await page.locator("#out").textContent();
  assert.equal(await page.locator("body").getAttribute("data-done"), "ok", out);
  const result = JSON.parse(out);
  assert.equal(result.patient, "carol", "the launch context");
  assert.equal(result.name, "Carol Synthetic");
  assert.equal(result.lot, "SYN-2");
  assert.equal(result.scope, "launch/patient patient/Patient.rs patient/Immunization.rs");
  await shot(page, "20-smart-app-read");
  assert.equal(await treeSize(), size + 2, "both reads were decided and logged");

  // Declining sends the app access_denied and gives it nothing.
  await page.goto(`${appUrl}/launch.html?iss=${encodeURIComponent(`${url}/fhir`)}`);
  await page.waitForURL(/\/app\/#\/authorize\//);
  await page.getByRole("button", { name: "Decline" }).click();
  await page.waitForURL(new RegExp(`^${appUrl}/callback.html\\?error=access_denied`));
  await page.locator("body[data-done]").waitFor();
  assert.equal(await page.locator("body").getAttribute("data-done"), "error");
  assert.equal(await treeSize(), size + 2, "nothing read");
  await context.close();
});
