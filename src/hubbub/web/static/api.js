// Talking to this hubbub server only: relative URLs, the key as `Authorization: Bearer`.
const KEY = "hubbub.key";

export class AuthNeeded extends Error {}

export function apiKey() { return localStorage.getItem(KEY) || ""; }
export function setKey(key) { key ? localStorage.setItem(KEY, key) : localStorage.removeItem(KEY); }

export function headers(extra = {}) {
  const h = { ...extra };
  const key = apiKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

/** The error message of any dialect's error body (builder, conversations, OpenAI, documents, bots). */
export function errorMessage(body, status) {
  const e = body && body.error;
  if (e && typeof e === "object" && e.message) return e.message;
  if (typeof e === "string") return e;
  if (body && typeof body.detail === "string") return body.detail;
  return `HTTP ${status}`;
}

export async function request(method, url, body, signal) {
  const opts = { method, headers: headers(), signal };
  if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers["Content-Type"] = "application/json";
  }
  const r = await fetch(url, opts);
  if (r.status === 401) throw new AuthNeeded("unauthorized");
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!r.ok) {
    const err = new Error(errorMessage(data, r.status));
    err.status = r.status;
    throw err;
  }
  return data;
}

/**
 * Read an SSE response from fetch (EventSource cannot send a key header).
 * Calls onEvent(data, id) per event; `data` is parsed JSON, or the raw string ([DONE]).
 */
export async function readSSE(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.search(/\r?\n\r?\n/)) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut).replace(/^\r?\n\r?\n/, "");
      const data = [];
      let id = null;
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        else if (line.startsWith("id:")) id = line.slice(3).trim();
      }
      if (!data.length) continue; // a `: ping` comment
      const raw = data.join("\n");
      let parsed = raw;
      try { parsed = JSON.parse(raw); } catch { /* [DONE] */ }
      onEvent(parsed, id);
    }
  }
}

/** POST/GET that answers with SSE; throws (with the dialect's message) on a non-200. */
export async function openStream(method, url, { body, lastEventId, signal } = {}) {
  const h = headers({ Accept: "text/event-stream" });
  if (body !== undefined) h["Content-Type"] = "application/json";
  if (lastEventId != null) h["Last-Event-ID"] = String(lastEventId);
  const r = await fetch(url, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), signal });
  if (r.status === 401) throw new AuthNeeded("unauthorized");
  if (!r.ok) {
    let data = null;
    try { data = await r.json(); } catch { /* not JSON */ }
    const err = new Error(errorMessage(data, r.status));
    err.status = r.status;
    throw err;
  }
  return r;
}

/** Multipart upload with progress (fetch has no upload progress; XMLHttpRequest does). */
export function upload(url, file, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    const key = apiKey();
    if (key) xhr.setRequestHeader("Authorization", `Bearer ${key}`);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status === 401) reject(new AuthNeeded("unauthorized"));
      else if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(new Error(errorMessage(data, xhr.status)));
    };
    xhr.onerror = () => reject(new Error("upload failed (network)"));
    const form = new FormData();
    form.append("file", file);
    xhr.send(form);
  });
}
