// nfzoo gallery: plain JS, no build step, no library. It calls the JSON API of `nfzoo serve` (relative
// URLs, so the page also works under a path prefix) and shows the images it returns.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
let zoo = [];          // GET api/models
let current = null;    // the chosen model (GET api/models/NAME)
let samplers = [];     // GET api/samplers

// ------------------------------------------------------------------------------------------ plumbing
async function api(path, init) {
  const resp = await fetch(path, init);
  let body;
  try { body = await resp.json(); } catch (e) { body = { error: `the server answered ${resp.status} ${resp.statusText}` }; }
  if (!resp.ok) throw new Error(body.error || `the server answered ${resp.status}`);
  return body;
}

function showError(message) {
  const el = $("#error");
  el.textContent = message;
  el.hidden = false;
}

function clearError() {
  const el = $("#error");
  el.textContent = "";
  el.hidden = true;
}

function status(text) { $("#status").textContent = text || ""; }

// The form's values without the empty ones (the server then uses its defaults) and without files not chosen.
function formData(form) {
  const fd = new FormData();
  for (const [key, value] of new FormData(form)) {
    if (value instanceof File) { if (value.name || value.size) fd.append(key, value); }
    else if (value !== "") fd.append(key, value);
  }
  fd.append("model", current.name);
  return fd;
}

function seconds(doc) {
  let text = `took ${doc.seconds.toFixed(2)} s`;
  if (doc.load_seconds) text += ` (the model loaded in ${doc.load_seconds.toFixed(1)} s first)`;
  return text;
}

// Show a PNG data URL scaled up by a whole factor, as big as fits `target` pixels across.
function showImage(img, src, target = 480) {
  img.onload = () => {
    const k = Math.max(1, Math.floor(target / img.naturalWidth));
    img.style.width = `${img.naturalWidth * k}px`;
    img.style.height = `${img.naturalHeight * k}px`;
  };
  img.src = src;
}

// Run a form's request: button disabled meanwhile, errors shown in the banner, `done` gets the JSON. Only the
// latest request of a form, for the model still chosen, is shown (an older answer that arrives late is dropped).
function onSubmit(form, path, done, prepare) {
  let latest = 0;
  let inflight = 0;
  const button = $("button[type=submit]", form);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!current) return;
    const ticket = ++latest;
    const model = current.name;
    clearError();
    inflight += 1;
    button.disabled = true;
    document.body.classList.add("busy");
    status(`${button.textContent.toLowerCase()}: working...`);
    try {
      const fd = formData(form);
      if (prepare) prepare(fd);
      const doc = await api(path, { method: "POST", body: fd });
      if (ticket === latest && current.name === model) done(doc, fd);
    } catch (err) {
      if (ticket === latest) showError(err.message);
    } finally {
      inflight -= 1;
      if (!inflight) {
        button.disabled = false;
        document.body.classList.remove("busy");
        status("");
      }
    }
  });
}

// --------------------------------------------------------------------------------------------- the zoo
function fmt(v, digits = 4) { return typeof v === "number" ? Number(v.toFixed(digits)).toString() : String(v); }

function headline(h) {
  const parts = [];
  if (h.test_bpd !== undefined) parts.push(`bpd ${fmt(h.test_bpd)}`);
  if (h.test_bpd_bound !== undefined) parts.push(`bpd <= ${fmt(h.test_bpd_bound, 3)}`);
  if (h.fid !== undefined) parts.push(`FID ${fmt(h.fid, 2)}`);
  if (h.recognisable !== undefined) parts.push(`recognisable ${(100 * h.recognisable).toFixed(1)}%`);
  return parts.join(" · ");
}

