// nfzoo's web export (nfzoo.export.web): sample an exported flow in the browser with onnxruntime-web (wasm).
// The prior graph turns noise (drawn here, see Rng) into latents, the decode graph latents into images in [0, 1].
// window.nfzoo is the page's API (the tests call it): ready, info(), sample(), sampleFromNoise(), interpolate().
import * as ort from './ort/ort.wasm.bundle.min.mjs';

ort.env.wasm.numThreads = 1;                          // a static server is not cross-origin isolated: one thread
// the site's own binary, never a CDN (the bundle holds the JS glue: a string prefix here would fetch that too)
ort.env.wasm.wasmPaths = { wasm: new URL('./ort/ort-wasm-simd-threaded.wasm', import.meta.url).href };

const $ = (id) => document.getElementById(id);
// a module with one SIMD instruction (wasm-feature-detect's test): whether this browser runs wasm SIMD
const SIMD_TEST = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0,
  65, 0, 253, 15, 253, 98, 11]);

// ------------------------------------------------------------------------------------------ noise
// The page's seeded generator: xoshiro128** seeded by splitmix32, uniforms of 24 bits, normals by Box-Muller.
// It is not numpy's (PCG64 + ziggurat): a seed gives other noise here than in nfzoo_onnx_runner.py.
export class Rng {
  constructor(seed) {
    let x = (Number(seed) >>> 0) ^ 0x9e3779b9;
    const next = () => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s = new Uint32Array([next(), next(), next(), next()]);
    this.spare = null;
  }

  u32() {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 11);
    return r;
  }

  uniform() { return (this.u32() >>> 8) / 16777216; }          // [0, 1), 24 bits

  normal() {
    if (this.spare !== null) { const v = this.spare; this.spare = null; return v; }
    const u = 1 - this.uniform(), v = this.uniform();                // u in (0, 1]
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  categorical(cdf) {
    const u = this.uniform() * cdf[cdf.length - 1];
    let k = 0;
    while (k < cdf.length - 1 && u >= cdf[k]) k++;
    return k;
  }
}

function rotl(x, k) { return ((x << k) | (x >>> (32 - k))) >>> 0; }

function dims(shape, n) { return shape.map((a) => (a === 'batch' ? n : Number(a))); }

// The prior's noise for n samples, in the manifest's order: {name: {data: Float32Array | BigInt64Array, shape}}
export function drawNoise(specs, n, seed) {
  const rng = new Rng(seed), out = {};
  for (const spec of specs) {
    const shape = dims(spec.shape, n), size = shape.reduce((a, b) => a * b, 1);
    if (spec.distribution === 'categorical') {
      let acc = 0;
      const cdf = spec.probs.map((p) => (acc += p));
      const data = new BigInt64Array(size);
      for (let i = 0; i < size; i++) data[i] = BigInt(rng.categorical(cdf));
      out[spec.name] = { data, shape };
    } else {
      const data = new Float32Array(size);
      for (let i = 0; i < size; i++) data[i] = spec.distribution === 'uniform' ? rng.uniform() : rng.normal();
      out[spec.name] = { data, shape };
    }
  }
  return out;
}

// ------------------------------------------------------------------------------------------ model
const model = { manifest: null, site: null, prior: null, decode: null };

function hex(buf) { return [...new Uint8Array(buf)].map((b) => b.toString(16).padStart(2, '0')).join(''); }

async function fetchChecked(url, sha256) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  const buf = await r.arrayBuffer();
  if (globalThis.crypto && crypto.subtle) {       // a secure context (https, localhost, 127.0.0.1)
    const got = hex(await crypto.subtle.digest('SHA-256', buf));
    if (got !== sha256) throw new Error(`${url} has sha256 ${got}, not the manifest's ${sha256}: not loaded`);
  }
  return new Uint8Array(buf);
}

async function load() {
  model.site = await (await fetch('site.json')).json();
  const dir = model.site.model_dir;
  model.manifest = await (await fetch(`${dir}/manifest.json`)).json();
  const g = model.manifest.graphs;
  for (const name of ['prior', 'decode']) {
    if (!g[name]) throw new Error(`this export has no ${name} graph`);
    const bytes = await fetchChecked(`${dir}/${g[name].file}`, g[name].sha256);
    model[name] = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  }
}

