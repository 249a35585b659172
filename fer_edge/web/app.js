// fer-edge page: one card per camera, live from api/state every second, with its history
// (api/history, on the box's disk: it survives restarts) over the chosen range and its recent
// visits (api/tracks). Plain DOM and SVG, no libraries, no build step; every string from the API
// is set as text, never as HTML.
"use strict";

const LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
const COLOURS = {
  angry: "rgb(220,60,60)", disgust: "rgb(60,150,60)", fear: "rgb(160,60,160)",
  happy: "rgb(240,200,40)", sad: "rgb(40,120,200)", surprise: "rgb(250,140,40)",
  neutral: "rgb(150,150,150)",
};
const REFRESH_MS = 1000;
const VISITS_SHOWN = 5;
// the ranges the page offers: span, step, and how often its chart is asked for again
const RANGES = {
  "1h": { label: "1 h", span_s: 3600, step: "minute", refresh_ms: 15000 },
  "24h": { label: "24 h", span_s: 86400, step: "hour", refresh_ms: 60000 },
  "7d": { label: "7 d", span_s: 7 * 86400, step: "hour", refresh_ms: 300000 },
  "30d": { label: "30 d", span_s: 30 * 86400, step: "day", refresh_ms: 300000 },
};
const params = new URLSearchParams(location.search);
let range = RANGES[params.get("range")] ? params.get("range") : "1h";
const SVG = "http://www.w3.org/2000/svg";
const token = params.get("token");
const cards = new Map();
// snapshots are fetched only for cards on screen: a 16-camera box drawing 16 JPEGs a second for
// a page showing four of them would spend its CPU on pictures nobody sees
const onScreen = new IntersectionObserver((entries) => {
  for (const entry of entries) {
    const card = cards.get(entry.target.dataset.camera);
    if (card) card.visible = entry.isIntersecting;
  }
});

function withToken(url) {
  return token ? url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : url;
}

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) node.append(child);
  return node;
}

function makeCard(name) {
  const status = el("span", { class: "status" }, "…");
  const image = el("img", { class: "snapshot", alt: `last analysed frame of ${name}` });
  const noImage = el("div", { class: "snapshot noimage" }, "waiting for the next tick…");
  const figures = el("div", { class: "figures" });
  const faces = el("ul", { class: "faces" });
  const chart = el("svg:svg", { class: "chart", viewBox: "0 0 600 140", preserveAspectRatio: "none", role: "img" });
  const legend = el("div", { class: "legend" }, ...LABELS.map((label) => {
    const swatch = el("i");
    swatch.style.background = COLOURS[label]; // CSSOM, not a style attribute: the CSP allows it
    return el("span", {}, swatch, label);
  }));
  const caption = el("div", { class: "muted caption" });
  const visits = el("ol", { class: "visits" });
  const node = el("section", { class: "card", "data-camera": name },
    el("h2", {}, name, status), image, noImage, figures, faces, caption, chart, legend,
    el("h3", {}, "recent visits"), visits);
  image.hidden = true;
  image.addEventListener("load", () => { image.hidden = false; noImage.hidden = true; });
  document.getElementById("cameras").append(node);
  const card = {
    node, status, image, noImage, figures, faces, chart, caption, visits, seq: null, visible: false,
    historyRange: null, historyAt: 0, visitsAt: 0,
  };
  cards.set(name, card);
  onScreen.observe(node);
  return card;
}

function figure(label, value) {
  return el("span", {}, label + " ", el("b", {}, String(value)));
}