async function loadZoo() {
  const [models, smp] = await Promise.all([api("api/models"), api("api/samplers")]);
  zoo = models.models;
  samplers = smp.samplers;
  const list = $("#model-list");
  list.textContent = "";
  for (const m of zoo) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.model = m.name;
    b.setAttribute("aria-pressed", "false");
    b.disabled = !m.usable;
    const name = document.createElement("span");
    name.className = "model-name";
    name.textContent = m.name;
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = m.source;
    const meta = document.createElement("span");
    meta.className = "model-meta";
    meta.textContent = `${m.architecture || ""} · ${m.dataset || "?"}${m.num_classes ? ` · ${m.num_classes} classes` : ""}`;
    const metrics = document.createElement("span");
    metrics.className = "metrics";
    metrics.textContent = m.usable ? headline(m.headline) : m.source === "unpublished"
      ? "weights not published yet" : `weights not on this machine: nfzoo pull ${m.name}`;
    b.append(name, badge, meta, metrics);
    b.title = m.description || "";
    b.addEventListener("click", () => selectModel(m.name));
    li.append(b);
    list.append(li);
  }
  status(`${zoo.length} models`);
  // the model named in the address (#glow-mnist5k), else the first default model
  const wanted = decodeURIComponent(location.hash.slice(1));
  const first = zoo.find((m) => m.usable && m.name === wanted) || zoo.find((m) => m.usable && m.default) ||
    zoo.find((m) => m.usable);
  if (first) await selectModel(first.name);
}

function fillSelect(select, options) {
  select.textContent = "";
  for (const [value, text] of options) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    select.append(o);
  }
}

async function selectModel(name) {
  clearError();
  try {
    current = await api(`api/models/${encodeURIComponent(name)}`);
  } catch (err) { showError(err.message); return; }
  for (const b of $$("#model-list button")) b.setAttribute("aria-pressed", String(b.dataset.model === name));
  history.replaceState(null, "", `#${encodeURIComponent(current.name)}`);
  $("#workbench").hidden = false;
  $("#model-title").textContent = current.name;
  $("#model-desc").textContent = current.description || "";
  const s = current.default_sampling || {};
  const opts = s.options ? Object.entries(s.options).map(([k, v]) => `${k} ${v}`).join(", ") : "";
  const shape = current.image_shape ? current.image_shape.join("x") : "?";
  $("#model-facts").textContent = `${current.architecture} on ${current.dataset}, images ${shape} (C x H x W)` +
    (s.sampler ? ` · default: ${s.sampler}${opts ? ` (${opts})` : ""}, T = ${s.temperature ?? 1}` : "");
  $("#card-body").innerHTML = current.card_html || "<p>This model has no card.</p>";   // rendered with raw HTML off
  const link = $("#web-link");
  link.hidden = !current.web_site;
  if (current.web_site) link.setAttribute("href", current.web_site); else link.removeAttribute("href");
  $("#web-about").textContent = current.web_site
    ? "(its static page: onnxruntime-web samples it in this browser, without the server's models)"
    : `No browser page of this model here: nfzoo export ${current.name} --format web --out SITES/${current.name}, ` +
      "then nfzoo serve --web-sites SITES.";
  const k = current.num_classes;
  for (const el of $$(".conditional")) el.hidden = !k;
  const classes = k ? Array.from({ length: k }, (_, i) => [String(i), String(i)]) : [];
  fillSelect($("#sample-form select[name=label]"), [["", "every class in turn"], ...classes]);
  fillSelect($("#inpaint-form select[name=label]"), [["", "none"], ...classes]);
  fillSelect($("#sample-form select[name=sampler]"),
    [["", `model's default${s.sampler ? ` (${s.sampler})` : ""}`], ...samplers.map((x) => [x.name, x.name])]);
  for (const id of ["sample-out", "interpolate-out", "inpaint-out"]) $(`#${id}`).removeAttribute("src");
  for (const id of ["sample-info", "interpolate-info", "inpaint-info", "score-ref"]) $(`#${id}`).textContent = "";
  $("#score-table tbody").textContent = "";
  await Promise.all([preview($("#interpolate-form input[name=a_index]")),
    preview($("#interpolate-form input[name=b_index]")), loadInpaintImage()]);
  $("#sample-form").requestSubmit();          // a first grid at the form's settings: what the model draws
}

