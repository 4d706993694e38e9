// The builder's DSL as an entity-relationship diagram, drawn as SVG here (no Mermaid:
// it is several MB and this needs only boxes and lines). Text goes in via textContent.
const NS = "http://www.w3.org/2000/svg";
const W = 180, ROW = 16, HEAD = 22, GAP_X = 60, GAP_Y = 40;
const CARD = { "one-to-one": "1 : 1", "one-to-many": "1 : N", "many-to-one": "N : 1", "many-to-many": "N : M" };

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Lay the entities out on a grid; returns {name: {x, y, w, h}}. */
function layout(entities) {
  const names = Object.keys(entities);
  const cols = Math.max(1, Math.ceil(Math.sqrt(names.length)));
  const boxes = {};
  const rowHeights = [];
  names.forEach((name, i) => {
    const h = HEAD + ROW * Object.keys(entities[name].fields || {}).length + 8;
    const r = Math.floor(i / cols);
    rowHeights[r] = Math.max(rowHeights[r] || 0, h);
  });
  names.forEach((name, i) => {
    const r = Math.floor(i / cols), c = i % cols;
    const y = rowHeights.slice(0, r).reduce((a, b) => a + b + GAP_Y, 0);
    const h = HEAD + ROW * Object.keys(entities[name].fields || {}).length + 8;
    boxes[name] = { x: c * (W + GAP_X), y, w: W, h };
  });
  return { boxes, cols, height: rowHeights.reduce((a, b) => a + b + GAP_Y, 0) - GAP_Y };
}

/** Render `dsl` into `container` (replacing what was there). */
export function renderErd(container, dsl) {
  container.replaceChildren();
  const entities = (dsl && dsl.entities) || {};
  const names = Object.keys(entities);
  if (!names.length) {
    container.append(Object.assign(document.createElement("p"), { className: "muted small", textContent: "No entities yet." }));
    return;
  }
  const { boxes, cols, height } = layout(entities);
  const width = Math.min(cols, names.length) * (W + GAP_X) - GAP_X;
  const svg = el("svg", { viewBox: `-4 -4 ${width + 8} ${height + 8}`, role: "img", "aria-label": "Entity-relationship diagram", class: "erd-svg" });
  for (const rel of (dsl.relationships || [])) {
    const a = boxes[rel.from], b = boxes[rel.to];
    if (!a || !b) continue;
    const x1 = a.x + a.w / 2, y1 = a.y + a.h / 2, x2 = b.x + b.w / 2, y2 = b.y + b.h / 2;
    svg.append(el("line", { x1, y1, x2, y2, class: "erd-rel" }));
    const label = `${CARD[rel.type] || rel.type}${rel.name ? " " + rel.name : ""}`;
    svg.append(el("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 4, class: "erd-rel-label", "text-anchor": "middle" }, label));
  }
  for (const name of names) {
    const box = boxes[name];
    const g = el("g", { transform: `translate(${box.x},${box.y})`, class: "erd-entity" });
    g.append(el("rect", { width: box.w, height: box.h, rx: 6, class: "erd-box" }));
    g.append(el("rect", { width: box.w, height: HEAD, rx: 6, class: "erd-head" }));
    g.append(el("text", { x: 8, y: 15, class: "erd-name" }, name));
    Object.entries(entities[name].fields || {}).forEach(([field, spec], i) => {
      const flags = `${spec.required ? "" : "?"}${spec.unique ? " ◆" : ""}`;
      g.append(el("text", { x: 8, y: HEAD + 13 + i * ROW, class: "erd-field" }, `${field}${flags}`));
      g.append(el("text", { x: box.w - 8, y: HEAD + 13 + i * ROW, class: "erd-type", "text-anchor": "end" }, spec.type || ""));
    });
    svg.append(g);
  }
  container.append(svg);
}
