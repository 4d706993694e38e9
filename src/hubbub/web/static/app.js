// The hubbub chat page. Chats are builder chats (API.md §2): stored on the server,
// streamed with `id:` lines, resumable after a reload, stoppable. See docs/web.md.
import { marked } from "./vendor/marked.esm.js";
import DOMPurify from "./vendor/purify.es.js";
import { AuthNeeded, apiKey, openStream, readSSE, request, setKey } from "./api.js";
import { renderErd } from "./erd.js";
import { initDocuments, loadDocuments } from "./docs.js";

const $ = (id) => document.getElementById(id);
const store = {
  get: (k, d) => { try { return JSON.parse(localStorage.getItem(`hubbub.${k}`)) ?? d; } catch { return d; } },
  set: (k, v) => localStorage.setItem(`hubbub.${k}`, JSON.stringify(v)),
};
const state = {
  chats: store.get("chats", []),     // [{id, title, builder, updatedAt}] — this browser's list (see docs/web.md)
  current: store.get("current", null),
  bots: [],
  running: null,                       // {kind: "chat"|"rag", controller}
  reader: null,                        // AbortController of the stream being followed
  serverCount: 0,                      // stored messages shown (RAG turns are placed after this many)
  history: [],                         // [{role, content}] as shown, for the RAG route's prompt
  exports: false,
  ready: false,                        // start() has opened the current chat: sending may begin
};
window.hubbub = state; // for tests and curious people

// ---------- rendering ----------
// Answers (model or document text) may hold any HTML. The sanitiser keeps only what marked renders
// from Markdown — no <style>, forms, inputs, SVG, ids, classes or inline styles — so no answer can
// restyle the page or draw over its controls (a "session expired — sign in" overlay once did; see
// docs/security.md). Task-list boxes are drawn as characters instead of <input>s; links open
// in a new tab and never pass the page along (rel=noopener noreferrer).
const MARKDOWN_ONLY = {
  ALLOWED_TAGS: ["p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td"],
  ALLOWED_ATTR: ["href", "title", "alt", "src", "align", "start"],
  ALLOW_DATA_ATTR: false,
  ALLOW_ARIA_ATTR: false,
};
marked.use({ renderer: { checkbox: ({ checked }) => (checked ? "\u2611 " : "\u2610 ") } });
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

function markdown(node, text) {
  node.innerHTML = DOMPurify.sanitize(marked.parse(text || "", { gfm: true, breaks: false }), MARKDOWN_ONLY);
}

function addMessage(role, content, { streaming = false } = {}) {
  const wrap = document.createElement("div");
  wrap.className = `msg msg-${role}${streaming ? " streaming" : ""}`;
  const body = document.createElement("div");
  body.className = "body";
  wrap.append(body);
  wrap.text = content || "";
  if (role === "user") body.textContent = wrap.text; else markdown(body, wrap.text);
  $("messages").append(wrap);
  scrollDown();
  return wrap;
}

let pending = new Set();
function appendText(msg, delta) {
  msg.text += delta;
  pending.add(msg);
  requestAnimationFrame(() => {
    for (const m of pending) markdown(m.firstChild, m.text);
    pending = new Set();
    scrollDown();
  });
}

function showSources(msg, sources) {
  const box = document.createElement("div");
  box.className = "sources";
  box.append("Sources: ");
  sources.forEach((s, i) => {
    const tag = Object.assign(document.createElement("span"), { className: "source", textContent: `[${i + 1}] ${s.title}` });
    tag.title = s.documentId;
    box.append(tag);
  });
  if (!sources.length) box.append("none matched");
  msg.append(box);
}

function showError(msg, text) {
  msg.append(Object.assign(document.createElement("div"), { className: "error small", textContent: text }));
}

function scrollDown() { const m = $("messages"); m.scrollTop = m.scrollHeight; }