// ------------------------------------------------------------------------------ test images, previews
async function testImage(index) {
  return api(`api/models/${encodeURIComponent(current.name)}/test-image?index=${encodeURIComponent(index)}`);
}

async function preview(input) {
  const img = $(`#${input.dataset.preview}`);
  const file = input.type === "file" ? input.files[0] : null;
  try {
    if (file) { img.src = URL.createObjectURL(file); return; }
    if (input.type === "file") return;
    if (!current.dataset || input.value === "") { img.removeAttribute("src"); return; }
    const doc = await testImage(input.value);
    img.src = doc.image;
    img.title = `test image ${doc.index} (label ${doc.label}) of ${doc.count}`;
  } catch (err) { showError(err.message); }
}

// --------------------------------------------------------------------------------- inpainting canvas
const inpaint = { img: null, box: null, drag: null };

function imageSize() { return current && current.image_shape ? [current.image_shape[2], current.image_shape[1]] : [28, 28]; }

function drawInpaint() {
  const canvas = $("#inpaint-canvas");
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (inpaint.img) ctx.drawImage(inpaint.img, 0, 0, canvas.width, canvas.height);
  const box = inpaint.drag || parseBox($("#inpaint-form input[name=box]").value);
  if (!box) return;
  const [w, h] = imageSize();
  const sx = canvas.width / w, sy = canvas.height / h;
  ctx.strokeStyle = "#ff3b30";
  ctx.lineWidth = 2;
  ctx.strokeRect(box[0] * sx + 1, box[1] * sy + 1, (box[2] - box[0]) * sx - 2, (box[3] - box[1]) * sy - 2);
}

function parseBox(text) {
  const v = text.split(",").map((s) => Number(s.trim()));
  return v.length === 4 && v.every(Number.isInteger) ? v : null;
}

async function loadInpaintImage() {
  const form = $("#inpaint-form");
  const file = $("input[name=file]", form).files[0];
  const img = new Image();
  try {
    if (file) img.src = URL.createObjectURL(file);
    else if (current.dataset) img.src = (await testImage($("input[name=index]", form).value)).image;
    else { inpaint.img = null; drawInpaint(); return; }
  } catch (err) { showError(err.message); return; }
  img.onload = () => { inpaint.img = img; drawInpaint(); };
}

function pixelAt(event) {
  const canvas = $("#inpaint-canvas");
  const r = canvas.getBoundingClientRect();
  const [w, h] = imageSize();
  const x = Math.floor((event.clientX - r.left) / r.width * w);
  const y = Math.floor((event.clientY - r.top) / r.height * h);
  return [Math.min(w - 1, Math.max(0, x)), Math.min(h - 1, Math.max(0, y))];
}

function setupCanvas() {
  const canvas = $("#inpaint-canvas");
  let start = null;
  const boxOf = (a, b) => [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]) + 1, Math.max(a[1], b[1]) + 1];
  canvas.addEventListener("mousedown", (e) => { start = pixelAt(e); inpaint.drag = boxOf(start, start); drawInpaint(); });
  canvas.addEventListener("mousemove", (e) => { if (start) { inpaint.drag = boxOf(start, pixelAt(e)); drawInpaint(); } });
  window.addEventListener("mouseup", (e) => {
    if (!start) return;
    const box = boxOf(start, pixelAt(e));
    start = null;
    inpaint.drag = null;
    $("#inpaint-form input[name=box]").value = box.join(",");
    drawInpaint();
  });
  $("#inpaint-form input[name=box]").addEventListener("input", drawInpaint);
  $("#inpaint-form input[name=index]").addEventListener("change", loadInpaintImage);
  $("#inpaint-form input[name=file]").addEventListener("change", loadInpaintImage);
}

