/// <reference lib="dom" />
/**
 * @module
 * The browser face of the chat example: a page over {@link ChatClient}. Identity keys, MLS
 * state and the decrypted transcript live in this browser's IndexedDB; the page talks to the
 * relay through the same origin (`examples/chat/server.ts` proxies `/v1`). Bundled for the
 * browser by `deno bundle --platform browser`.
 */

import { ChatClient, type ChatEvent, type TranscriptEntry } from "./chat_client.ts";
import { IdbStore } from "./idb_store.ts";

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

let client: ChatClient | null = null;
let current: string | null = null;
const typingTimers = new Map<string, ReturnType<typeof setTimeout>>();
let lastTyping = 0;

/**
 * Blob URLs the relay signs name its public URL; through the example server they must stay on
 * this origin (a cross-origin upload would need CORS), so `/v1/...` URLs are pointed here.
 */
const sameOriginFetch: typeof fetch = (input, init) => {
  if (typeof input === "string" && /^https?:\/\//.test(input)) {
    const url = new URL(input);
    if (url.origin !== location.origin && url.pathname.startsWith("/v1/")) {
      input = location.origin + url.pathname + url.search;
    }
  }
  return fetch(input, init);
};

function status(text: string): void {
  $("status").textContent = text;
}

async function start(name: string): Promise<void> {
  const store = await IdbStore.open();
  client = await ChatClient.open({
    url: location.origin,
    store,
    name,
    fetchFn: sameOriginFetch,
    onEvent,
  });
  // For tests and the curious: the device object (keys never leave this page).
  (globalThis as { chat?: ChatClient }).chat = client;
  $("setup").hidden = true;
  $("app").hidden = false;
  $("me-name").textContent = client.name;
  showConnection(client.session.isReady ? "ready" : "connecting");
  $<HTMLInputElement>("me-account").value = client.account;
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("group");
  current = fromHash && client.groups.has(fromHash) ? fromHash : firstGroup();
  renderGroups();
  renderRoom();
}

function firstGroup(): string | null {
  for (const [id, group] of client!.groups) if (group.state && !group.removed) return id;
  return client!.groups.keys().next().value ?? null;
}

function select(group: string): void {
  current = group;
  location.hash = `group=${group}`;
  renderGroups();
  renderRoom();
}

function showConnection(state: string): void {
  $("connection").textContent = state;
  $("connection").classList.toggle("ready", state === "ready");
}

function onEvent(event: ChatEvent): void {
  if (event.type === "connection") {
    if (event.state === "closed") {
      console.info("relay connection closed", event.code, event.reason);
    }
    showConnection(event.state);
    return;
  }
  if (!client) return;
  switch (event.type) {
    case "message":
      if (event.group !== current) return;
      appendMessage(event.entry);
      renderHead(); // names are learned from (encrypted) messages
      return;
    case "group":
    case "removed":
      renderGroups();
      if (!current) select(event.group);
      else if (event.group === current) renderHead();
      return;
    case "typing":
      if (event.group === current) showTyping(event.account, event.name);
      return;
    case "presence":
      if (event.group === current) renderHead();
      return;
    case "error":
      console.warn("chat:", event.message);
      return;
  }
}

function renderGroups(): void {
  const list = $("groups");
  list.replaceChildren();
  for (const [id, group] of client!.groups) {
    const li = document.createElement("li");
    li.textContent = `# ${id.slice(0, 10)}`;
    li.dataset.group = id;
    li.classList.toggle("active", id === current);
    li.classList.toggle("gone", group.removed);
    li.onclick = () => select(id);
    list.append(li);
  }
}

function renderRoom(): void {
  const group = current ? client!.groups.get(current) : undefined;
  $("empty").hidden = !!group;
  $("room").hidden = !group;
  if (!group) return;
  renderHead();
  $("messages").replaceChildren();
  for (const entry of group.transcript) appendMessage(entry);
}