function setRunning(run) {
  state.running = run;
  $("stop").hidden = !run;
  $("send").hidden = !!run;
  document.body.classList.toggle("running", !!run);
  if (!run) document.querySelectorAll(".msg.streaming").forEach((m) => m.classList.remove("streaming"));
}

// ---------- conversation list ----------
function chat(id = state.current) { return state.chats.find((c) => c.id === id); }
function saveChats() { store.set("chats", state.chats); store.set("current", state.current); renderList(); }

function renderList() {
  const list = $("chat-list");
  list.replaceChildren(...[...state.chats].sort((a, b) => b.updatedAt - a.updatedAt).map((c) => {
    const li = document.createElement("li");
    li.className = c.id === state.current ? "active" : "";
    li.dataset.id = c.id;
    const open = Object.assign(document.createElement("button"), { type: "button", className: "chat-open", textContent: c.title || "New chat" });
    open.onclick = () => { closeDrawers(); openChat(c.id); };
    const actions = document.createElement("span");
    actions.className = "chat-actions";
    for (const [label, icon, fn] of [["Rename", "✎", renameChat], ["Clear", "⌫", clearChat], ["Delete", "✕", deleteChat]]) {
      const b = Object.assign(document.createElement("button"), { type: "button", className: "icon small-btn", textContent: icon, title: label });
      b.setAttribute("aria-label", `${label} ${c.title}`);
      b.onclick = (e) => { e.stopPropagation(); fn(c.id); };
      actions.append(b);
    }
    li.append(open, actions);
    return li;
  }));
  $("chat-title").textContent = (chat() && chat().title) || "New chat";
}

function newId() {
  const rnd = crypto.randomUUID ? crypto.randomUUID().replaceAll("-", "") : Math.random().toString(36).slice(2) + Date.now().toString(36);
  return `web_${rnd.slice(0, 24)}`;
}

function newChat() {
  const c = { id: newId(), title: "New chat", builder: $("builder").checked, updatedAt: Date.now(), fresh: true };
  state.chats.push(c);
  openChat(c.id);
  return c;
}

function renameChat(id) {
  const c = chat(id);
  const title = prompt("Rename conversation", c.title);
  if (title && title.trim()) { c.title = title.trim().slice(0, 120); saveChats(); }
}

// The builder dialect has no delete or clear route: both act on this browser's list (docs/web.md).
function deleteChat(id) {
  if (!confirm("Delete this conversation from the list?")) return;
  if (state.running && id === state.current) stop();
  state.chats = state.chats.filter((c) => c.id !== id);
  localStorage.removeItem(`hubbub.rag.${id}`);
  if (state.current === id) { state.current = null; openChat(state.chats.length ? state.chats[0].id : null); }
  saveChats();
}

function clearChat(id) {
  if (state.running && id === state.current) stop();
  const c = chat(id);
  localStorage.removeItem(`hubbub.rag.${id}`);
  c.id = newId(); // a fresh chat under the same title: the old one keeps its history on the server
  c.fresh = true;
  if (state.current === id) state.current = c.id;
  saveChats();
  openChat(state.current);
}

// ---------- following a chat ----------
async function follow(response, chatId, ctx) {
  let lastId = null, done = false;
  const handle = (ev, id) => {
    if (id != null) lastId = id;
    if (chatId !== state.current || !ev || typeof ev !== "object") return;
    if (ev.type === "history") renderHistory(ev.content);
    else if (ev.type === "text") {
      if (!ctx.msg) ctx.msg = addMessage("assistant", "", { streaming: true });
      appendText(ctx.msg, ev.content);
    } else if (ev.type === "dsl") showDsl(ev.content);
    else if (ev.type === "phase") $("phase").textContent = ev.content;
    else if (ev.type === "error") showError(ctx.msg || addMessage("assistant", ""), ev.content.message || "error");
    else if (ev.type === "done") done = true;
  };
  ctx.handle = handle;
  for (let attempt = 0; ; attempt++) {
    try { await readSSE(response, handle); } catch (err) { if (err.name === "AbortError") return; }
    if (done || attempt >= 3 || chatId !== state.current) break;
    // The connection dropped mid-answer: continue after the last event seen (no duplicates).
    try { response = await openStream("GET", `/api/chat/${chatId}/stream`, { lastEventId: lastId, signal: ctx.signal }); }
    catch { break; }
  }
  if (chatId === state.current) {
    if (ctx.msg) state.history.push({ role: "assistant", content: ctx.msg.text });
    setRunning(null);
    refreshChat(chatId);
  }
}