function updateCard(card, name, cam, state) {
  const status = cam.status || "connecting";
  card.status.textContent = status;
  card.status.className = "status " + status;
  card.figures.replaceChildren(
    figure("decode fps", cam.decode_fps),
    figure("ticks", cam.ticks),
    figure("missed", cam.skipped_ticks),
    figure("decoding", cam.decode ? cam.decode.doing : "-"),
    figure("GOP", cam.decode && cam.decode.gop_s ? cam.decode.gop_s + " s" : "-"),
    figure("spool", state.spool.depth),
    figure("people today", cam.people_today ?? "-"),
  );
  const last = cam.last;
  const faces = last ? last.faces : [];
  card.faces.replaceChildren(...(faces.length ? faces.map((face) => {
    const text = face.emotion
      ? `#${face.id} ${face.emotion} ${(face.score * 100).toFixed(0)}%`
      : `#${face.id} ${face.turned_away ? "turned away" : "too small"}`;
    const item = el("li", { "data-emotion": face.emotion || "none" }, text);
    if (face.emotion) item.style.borderColor = COLOURS[face.emotion];
    return item;
  }) : [el("li", { class: "none" }, "no faces")]));
  if (state.snapshots && card.visible && last && last.seq !== card.seq) {
    card.seq = last.seq;
    card.image.src = withToken(`api/cameras/${encodeURIComponent(name)}/snapshot.jpg?seq=${last.seq}`);
  }
  if (!state.snapshots) card.noImage.textContent = "snapshots are off on this box";
  const now = Date.now();
  if (card.historyRange !== range || now - card.historyAt > RANGES[range].refresh_ms) updateHistoryNow(card, name);
  if (now - card.visitsAt > 5000) {
    card.visitsAt = now;
    loadVisits(card, name);
  }
}

async function getJson(url) {
  const response = await fetch(withToken(url), { cache: "no-store" });
  if (!response.ok) throw new Error(`${url.split("?")[0]} answered ${response.status}`);
  return response.json();
}

async function loadHistory(card, name) {
  const chosen = range, spec = RANGES[chosen];
  const query = `camera=${encodeURIComponent(name)}&from=-${spec.span_s}s&step=${spec.step}`;
  try {
    const document = await getJson(`api/history?${query}`);
    if (chosen !== range) return; // the range changed while this was on its way
    const buckets = document.cameras[name];
    const people = buckets.reduce((sum, b) => sum + (b.people || 0), 0);
    const analysed = buckets.filter((b) => b.analysed_s > 0).length;
    card.caption.textContent = `share of faces per emotion, last ${spec.label} (per ${spec.step}) · ` +
      `${people} visit(s) · data in ${analysed} of ${buckets.length} ${spec.step}s`;
    drawChart(card.chart, buckets, spec);
  } catch (e) {
    card.caption.textContent = `history: ${e.message}`;
  }
}

function clock(iso, withDate, withSeconds = true) {
  const moment = new Date(iso);
  if (withDate) return moment.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
  const parts = { hour: "2-digit", minute: "2-digit", ...(withSeconds ? { second: "2-digit" } : {}) };
  return moment.toLocaleTimeString([], parts);
}

async function loadVisits(card, name) {
  try {
    const document = await getJson(`api/tracks?camera=${encodeURIComponent(name)}&from=-7d&limit=${VISITS_SHOWN}`);
    const visits = document.cameras[name];
    const today = new Date().toDateString();
    card.visits.replaceChildren(...(visits.length ? visits.map((v) => {
      const share = v.dominant ? ` ${v.dominant} ${Math.round(v.emotions[v.dominant] * 100)}%` : " no emotion";
      const looked = v.attention === null ? "" : ` · looked ${Math.round(v.attention * 100)}%`;
      const when = clock(v.first_seen, new Date(v.first_seen).toDateString() !== today);
      const item = el("li", { "data-emotion": v.dominant || "none" }, `${when} · #${v.id} · ${v.dwell_s} s ·${share}${looked}`);
      if (v.dominant) item.style.borderColor = COLOURS[v.dominant];
      return item;
    }) : [el("li", { class: "none" }, "no visits in the last 7 days")]));
  } catch (e) {
    card.visits.replaceChildren(el("li", { class: "none" }, `visits: ${e.message}`));
  }
}