function renderHead(): void {
  const group = client!.groups.get(current!);
  if (!group) return;
  $("room-title").textContent = `# ${group.id}`;
  $("room").dataset.group = group.id;
  $("epoch").textContent = String(group.epoch);
  $("removed").hidden = !group.removed;
  const online = new Set(client!.online(group.id));
  const members = group.removed ? [] : group.members();
  const accounts = new Map<string, boolean>();
  for (const m of members) {
    accounts.set(m.account, (accounts.get(m.account) ?? false) || online.has(m.device));
  }
  const list = $("members");
  list.replaceChildren();
  for (const [account, isOnline] of accounts) {
    const li = document.createElement("li");
    li.dataset.account = account;
    li.classList.toggle("online", isOnline);
    li.textContent = account === client!.account
      ? `${client!.name} (you)`
      : client!.nameOf(account);
    if (account !== client!.account) {
      const remove = document.createElement("button");
      remove.className = "link";
      remove.textContent = "✕";
      remove.title = "Remove from the group";
      remove.dataset.testid = "remove";
      remove.onclick = () => run(() => client!.remove(group.id, account), "Removed.");
      li.append(remove);
    }
    list.append(li);
  }
  $("presence").textContent = [...accounts].filter(([, on]) => on)
    .map(([a]) => a === client!.account ? client!.name : client!.nameOf(a)).join(", ") || "—";
}

function appendMessage(entry: TranscriptEntry): void {
  const li = document.createElement("li");
  li.dataset.seq = String(entry.seq);
  li.dataset.kind = entry.kind;
  li.dataset.account = entry.from.account;
  if (entry.kind === "hello") {
    li.className = "system";
    li.textContent = `${entry.name} joined`;
  } else {
    li.classList.toggle("own", entry.own);
    const from = document.createElement("span");
    from.className = "from";
    from.textContent = entry.verified ? entry.name : `${entry.name} (unverified)`;
    li.append(from);
    if (entry.text !== undefined) {
      const text = document.createElement("span");
      text.className = "text";
      text.textContent = entry.text;
      li.append(text);
    }
    if (entry.image) li.append(imageOf(entry));
  }
  $("messages").append(li);
  li.scrollIntoView({ block: "end" });
}

function imageOf(entry: TranscriptEntry): HTMLElement {
  const img = document.createElement("img");
  img.alt = entry.image!.file;
  img.dataset.testid = "image";
  client!.imageBytes(entry).then(async (bytes) => {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    img.dataset.sha256 = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
    img.src = URL.createObjectURL(new Blob([bytes], { type: entry.image!.mime }));
  }).catch((error) => {
    img.alt = `image unavailable: ${error}`;
    img.dataset.error = String(error);
  });
  return img;
}

function showTyping(account: string, name: string): void {
  clearTimeout(typingTimers.get(account));
  typingTimers.set(
    account,
    setTimeout(() => {
      typingTimers.delete(account);
      renderTyping();
    }, 3000),
  );
  renderTyping(name);
}

function renderTyping(name?: string): void {
  const names = new Set([...typingTimers.keys()].map((a) => client!.nameOf(a)));
  if (name) names.add(name);
  $("typing").textContent = names.size ? `${[...names].join(", ")} typing…` : "";
}

async function run(task: () => Promise<unknown>, done: string): Promise<void> {
  status("Working…");
  try {
    await task();
    status(done);
  } catch (error) {
    status(`Failed: ${(error as Error).message ?? error}`);
  }
}

// ---------------------------------------------------------------- wiring

$("setup").onsubmit = (event) => {
  event.preventDefault();
  const name = $<HTMLInputElement>("setup-name").value.trim();
  if (name) run(() => start(name), "Ready.");
};

$("new-group").onclick = () =>
  run(async () => {
    const id = await client!.createGroup();
    select(id);
  }, "Group created.");

$("invite").onsubmit = (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>("invite-account");
  const account = input.value.trim();
  if (!account || !current) return;
  const group = current;
  run(async () => {
    await client!.invite(group, account);
    input.value = "";
  }, "Invited.");
};

$("composer").onsubmit = (event) => {
  event.preventDefault();
  const input = $<HTMLInputElement>("text");
  const text = input.value.trim();
  if (!text || !current) return;
  input.value = "";
  const group = current;
  lastTyping = 0; // the next keystroke starts a new "typing"
  run(() => client!.sendText(group, text), "");
};
$("text").oninput = () => {
  if (!current || Date.now() - lastTyping < 2000) return;
  lastTyping = Date.now();
  void client?.typing(current);
};

$<HTMLInputElement>("file").onchange = () => {
  const file = $<HTMLInputElement>("file").files?.[0];
  if (!file || !current) return;
  const group = current;
  run(async () => {
    const bytes = new Uint8Array(await file.arrayBuffer());
    await client!.sendImage(group, bytes, file.type || "application/octet-stream", file.name);
    $<HTMLInputElement>("file").value = "";
  }, "Image sent.");
};

const saved = await (await IdbStore.open()).get<{ name: string }>("identity");
if (saved) await run(() => start(saved.name), "");
else $("setup").hidden = false;