function renderHistory(messages) {
  $("messages").replaceChildren();
  state.history = [];
  state.serverCount = messages.length;
  const local = store.get(`rag.${state.current}`, []);
  const ctx = state.followCtx;
  for (const t of local.filter((t) => t.after <= 0)) addRagTurn(t);
  messages.forEach((m, i) => {
    const node = addMessage(m.role, m.content);
    state.history.push({ role: m.role, content: m.content });
    if (ctx && i === messages.length - 1 && m.role === "assistant") ctx.msg = node; // a running answer continues here
    for (const t of local.filter((t) => t.after === i + 1)) addRagTurn(t);
  });
  for (const t of local.filter((t) => t.after > 0 && t.after > messages.length)) addRagTurn(t);
  if (ctx && ctx.msg) { ctx.msg.classList.add("streaming"); state.history.pop(); }
}

function addRagTurn(t) {
  addMessage("user", t.user);
  const m = addMessage("assistant", t.assistant);
  showSources(m, t.sources || []);
  state.history.push({ role: "user", content: t.user }, { role: "assistant", content: t.assistant });
}

async function refreshChat(id) {
  try {
    const c = await request("GET", `/api/chat/${encodeURIComponent(id)}`);
    if (id !== state.current) return;
    showDsl(c.dsl, c.phase);
  } catch { /* not created yet */ }
}

async function openChat(id) {
  if (state.reader) state.reader.abort();
  if (state.running && state.running.kind === "rag") state.running.controller.abort();
  setRunning(null);
  state.current = id;
  saveChats();
  $("messages").replaceChildren();
  state.history = []; state.serverCount = 0;
  const c = chat(id);
  $("builder").checked = !!(c && c.builder);
  syncBuilderPanel();
  showDsl(null);
  if (!c) return;
  if (c.fresh) { renderHistory([]); return; }
  const controller = new AbortController();
  state.reader = controller;
  const ctx = { signal: controller.signal, msg: null };
  state.followCtx = ctx;
  try {
    const r = await openStream("GET", `/api/chat/${encodeURIComponent(id)}/stream`, { signal: controller.signal });
    // Until `done`, a running answer is still arriving: Stop applies to it.
    setRunning({ kind: "chat", controller });
    await follow(r, id, ctx);
  } catch (err) {
    if (err instanceof AuthNeeded) return askKey();
    if (err.name !== "AbortError" && id === state.current) renderHistory([]);
  }
}

// ---------- sending ----------
async function send(text) {
  if (state.running || !text.trim()) return;
  const c = chat() || newChat();
  if (c.title === "New chat") c.title = text.trim().replace(/\s+/g, " ").slice(0, 48);
  c.updatedAt = Date.now();
  saveChats();
  if ($("rag").checked) return sendRag(c, text);
  const bot = state.bots.find((b) => b.slug === $("bot").value);
  const messages = [];
  if (c.fresh && bot && bot.systemPrompt) messages.push({ role: "system", content: bot.systemPrompt });
  messages.push({ role: "user", content: text });
  const body = { chatId: c.id, messages, model: $("model").value || undefined, enableDSL: !!c.builder };
  if (bot && bot.temperature != null) body.temperature = bot.temperature;
  addMessage("user", text);
  state.history.push({ role: "user", content: text });
  const controller = new AbortController();
  if (state.reader) state.reader.abort();
  state.reader = controller;
  const ctx = { signal: controller.signal, msg: addMessage("assistant", "", { streaming: true }) };
  state.followCtx = null;
  setRunning({ kind: "chat", controller });
  try {
    const r = await openStream("POST", "/api/chat", { body, signal: controller.signal });
    c.fresh = false; saveChats();
    state.serverCount += messages.length + 1;
    await follow(r, c.id, ctx);
  } catch (err) {
    setRunning(null);
    if (err instanceof AuthNeeded) return askKey();
    if (err.name !== "AbortError") showError(ctx.msg, err.message);
  }
}