function tensor(a) {
  return new ort.Tensor(a.data instanceof BigInt64Array ? 'int64' : 'float32', a.data, a.shape);
}

function labelTensor(labels, n) {
  if (model.manifest.num_classes == null) return null;
  if (labels == null) throw new Error('this model is class-conditional: give labels');
  const y = Array.isArray(labels) ? labels : new Array(n).fill(labels);
  if (y.length !== n) throw new Error(`labels: ${y.length} for ${n} samples`);
  return new ort.Tensor('int64', BigInt64Array.from(y.map((v) => BigInt(v))), [n]);
}

// noise (drawNoise's form) -> {z, images} as ort tensors; the prior graph, then the decode graph
async function run(noise, temperature, labels) {
  const m = model.manifest, n = Object.values(noise)[0].shape[0];
  const t = temperature == null ? m.sampling.temperature : Number(temperature);
  const feeds = { temperature: new ort.Tensor('float32', new Float32Array([t]), []) };
  for (const [k, v] of Object.entries(noise)) feeds[k] = tensor(v);
  const y = labelTensor(labels, n);
  if (y) feeds.label = y;
  const priorFeeds = Object.fromEntries(model.prior.inputNames.map((k) => [k, feeds[k]]));
  const z = (await model.prior.run(priorFeeds))[model.prior.outputNames[0]];
  const decodeFeeds = { z };
  if (y && model.decode.inputNames.includes('label')) decodeFeeds.label = y;
  const images = (await model.decode.run(decodeFeeds))[model.decode.outputNames[0]];
  return { z, images };
}

// ------------------------------------------------------------------------------------------ drawing
function draw(canvas, images, perRow) {
  const [n, c, h, w] = images.dims, data = images.data;
  const rows = Math.ceil(n / perRow), scale = Math.min(4, Math.max(1, Math.floor(640 / (perRow * w))));
  const off = document.createElement('canvas');
  off.width = perRow * w; off.height = rows * h;
  const ctx = off.getContext('2d'), img = ctx.createImageData(off.width, off.height);
  for (let i = 0; i < n; i++) {
    const ox = (i % perRow) * w, oy = Math.floor(i / perRow) * h;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const p = ((oy + y) * off.width + ox + x) * 4;
        for (let k = 0; k < 3; k++) {
          const v = data[((i * c + (c === 1 ? 0 : k)) * h + y) * w + x];
          img.data[p + k] = Math.round(Math.min(1, Math.max(0, v)) * 255);
        }
        img.data[p + 3] = 255;
      }
    }
  }
  ctx.putImageData(img, 0, 0);
  canvas.width = off.width * scale; canvas.height = off.height * scale;
  const out = canvas.getContext('2d');
  out.imageSmoothingEnabled = false;
  out.drawImage(off, 0, 0, canvas.width, canvas.height);
}

// ------------------------------------------------------------------------------------------ the API
async function sample({ n = 64, seed = 0, temperature = null, label = null } = {}) {
  const t0 = performance.now();
  const out = await run(drawNoise(model.manifest.graphs.prior.noise, n, seed), temperature, label);
  return { ...out, ms: performance.now() - t0 };
}

// for the tests: noise as {name: {data: number[], shape}} (the runner's draw_noise) -> plain arrays
async function sampleFromNoise(noise, temperature = null, labels = null) {
  const typed = {};
  for (const [k, v] of Object.entries(noise)) {
    const spec = model.manifest.graphs.prior.inputs.find((i) => i.name === k);
    const data = spec && spec.dtype === 'int64' ? BigInt64Array.from(v.data.map((x) => BigInt(x)))
      : Float32Array.from(v.data);
    typed[k] = { data, shape: v.shape };
  }
  const t0 = performance.now();
  const { z, images } = await run(typed, temperature, labels);
  return { z: Array.from(z.data), images: Array.from(images.data), shape: images.dims,
    ms: performance.now() - t0 };
}

