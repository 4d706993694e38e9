// The Documents panel (API.md §6): upload with progress, list, delete.
import { AuthNeeded, request, upload } from "./api.js";

const $ = (id) => document.getElementById(id);

export async function loadDocuments(onAuth) {
  const list = $("doc-list");
  let docs = [];
  try {
    docs = (await request("GET", "/api/documents")).documents || [];
  } catch (err) {
    if (err instanceof AuthNeeded) return onAuth();
    $("doc-status").textContent = err.status === 404 ? "Documents are not available on this server." : err.message;
    return;
  }
  list.replaceChildren(...docs.map((d) => {
    const li = document.createElement("li");
    li.dataset.id = d.id;
    const name = Object.assign(document.createElement("span"), { className: "doc-title", textContent: d.title });
    const meta = Object.assign(document.createElement("span"), { className: "muted small", textContent: ` ${d.chunks} passages` });
    const del = Object.assign(document.createElement("button"), { type: "button", className: "icon small-btn", textContent: "✕", title: "Delete" });
    del.setAttribute("aria-label", `Delete ${d.title}`);
    del.onclick = async () => {
      try { await request("DELETE", `/api/documents/${encodeURIComponent(d.id)}`); } catch (err) { $("doc-status").textContent = err.message; }
      loadDocuments(onAuth);
    };
    li.append(name, meta, del);
    return li;
  }));
  if (!docs.length) list.append(Object.assign(document.createElement("li"), { className: "muted small", textContent: "No documents yet." }));
}

export function initDocuments(onAuth) {
  const input = $("doc-file"), bar = $("doc-progress"), status = $("doc-status");
  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    if (!file) return;
    bar.hidden = false;
    bar.value = 0;
    status.textContent = `Uploading ${file.name}…`;
    try {
      const doc = await upload("/api/documents", file, (f) => { bar.value = Math.round(f * 100); });
      bar.value = 100;
      status.textContent = `Added “${doc.title}” (${doc.chunks} passages).`;
    } catch (err) {
      if (err instanceof AuthNeeded) onAuth();
      status.textContent = `Upload failed: ${err.message}`;
    } finally {
      input.value = "";
      setTimeout(() => { bar.hidden = true; }, 600);
      loadDocuments(onAuth);
    }
  });
  return loadDocuments(onAuth);
}