// RAG answers use the OpenAI route with `rag: true` (stored chats have no RAG yet): they are
// kept in this browser, placed after the stored messages they followed (docs/web.md).
async function sendRag(c, text) {
  const controller = new AbortController();
  addMessage("user", text);
  const msg = addMessage("assistant", "", { streaming: true });
  const messages = [...state.history, { role: "user", content: text }];
  state.history.push({ role: "user", content: text });
  setRunning({ kind: "rag", controller });
  let sources = [];
  try {
    const r = await openStream("POST", "/v1/chat/completions", {
      body: { model: $("model").value || undefined, messages, stream: true, rag: true }, signal: controller.signal,
    });
    await readSSE(r, (ev) => {
      if (!ev || typeof ev !== "object") return;
      if (ev.rag_sources) sources = ev.rag_sources;
      if (ev.error) showError(msg, ev.error.message || "error");
      const delta = ev.choices && ev.choices[0] && ev.choices[0].delta;
      if (delta && delta.content) appendText(msg, delta.content);
    });
  } catch (err) {
    if (err instanceof AuthNeeded) { setRunning(null); return askKey(); }
    if (err.name !== "AbortError") showError(msg, err.message);
  }
  showSources(msg, sources);
  state.history.push({ role: "assistant", content: msg.text });
  const turns = store.get(`rag.${c.id}`, []);
  turns.push({ after: state.serverCount, user: text, assistant: msg.text, sources });
  store.set(`rag.${c.id}`, turns);
  setRunning(null);
}

async function stop() {
  const run = state.running;
  if (!run) return;
  if (run.kind === "rag") { run.controller.abort(); return; } // stateless route: disconnecting stops it
  try { await request("POST", `/api/chat/${encodeURIComponent(state.current)}/stop`); } catch (err) { if (err instanceof AuthNeeded) askKey(); }
}

// ---------- builder panel ----------
function syncBuilderPanel() {
  const on = $("builder").checked;
  $("builder-panel").hidden = !on;
  document.body.classList.toggle("builder-on", on);
}

function showDsl(dsl, phase) {
  renderErd($("erd"), dsl);
  $("phase").textContent = phase || (dsl && dsl.phase) || "no model yet";
  const readiness = dsl && typeof dsl.readiness === "number" ? dsl.readiness : 0;
  $("readiness").style.width = `${readiness}%`;
  const n = dsl && dsl.entities ? Object.keys(dsl.entities).length : 0;
  $("dsl-stats").textContent = dsl ? `${n} entities · readiness ${readiness}% · confidence ${Math.round((dsl.confidence || 0) * 100)}%` : "";
  const ex = $("exports");
  ex.replaceChildren();
  if (!state.exports || !dsl || !state.current) return;
  for (const fmt of ["json", "jsonschema", "sql", "mermaid"]) {
    const b = Object.assign(document.createElement("button"), { type: "button", textContent: fmt, className: "small-btn" });
    b.onclick = () => exportDsl(fmt);
    ex.append(b);
  }
}

