// fer-edge live page: one card per camera, refreshed every second from api/state.
// Plain DOM and SVG, no libraries, no build step; every string from the API is set as text,
// never as HTML.
"use strict";

const LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
const COLOURS = {
  angry: "rgb(220,60,60)", disgust: "rgb(60,150,60)", fear: "rgb(160,60,160)",
  happy: "rgb(240,200,40)", sad: "rgb(40,120,200)", surprise: "rgb(250,140,40)",
  neutral: "rgb(150,150,150)",
};
const REFRESH_MS = 1000;
const SVG = "http://www.w3.org/2000/svg";
const token = new URLSearchParams(location.search).get("token");
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
  const node = el("section", { class: "card", "data-camera": name },
    el("h2", {}, name, status), image, noImage, figures, faces,
    el("div", { class: "muted" }, "share of faces per emotion, last hour (per 30 s)"), chart, legend);
  image.hidden = true;
  image.addEventListener("load", () => { image.hidden = false; noImage.hidden = true; });
  document.getElementById("cameras").append(node);
  const card = { node, status, image, noImage, figures, faces, chart, seq: null, visible: false };
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
  drawChart(card.chart, cam.history);
}

function drawChart(svg, history) {
  // x spans the last hour, or less while the daemon has been up for less: a new box's chart
  // fills the card and moves from the first minute
  const width = 600, height = 140, top = 6, bottom = 16, minBuckets = 4;
  const count = history.faces.length;
  const seen = history.faces.findIndex((faces) => faces > 0);
  const first = seen < 0 ? count - minBuckets : Math.max(0, Math.min(seen, count - minBuckets));
  const span = count - 1 - first;
  const x = (i) => ((i - first) / span) * width;
  const y = (share) => top + (1 - share) * (height - top - bottom);
  const minutes = Math.round((span * history.bucket_s) / 60);
  const nodes = [];
  const labels = [
    el("svg:line", { class: "axis", x1: 0, x2: width, y1: y(0), y2: y(0) }),
    el("svg:line", { class: "axis top", x1: 0, x2: width, y1: y(1), y2: y(1) }),
    el("svg:text", { x: 2, y: height - 3 }, minutes >= 1 ? `-${minutes} min` : `-${span * history.bucket_s} s`),
    el("svg:text", { x: width - 22, y: height - 3 }, "now"),
    el("svg:text", { x: 2, y: top + 9 }, "100%"),
  ];
  // stacked areas: at each step the emotions' shares fill the height (a step without faces is empty)
  const below = new Array(count).fill(0);
  for (const label of LABELS) {
    const upper = [], lower = [];
    let drawn = false;
    for (let i = first; i < count; i++) {
      const share = history.share[label][i] || 0;
      lower.push(`${x(i).toFixed(1)},${y(below[i]).toFixed(1)}`);
      below[i] += share;
      upper.push(`${x(i).toFixed(1)},${y(below[i]).toFixed(1)}`);
      drawn = drawn || share > 0;
    }
    if (drawn) {
      nodes.push(el("svg:polygon", {
        points: [...upper, ...lower.reverse()].join(" "), fill: COLOURS[label], "fill-opacity": 0.85,
        "data-emotion": label,
      }));
    }
  }
  svg.replaceChildren(...nodes, ...labels); // axes and labels over the areas
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

refresh();
