/**
 * The chat example (examples/chat/) end to end in headless Chromium: three browser contexts —
 * Alice, Bob and Carol, each with its own keys and IndexedDB — run the page against a running
 * relay. Alice creates a group and invites Bob and Carol by account id; messages and an image
 * decrypt on every side; typing and presence show; Carol is removed and can neither receive nor
 * decrypt what follows; Bob reloads and reads the history from the relay with his kept MLS
 * state. Finally every text and bytea column of every table, the blob store and the relay's
 * logs are scanned: none holds any plaintext string or the image's bytes. With issue 16 on: the
 * invited accounts accept when their Welcome arrives, text goes as sealed sends (rows with no
 * sender), every body is padded, and no log line names a device.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { sql } from "kysely";
import type { BrowserContext, Page } from "playwright-core";
import { b64url } from "../../client/mod.ts";
import { startChatServer } from "../../examples/chat/server.ts";
import { artifact, browserUnavailable, launchBrowser } from "../admin/browser.ts";
import { freePort } from "../helpers/postgres.ts";
import { DB_KINDS, type DbKind, dbUnavailable, startTestRelay } from "../helpers/relay.ts";

const why = browserUnavailable();
if (why) console.warn(`skipping the chat example browser test: ${why}`);

/** A 64×64 PNG of random pixels: real image bytes no other data can contain by chance. */
async function noisePng(): Promise<Uint8Array<ArrayBuffer>> {
  const size = 64;
  const raw = new Uint8Array(size * (1 + size * 3));
  for (let y = 0; y < size; y++) {
    crypto.getRandomValues(raw.subarray(y * (1 + size * 3) + 1, (y + 1) * (1 + size * 3)));
  }
  const deflated = new Uint8Array(
    await new Response(new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate")))
      .arrayBuffer(),
  );
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes: Uint8Array) => {
    let c = 0xffffffff;
    for (const b of bytes) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    view.setUint32(8 + data.length, crc(out.subarray(4, 8 + data.length)));
    return out;
  };
  const header = new Uint8Array(13);
  const hv = new DataView(header.buffer);
  hv.setUint32(0, size);
  hv.setUint32(4, size);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB
  const parts = [
    new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk("IHDR", header),
    chunk("IDAT", deflated),
    chunk("IEND", new Uint8Array(0)),
  ];
  const png = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    png.set(part, at);
    at += part.length;
  }
  return png;
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** True when `needle` occurs in `hay`. */
function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  if (needle.length === 0 || hay.length < needle.length) return false;
  outer: for (let i = 0; i <= hay.length - needle.length; i++) {
    if (hay[i] !== needle[0]) continue;
    for (let j = 1; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

type Person = { name: string; context: BrowserContext; page: Page; account: string };

for (const db of DB_KINDS) {
  const dbWhy = dbUnavailable(db);
  if (dbWhy) console.warn(`skipping the chat example browser test [${db}]: ${dbWhy}`);
  Deno.test({
    name: `chat example: Alice, Bob and Carol in Chromium; the relay stores no plaintext [${db}]`,
    ignore: why !== null || dbWhy !== null,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: () => run(db),
  });
}

async function run(db: DbKind): Promise<void> {
  const t = await startTestRelay({
    db,
    env: { SEALPOST_RATE_SEND: "off", SEALPOST_RATE_CLAIM: "off" },
    logLevel: "debug",
  });
  const chat = await startChatServer({ relayUrl: t.url, port: freePort() });
  const browser = await launchBrowser();
  const tag = crypto.randomUUID().slice(0, 8);
  const secrets: string[] = [];
  const secret = (text: string) => {
    secrets.push(text);
    return text;
  };
  try {
    const join = async (name: string): Promise<Person> => {
      const context = await browser.newContext({ viewport: { width: 1180, height: 760 } });
      const page = await context.newPage();
      page.on("pageerror", (error) => console.error(`${name} page error:`, error));
      await page.goto(chat.url);
      await page.getByTestId("setup-name").fill(name);
      await page.getByTestId("setup-start").click();
      await page.getByTestId("account").waitFor();
      const account = await page.getByTestId("account").inputValue();
      assert.equal(account.length, 43);
      return { name, context, page, account };
    };
    const [alice, bob, carol] = await Promise.all([
      join(secret(`Alice ${tag}`)),
      join(secret(`Bob ${tag}`)),
      join(secret(`Carol ${tag}`)),
    ]);
    const messages = (p: Person) => p.page.getByTestId("messages");
    const expectText = (p: Person, text: string) =>
      messages(p).locator("li", { hasText: text }).waitFor({ timeout: 30_000 });

    // Alice creates a group and invites Bob, then Carol, by account id.
    await alice.page.getByTestId("new-group").click();
    await alice.page.locator("#room").waitFor();
    const group = (await alice.page.locator("#room").getAttribute("data-group"))!;
    assert.equal(group.length, 22);
    for (const invitee of [bob, carol]) {
      await alice.page.getByTestId("invite-account").fill(invitee.account);
      await alice.page.getByTestId("invite").click();
      await alice.page.getByTestId("status").getByText("Invited.").waitFor({ timeout: 30_000 });
      // The invitee's page joins by Welcome and says hello (in MLS).
      await expectText(alice, `${invitee.name} joined`);
      await expectText(invitee, `${invitee.name} joined`);
    }
    const epochOf = (p: Person) => p.page.getByTestId("epoch").textContent();
    for (let i = 0; i < 100; i++) {
      const epochs = await Promise.all([alice, bob, carol].map(epochOf));
      if (new Set(epochs).size === 1) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const epochs = await Promise.all([alice, bob, carol].map(epochOf));
    assert.equal(new Set(epochs).size, 1, `epochs ${epochs}`);
    for (const p of [alice, bob, carol]) {
      await p.page.getByTestId("members").locator("li").nth(2).waitFor();
      assert.equal(await p.page.getByTestId("members").locator("li").count(), 3);
    }

    // Everyone writes; everyone reads everything, in one order.
    const said: string[] = [];
    for (const p of [alice, bob, carol]) {
      const text = secret(
        `${p.name.split(" ")[0]} says the ${tag} plan is ${crypto.randomUUID()}`,
      );
      said.push(text);
      await p.page.getByTestId("text").fill(text);
      await p.page.getByTestId("send").click();
      for (const reader of [alice, bob, carol]) await expectText(reader, text);
    }
    for (const p of [alice, bob, carol]) {
      const texts = await messages(p).locator("li .text").allTextContents();
      assert.deepEqual(texts, said, `${p.name} reads the same conversation`);
    }

    // Typing (ephemeral, sealed with an epoch key) and presence.
    // Indicators from the messages just typed fade after 3 s; then Bob types again.
    await alice.page.waitForFunction(
      () => document.querySelector("[data-testid=typing]")?.textContent === "",
      undefined,
      { timeout: 10_000 },
    );
    await bob.page.getByTestId("text").pressSequentially("typing");
    await alice.page.getByTestId("typing").getByText(`${bob.name} typing…`).waitFor();
    await bob.page.getByTestId("text").fill("");
    for (const p of [bob, carol]) {
      await alice.page.getByTestId("presence").getByText(p.name).waitFor({ timeout: 10_000 });
    }

    // An image: encrypted with a fresh key, uploaded as a blob, the key sent by MLS.
    const png = await noisePng();
    const pngSha = await sha256Hex(png);
    await alice.page.getByTestId("file").setInputFiles({
      name: `${tag}.png`,
      mimeType: "image/png",
      buffer: Buffer.from(png),
    });
    for (const p of [alice, bob, carol]) {
      const image = messages(p).getByTestId("image");
      await image.waitFor();
      await p.page.waitForFunction(
        () => !!document.querySelector("[data-testid=image][data-sha256]")?.clientWidth,
      );
      assert.equal(await image.getAttribute("data-sha256"), pngSha, `${p.name} sees the image`);
      assert.equal(await image.evaluate((img: HTMLImageElement) => img.naturalWidth), 64);
    }
    await alice.page.screenshot({ path: await artifact(`chat-alice-${db}.png`) });

    // Alice removes Carol: in MLS first, then on the relay.
    await alice.page.getByTestId("members").locator("li", { hasText: carol.name })
      .getByTestId("remove").click();
    await carol.page.getByTestId("removed").waitFor({ state: "visible", timeout: 30_000 });
    await alice.page.getByTestId("members").locator("li").nth(1).waitFor();
    assert.equal(await alice.page.getByTestId("members").locator("li").count(), 2);
    const after = secret(`After Carol left: the ${tag} code is ${crypto.randomUUID()}`);
    await alice.page.getByTestId("text").fill(after);
    await alice.page.getByTestId("send").click();
    await expectText(bob, after);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await messages(carol).locator("li", { hasText: after }).count(), 0);
    // The relay no longer gives Carol the group's messages…
    const carolRead = await carol.page.evaluate(async (g) => {
      const chat = (globalThis as unknown as { chat: { api: { token: string } } }).chat;
      const response = await fetch(`/v1/groups/${g}/messages?after=0`, {
        headers: { authorization: `Bearer ${chat.api.token}` },
      });
      return response.status;
    }, group);
    assert.equal(carolRead, 404);
    // …and the ciphertext itself, taken from the relay's database, is closed to her keys.
    const row = await t.database.db.selectFrom("messages").select(["body", "seq"])
      .where("group_id", "=", group).orderBy("seq", "desc").limit(1).executeTakeFirstOrThrow();
    const body = b64url(new Uint8Array(row.body));
    const carolDecrypts = await carol.page.evaluate(
      ([g, b]) =>
        (globalThis as unknown as {
          chat: { canDecrypt(g: string, b: string): Promise<boolean> };
        }).chat.canDecrypt(g, b),
      [group, body],
    );
    assert.equal(carolDecrypts, false);

    // Bob closes the page; Alice writes; Bob comes back to the whole history.
    await bob.page.close();
    const whileAway = secret(`While Bob was away: ${tag} ${crypto.randomUUID()}`);
    await alice.page.getByTestId("text").fill(whileAway);
    await alice.page.getByTestId("send").click();
    await expectText(alice, whileAway);
    bob.page = await bob.context.newPage();
    await bob.page.goto(`${chat.url}/#group=${group}`);
    await expectText(bob, whileAway);
    const bobTexts = await messages(bob).locator("li .text").allTextContents();
    assert.deepEqual(bobTexts, [...said, after, whileAway]);
    await bob.page.waitForFunction(
      () => !!document.querySelector("[data-testid=image][data-sha256]")?.clientWidth,
    );
    assert.equal(await messages(bob).getByTestId("image").getAttribute("data-sha256"), pngSha);
    await expectText(alice, whileAway);
    await alice.page.screenshot({ path: await artifact(`chat-alice-final-${db}.png`) });

    // The relay's whole database, blob store and logs: no plaintext, no image bytes.
    const encoder = new TextEncoder();
    const needles = [
      ...secrets.map((s) => ({ what: JSON.stringify(s), bytes: encoder.encode(s) })),
      ...secrets.map((s) => ({
        what: `b64url ${s}`,
        bytes: encoder.encode(b64url(encoder.encode(s))),
      })),
      { what: "the image", bytes: png },
      { what: "the image's pixels", bytes: png.subarray(64, 192) },
      { what: "the image (b64url)", bytes: encoder.encode(b64url(png.subarray(0, 96))) },
    ];
    const leaks: string[] = [];
    const check = (where: string, hay: Uint8Array) => {
      for (const needle of needles) {
        if (contains(hay, needle.bytes)) leaks.push(`${needle.what} in ${where}`);
      }
    };
    const columns = (await sql<{ table_name: string; column_name: string; data_type: string }>`
        select table_name, column_name, data_type from information_schema.columns
        where table_schema = 'public'`.execute(t.database.db)).rows;
    const scanned = columns.filter((c) =>
      ["text", "bytea", "character varying", "json", "jsonb", "ARRAY"].includes(c.data_type)
    );
    assert.ok(scanned.some((c) => c.table_name === "messages" && c.column_name === "body"));
    assert.ok(scanned.some((c) => c.table_name === "key_packages"));
    let cells = 0;
    for (const column of scanned) {
      const rows = (await sql<{ v: unknown }>`
          select ${sql.ref(column.column_name)} as v from ${sql.table(column.table_name)}`
        .execute(t.database.db)).rows;
      for (const row of rows) {
        const value = row.v;
        if (value === null || value === undefined) continue;
        cells++;
        const bytes = value instanceof Uint8Array
          ? value
          : encoder.encode(typeof value === "string" ? value : JSON.stringify(value));
        check(`${column.table_name}.${column.column_name}`, bytes);
      }
    }
    assert.ok(cells > 50, `scanned ${cells} cells`);
    let blobFiles = 0;
    const walk = async (dir: string) => {
      for await (const entry of Deno.readDir(dir)) {
        const path = `${dir}/${entry.name}`;
        if (entry.isDirectory) await walk(path);
        else if (entry.isFile) {
          blobFiles++;
          check(`blob file ${path}`, await Deno.readFile(path));
        }
      }
    };
    await walk(`${t.dataDir}/blobs`);
    assert.ok(blobFiles >= 1, "the image blob is on disk");
    check("the relay's logs", encoder.encode(t.logs.join("\n")));
    assert.deepEqual(leaks, []);

    // Issue 16: text went sealed, so those rows name no sender, and no log line names a device;
    // the invited members accepted when their Welcome arrived (nobody is left invited).
    const sealed = (await sql<{ a: string | null; d: string | null }>`
        select sender_account as a, sender_device as d from messages where sender_device is null`
      .execute(t.database.db)).rows;
    assert.ok(sealed.length >= 3, `only ${sealed.length} sealed messages`);
    assert.ok(sealed.every((r) => r.a === null && r.d === null), "sealed rows carry no sender");
    assert.ok(!t.logs.some((line) => line.includes('"device":')), "no device id in the logs");
    const states = (await sql<{ state: string }>`select state from group_members`
      .execute(t.database.db)).rows.map((r) => r.state);
    assert.ok(states.length >= 2 && states.every((s) => s === "accepted"), states.join(","));
  } finally {
    await browser.dispose();
    await chat.close();
    await t.stop();
    await Deno.remove(t.dataDir, { recursive: true }).catch(() => {});
  }
}