async function exportDsl(fmt) {
  const r = await fetch(`/api/chat/${encodeURIComponent(state.current)}/dsl?format=${fmt}`, { headers: apiKey() ? { Authorization: `Bearer ${apiKey()}` } : {} });
  if (!r.ok) return;
  const blob = await r.blob();
  const a = Object.assign(document.createElement("a"), {
    href: URL.createObjectURL(blob), download: `${state.current}.${{ json: "json", jsonschema: "schema.json", sql: "sql", mermaid: "mmd" }[fmt]}`,
  });
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

// ---------- pickers, auth ----------
async function loadPickers() {
  const models = (await request("GET", "/v1/models")).data || [];
  const sel = $("model"), saved = store.get("model", "");
  sel.replaceChildren(...models.map((m) => new Option(m.id, m.id)));
  if (models.some((m) => m.id === saved)) sel.value = saved;
  try { state.bots = (await request("GET", "/api/bots")).bots || []; } catch { state.bots = []; } // a user key may not list bots
  const bot = $("bot"), savedBot = store.get("bot", "");
  bot.replaceChildren(new Option("none", ""), ...state.bots.map((b) => new Option(b.name || b.slug, b.slug)));
  if (state.bots.some((b) => b.slug === savedBot)) bot.value = savedBot;
  try {
    const spec = await (await fetch("/openapi.json")).json();
    state.exports = !!spec.paths["/api/chat/{chat_id}/dsl"];
  } catch { state.exports = false; }
}

function askKey(message = "") {
  const dialog = $("key-dialog");
  $("key-error").textContent = message;
  if (!dialog.open) dialog.showModal();
}

async function start() {
  $("forget-key").hidden = !apiKey();
  try {
    await loadPickers();
  } catch (err) {
    if (err instanceof AuthNeeded) return askKey(apiKey() ? "That key was refused." : "");
    throw err;
  }
  $("rag").checked = store.get("rag", false);
  initDocuments(() => askKey());
  renderList();
  openChat(chat() ? state.current : null);
  state.ready = true;
}

function closeDrawers() { $("sidebar").classList.remove("open"); $("docs").classList.remove("open"); $("scrim").hidden = true; }

function wire() {
  const input = $("input");
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value;
    // Before start() has opened the chat, a message would be wiped by that opening: keep it typed.
    if (!text.trim() || state.running || !state.ready) return;
    input.value = "";
    input.style.height = "";
    send(text);
  });
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("composer").requestSubmit(); }
  });
  input.addEventListener("input", () => { input.style.height = ""; input.style.height = `${Math.min(input.scrollHeight, 200)}px`; });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && state.running) { e.preventDefault(); stop(); } });
  $("stop").onclick = stop;
  $("new-chat").onclick = () => { closeDrawers(); newChat(); $("input").focus(); };
  $("model").onchange = () => store.set("model", $("model").value);
  $("bot").onchange = () => {
    store.set("bot", $("bot").value);
    const b = state.bots.find((x) => x.slug === $("bot").value);
    if (b && b.model && [...$("model").options].some((o) => o.value === b.model)) $("model").value = b.model;
  };
  $("rag").onchange = () => store.set("rag", $("rag").checked);
  $("builder").onchange = () => { const c = chat(); if (c) { c.builder = $("builder").checked; saveChats(); } syncBuilderPanel(); };
  $("menu").onclick = () => { $("sidebar").classList.add("open"); $("scrim").hidden = false; };
  $("docs-toggle").onclick = () => {
    const d = $("docs");
    if (d.hidden) { d.hidden = false; d.classList.add("open"); loadDocuments(() => askKey()); if (innerWidth < 900) $("scrim").hidden = false; }
    else { d.hidden = true; closeDrawers(); }
  };
  $("docs-close").onclick = () => { $("docs").hidden = true; closeDrawers(); };
  $("scrim").onclick = () => { closeDrawers(); if (innerWidth < 900) $("docs").hidden = true; };
  $("forget-key").onclick = () => { setKey(""); location.reload(); };
  $("key-form").addEventListener("submit", () => { setKey($("key-input").value.trim()); $("key-input").value = ""; start(); });
}

wire();
start();