// ------------------------------------------------------------------------------------------ features
function setupForms() {
  onSubmit($("#sample-form"), "api/sample", (doc) => {
    showImage($("#sample-out"), doc.image);
    const opts = Object.entries(doc.options || {}).map(([k, v]) => `${k} ${v}`).join(", ");
    $("#sample-info").textContent = `${doc.n} samples, seed ${doc.seed}, ${doc.sampler}${opts ? ` (${opts})` : ""}, ` +
      `T = ${doc.temperature}; ${seconds(doc)}`;
  });

  // a chosen file wins over the test image index
  const pickOne = (fd, file, index) => { if (fd.has(file)) fd.delete(index); };
  onSubmit($("#interpolate-form"), "api/interpolate", (doc) => {
    showImage($("#interpolate-out"), doc.image, 640);
    $("#interpolate-info").textContent = `${doc.steps} images from A to B along the latent path; ${seconds(doc)}`;
  }, (fd) => { pickOne(fd, "a_file", "a_index"); pickOne(fd, "b_file", "b_index"); });

  onSubmit($("#inpaint-form"), "api/inpaint", (doc) => {
    $("#inpaint-out").src = doc.image;
    const opts = Object.entries(doc.options || {}).map(([k, v]) => `${k} ${v}`).join(", ");
    $("#inpaint-info").textContent = `${doc.filled_pixels} pixels filled in box ${doc.box.join(",")} (${opts}); ${seconds(doc)}`;
  }, (fd) => pickOne(fd, "file", "index"));

  const scoreForm = $("#score-form");
  onSubmit(scoreForm, "api/score", (doc) => showScores(doc));

  for (const input of $$("#interpolate-form input[data-preview]")) input.addEventListener("change", () => preview(input));
  for (const tab of $$(".tabs button")) {
    tab.addEventListener("click", () => {
      for (const t of $$(".tabs button")) t.setAttribute("aria-selected", String(t === tab));
      for (const p of $$(".panel")) p.hidden = p.dataset.panel !== tab.dataset.tab;
      if (tab.dataset.tab === "inpaint") drawInpaint();
    });
  }
}

let polling = null;
function showScores(doc) {
  const body = $("#score-table tbody");
  body.textContent = "";
  for (const r of doc.records) {
    const tr = document.createElement("tr");
    tr.dataset.name = r.name;
    tr.dataset.bpd = String(r.bpd);
    const typ = r.typicality === undefined || r.typicality === null ? null : r.typicality;
    if (typ !== null) tr.dataset.typicality = String(typ);
    for (const text of [r.name, fmt(r.bpd), typ === null ? "..." : fmt(typ)]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    body.append(tr);
  }
  const ref = doc.reference;
  const line = $("#score-ref");
  if (ref.state === "ready") {
    const r = ref.reference;
    line.textContent = `typicality reference: mean bpd ${fmt(r.mean_bpd)} of ${r.images} images of ${r.dataset}/${r.split}; ${seconds(doc)}`;
    line.dataset.meanBpd = String(r.mean_bpd);
  } else if (ref.state === "failed") {
    line.textContent = `no typicality: ${ref.error}`;
  } else {
    line.textContent = "typicality: computing the reference (the mean bpd of the training split, once per model)...";
    const name = current.name;
    clearTimeout(polling);
    const poll = async () => {
      if (!current || current.name !== name) return;
      try {
        const st = await api(`api/models/${encodeURIComponent(name)}/reference`);
        if (st.state === "computing") { polling = setTimeout(poll, 1500); return; }
        if (st.state === "failed") { line.textContent = `no typicality: ${st.error}`; return; }
        $("#score-form").requestSubmit();            // the reference is there: score again, with typicality
      } catch (err) { showError(err.message); }
    };
    polling = setTimeout(poll, 1000);
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  setupForms();
  setupCanvas();
  try { await loadZoo(); } catch (err) { showError(err.message); }
  document.body.dataset.ready = "true";
});