function drawChart(svg, buckets, spec) {
  // one column per bucket: the emotions' shares stacked; a bucket nothing was analysed in is
  // hatched and labelled "no data" (the daemon or the camera was down), never drawn as 0%
  const width = 600, height = 140, top = 6, bottom = 16;
  const count = buckets.length;
  const column = width / Math.max(count, 1);
  const y = (share) => top + (1 - share) * (height - top - bottom);
  const nodes = [];
  let gapStart = -1;
  const closeGap = (end) => {
    if (gapStart < 0) return;
    const x = gapStart * column, w = (end - gapStart) * column;
    nodes.push(el("svg:rect", { class: "nodata", x: x.toFixed(1), y: y(1), width: w.toFixed(1), height: y(0) - y(1) }));
    if (w >= 50) nodes.push(el("svg:text", { class: "nodata-label", x: (x + w / 2 - 20).toFixed(1), y: (y(0.5) + 4).toFixed(1) }, "no data"));
    gapStart = -1;
  };
  buckets.forEach((bucket, i) => {
    if (bucket.analysed_s === 0) {
      if (gapStart < 0) gapStart = i;
      return;
    }
    closeGap(i);
    if (!bucket.emotions) return; // analysed, nobody there: an empty column
    let below = 0;
    for (const label of LABELS) {
      const share = bucket.emotions[label] || 0;
      if (share <= 0) continue;
      nodes.push(el("svg:rect", {
        x: (i * column).toFixed(2), y: y(below + share).toFixed(1), width: Math.max(column - 0.3, 0.5).toFixed(2),
        height: (y(below) - y(below + share)).toFixed(1), fill: COLOURS[label], "data-emotion": label,
      }));
      below += share;
    }
  });
  closeGap(count);
  const first = count ? clock(buckets[0].start, spec.span_s > 86400, false) : "";
  const labels = [
    el("svg:line", { class: "axis", x1: 0, x2: width, y1: y(0), y2: y(0) }),
    el("svg:line", { class: "axis top", x1: 0, x2: width, y1: y(1), y2: y(1) }),
    el("svg:text", { x: 2, y: height - 3 }, first),
    el("svg:text", { x: width - 22, y: height - 3 }, "now"),
    el("svg:text", { x: 2, y: top + 9 }, "100%"),
  ];
  svg.replaceChildren(...nodes, ...labels); // axes and labels over the columns
}

function makeRangePicker() {
  const picker = document.getElementById("ranges");
  for (const [key, spec] of Object.entries(RANGES)) {
    const button = el("button", { type: "button", "data-range": key, "aria-pressed": String(key === range) }, spec.label);
    button.addEventListener("click", () => {
      range = key;
      params.set("range", key);
      history.replaceState(null, "", `${location.pathname}?${params}`);
      for (const other of picker.children) other.setAttribute("aria-pressed", String(other === button));
      for (const [name, card] of cards) updateHistoryNow(card, name);
    });
    picker.append(button);
  }
}

function updateHistoryNow(card, name) {
  card.historyRange = range;
  card.historyAt = Date.now();
  loadHistory(card, name);
}

async function refresh() {
  const error = document.getElementById("error");
  try {
    const response = await fetch(withToken("api/state"), { cache: "no-store" });
    if (!response.ok) throw new Error(`api/state answered ${response.status}`);
    const state = await response.json();
    document.getElementById("device").textContent = state.device;
    document.getElementById("summary").textContent =
      `${Object.keys(state.cameras).length} camera(s) · up ${Math.round(state.uptime_s)} s · ` +
      `spool ${state.spool.depth} · fer-edge ${state.version}`;
    for (const [name, cam] of Object.entries(state.cameras)) {
      updateCard(cards.get(name) || makeCard(name), name, cam, state);
    }
    error.hidden = true;
  } catch (e) {
    error.textContent = `cannot reach the daemon: ${e.message}`;
    error.hidden = false;
  }
  setTimeout(refresh, REFRESH_MS);
}

makeRangePicker();
refresh();