// seeds a and b, `steps` points between their noises: normal noise along cos/sin (keeps its variance), the
// rest (uniform, categorical) seed a's
async function interpolate({ a = 0, b = 1, steps = 10, temperature = null, label = null } = {}) {
  const specs = model.manifest.graphs.prior.noise, na = drawNoise(specs, 1, a), nb = drawNoise(specs, 1, b);
  const noise = {};
  for (const spec of specs) {
    const x = na[spec.name], y = nb[spec.name], size = x.data.length;
    const data = new x.data.constructor(size * steps);
    for (let s = 0; s < steps; s++) {
      const th = (s / (steps - 1)) * Math.PI / 2, ca = Math.cos(th), sb = Math.sin(th);
      for (let i = 0; i < size; i++) {
        data[s * size + i] = spec.distribution === 'normal' ? ca * x.data[i] + sb * y.data[i] : x.data[i];
      }
    }
    noise[spec.name] = { data, shape: [steps, ...x.shape.slice(1)] };
  }
  const t0 = performance.now();
  const out = await run(noise, temperature, label);
  return { ...out, ms: performance.now() - t0 };
}

function info() {
  return { ortWeb: ort.env.versions && ort.env.versions.web, simd: WebAssembly.validate(SIMD_TEST),
    threads: ort.env.wasm.numThreads, crossOriginIsolated: globalThis.crossOriginIsolated === true,
    userAgent: navigator.userAgent, model: model.manifest && model.manifest.model.name };
}

// ------------------------------------------------------------------------------------------ the page
function labelChoice() {
  if (model.manifest.num_classes == null) return { label: null, rows: Number($('rows').value) };
  const v = Number($('label').value);
  return v < 0 ? { label: 'rows', rows: model.manifest.num_classes } : { label: v, rows: Number($('rows').value) };
}

async function onSample() {
  const per = Math.max(1, Number($('count').value)), choice = labelChoice(), n = per * choice.rows;
  const label = choice.label === 'rows' ? Array.from({ length: n }, (_, i) => Math.floor(i / per)) : choice.label;
  const out = await sample({ n, seed: Number($('seed').value), temperature: Number($('temperature').value), label });
  draw($('grid'), out.images, per);
  $('time').textContent = `${n} samples in ${out.ms.toFixed(0)} ms`;
}

async function onInterpolate() {
  const choice = labelChoice(), steps = Math.max(2, Number($('steps').value));
  const label = choice.label === 'rows' ? 0 : choice.label;
  const out = await interpolate({ a: Number($('seed-a').value), b: Number($('seed-b').value), steps,
    temperature: Number($('temperature').value), label });
  draw($('interp'), out.images, steps);
  $('interp-time').textContent = `${steps} images in ${out.ms.toFixed(0)} ms`;
}

function guard(fn) {
  return async () => {
    try {
      $('status').className = '';
      await fn();
    } catch (e) {
      $('status').className = 'error';
      $('status').textContent = String(e);
    }
  };
}

const ready = (async () => {
  try {
    await load();
  } catch (e) {
    $('status').className = 'error';
    $('status').textContent = `could not load the model: ${e.message || e}`;
    throw e;
  }
  const m = model.manifest;
  $('title').textContent = m.model.name;
  document.title = `${m.model.name}: nfzoo in the browser`;
  $('temperature').value = m.sampling.temperature;
  if (m.num_classes != null) {
    $('label-box').hidden = false;
    const opts = ['<option value="-1">a row per class</option>'];
    for (let k = 0; k < m.num_classes; k++) opts.push(`<option value="${k}">${k}</option>`);
    $('label').innerHTML = opts.join('');
  }
  const i = info();
  $('about').textContent = `onnxruntime-web ${i.ortWeb} (wasm, ${i.threads} thread, SIMD ${i.simd ? 'on' : 'off'}); `
    + `${m.image_shape.join('x')} images; the noise is this page's own generator, not numpy's.`;
  $('sample').disabled = false; $('interpolate').disabled = false;
  $('sample').onclick = guard(onSample); $('interpolate').onclick = guard(onInterpolate);
  $('status').textContent = 'ready';
  await guard(onSample)();
  document.body.dataset.ready = 'true';
})();

window.nfzoo = { ready, info, sample, sampleFromNoise, interpolate, drawNoise, Rng };
