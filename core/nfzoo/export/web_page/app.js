// nfzoo's web export (nfzoo.export.web): sample an exported flow in the browser with onnxruntime-web (wasm).
// A flow: the prior graph turns noise (drawn here, see Rng) into latents, the decode graph latents into images in
// [0, 1]; a diffusion model: DDIM over the U-Net graph (as the numpy runner's ddim()), then the decode graph.
// window.nfzoo is the page's API (the tests call it): ready, info(), sample(), sampleData(), sampleFromNoise(),
// decodeLatents(), parseNpy(), interpolate().
import * as ort from './ort/ort.wasm.bundle.min.mjs';

// Threads need SharedArrayBuffer, which a browser gives only a cross-origin isolated page (served with
// Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp): then one per core
// (navigator.hardwareConcurrency; ?threads=N in the address asks for fewer), else one.
export function chooseThreads(isolated, cores, asked) {
  if (!isolated) return 1;
  const most = Math.max(1, Math.floor(Number(cores) || 1));
  const n = Math.floor(Number(asked));
  return asked != null && Number.isFinite(n) && n >= 1 ? Math.min(n, most) : most;
}
ort.env.wasm.numThreads = chooseThreads(globalThis.crossOriginIsolated === true, navigator.hardwareConcurrency,
  new URLSearchParams(location.search).get('threads'));
// the site's own binary, never a CDN (the bundle holds the JS glue: a string prefix here would fetch that too)
ort.env.wasm.wasmPaths = { wasm: new URL('./ort/ort-wasm-simd-threaded.wasm', import.meta.url).href };

const $ = (id) => document.getElementById(id);
// a module with one SIMD instruction (wasm-feature-detect's test): whether this browser runs wasm SIMD
const SIMD_TEST = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 10, 1, 8, 0,
  65, 0, 253, 15, 253, 98, 11]);

// ------------------------------------------------------------------------------------------ noise
// The page's seeded generator is the numpy runner's PortableRng (nfzoo_onnx_noise.py), bit for bit, so a seed
// gives the same noise, hence the same images (within 1e-4), here and in the runner. Stream "nfzoo-counter32" v1:
// for a seed s in [0, 2^53), key0 = mix32((s mod 2^32) ^ 0x9E3779B9), key1 = mix32(floor(s / 2^32) ^ 0x85EBCA6B);
// word k = mix32(mix32(k + key0) ^ key1) (mod 2^32; mix32 is lowbias32); a uniform takes two words a, b:
// ((a >>> 5) * 2^26 + (b >>> 6)) / 2^53; normals come in pairs by Box-Muller (r = sqrt(-2 ln(1 - u1)),
// r cos(2 pi u2), then r sin(2 pi u2); an odd count drops the last sine); a float32 uniform is (a >>> 8) / 2^24
// of a uniform's two words; a categorical takes one uniform against the float64 cumulative sums of its probabilities.
export const MAX_SEED = 2 ** 53 - 1;

export function mix32(x) {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

export class Rng {
  constructor(seed = 0) {
    const s = Number(seed);
    if (!Number.isInteger(s) || s < 0 || s > MAX_SEED) throw new Error(`seed must be an integer in [0, 2^53 - 1], got ${seed}`);
    this.key0 = mix32(((s % 4294967296) ^ 0x9e3779b9) >>> 0);
    this.key1 = mix32((Math.floor(s / 4294967296) ^ 0x85ebca6b) >>> 0);
    this.position = 0;
  }

  u32() {
    if (this.position >= 4294967296) throw new Error('a stream holds 2^32 words: draw less per seed');
    const k = this.position++;
    return mix32((mix32(((k >>> 0) + this.key0) >>> 0) ^ this.key1) >>> 0);
  }

  uniform() { const a = this.u32(), b = this.u32(); return ((a >>> 5) * 67108864 + (b >>> 6)) / 9007199254740992; }

  uniform32() { const a = this.u32(); this.u32(); return (a >>> 8) / 16777216; }

  // `count` standard normals into `out` (a Float32Array) from `offset`
  normals(out, offset, count) {
    for (let i = 0; i < count; i += 2) {
      const u1 = this.uniform(), u2 = this.uniform();
      const r = Math.sqrt(-2 * Math.log(1 - u1)), th = 2 * Math.PI * u2;
      out[offset + i] = r * Math.cos(th);
      if (i + 1 < count) out[offset + i + 1] = r * Math.sin(th);
    }
    return out;
  }

  categorical(cdf) {
    const u = this.uniform() * cdf[cdf.length - 1];
    let k = 0;
    while (k < cdf.length - 1 && cdf[k] <= u) k++;
    return k;
  }
}

function dims(shape, n) { return shape.map((a) => (a === 'batch' ? n : Number(a))); }

// The prior's noise for n samples, in the manifest's order, one stream (the runner's draw_noise):
// {name: {data: Float32Array | BigInt64Array, shape}}
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
    } else if (spec.distribution === 'uniform') {
      const data = new Float32Array(size);
      for (let i = 0; i < size; i++) data[i] = rng.uniform32();
      out[spec.name] = { data, shape };
    } else {
      out[spec.name] = { data: rng.normals(new Float32Array(size), 0, size), shape };
    }
  }
  return out;
}

// DDIM's noise for n samples (the runner's draw_ddim_noise): the start, then one draw per step when eta > 0
export function drawDdimNoise(latentShape, n, seed, count) {
  const rng = new Rng(seed), size = n * latentShape.reduce((a, b) => a * b, 1), out = [];
  for (let j = 0; j < count; j++) out.push({ data: rng.normals(new Float32Array(size), 0, size), shape: [n, ...latentShape] });
  return out;
}

// ------------------------------------------------------------------------------------------ model
const model = { manifest: null, site: null, prior: null, unet: null, decode: null, diffusion: false };

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
  model.diffusion = model.manifest.sampling.kind === 'diffusion';
  const g = model.manifest.graphs;
  for (const name of model.diffusion ? ['unet', 'decode'] : ['prior', 'decode']) {
    if (!g[name]) throw new Error(`this export has no ${name} graph`);
    const bytes = await fetchChecked(`${dir}/${g[name].file}`, g[name].sha256);
    model[name] = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'] });
  }
}

function tensor(a) {
  return new ort.Tensor(a.data instanceof BigInt64Array ? 'int64' : 'float32', a.data, a.shape);
}

// labels: null (unconditional), one class for every sample, or one per sample
function labelTensor(labels, n) {
  if (model.manifest.num_classes == null) {
    if (labels != null) throw new Error('this model is unconditional: no labels');
    return null;
  }
  if (labels == null) throw new Error('this model is class-conditional: give labels');
  const y = Array.isArray(labels) ? labels : new Array(n).fill(labels);
  if (y.length !== n) throw new Error(`labels: ${y.length} for ${n} samples`);
  for (const v of y) {
    if (!Number.isInteger(Number(v)) || v < 0 || v >= model.manifest.num_classes) {
      throw new Error(`a label must be an integer in [0, ${model.manifest.num_classes - 1}], got ${v}`);
    }
  }
  return new ort.Tensor('int64', BigInt64Array.from(y.map((v) => BigInt(v))), [n]);
}

function temperatureOf(temperature) {
  const t = temperature == null ? model.manifest.sampling.temperature : Number(temperature);
  if (!Number.isFinite(t) || t < 0) throw new Error(`temperature must be a finite number >= 0, got ${temperature}`);
  if (model.diffusion && t !== 1) throw new Error('a diffusion model samples at temperature 1 only');
  return t;
}

// latents (an ort tensor) [+ labels] -> images (an ort tensor), the decode graph
async function decodeTensor(z, y) {
  const feeds = { z };
  if (y && model.decode.inputNames.includes('label')) feeds.label = y;
  return (await model.decode.run(feeds))[model.decode.outputNames[0]];
}

// noise (drawNoise's form) -> {z, images} as ort tensors; the prior graph, then the decode graph
async function runPrior(noise, temperature, labels) {
  const n = Object.values(noise)[0].shape[0];
  const feeds = { temperature: new ort.Tensor('float32', new Float32Array([temperatureOf(temperature)]), []) };
  for (const [k, v] of Object.entries(noise)) feeds[k] = tensor(v);
  const y = labelTensor(labels, n);
  if (y) feeds.label = y;
  const priorFeeds = Object.fromEntries(model.prior.inputNames.map((k) => [k, feeds[k]]));
  const z = (await model.prior.run(priorFeeds))[model.prior.outputNames[0]];
  return { z, images: await decodeTensor(z, y) };
}

// ------------------------------------------------------------------------------------------ DDIM
// numpy's np.round (half to even) of a non-negative number
function rint(x) {
  const r = Math.round(x);
  return (r - x === 0.5 && r % 2 !== 0) ? r - 1 : r;
}

// DDIM's timesteps, "trailing": np.round(np.arange(T, 0, -T / steps)) - 1 (numpy's arange fills start + i * delta,
// delta = (start + step) - start)
export function ddimTimesteps(total, steps) {
  if (!Number.isInteger(steps) || steps < 1 || steps > total) {
    throw new Error(`steps must be an integer from 1 to ${total}, got ${steps}`);
  }
  const step = -total / steps, len = Math.ceil((0 - total) / step), delta = (total + step) - total;
  const out = [];
  for (let i = 0; i < len; i++) out.push(rint(i === 0 ? total : i === 1 ? total + step : total + i * delta) - 1);
  return out;
}

function ddimSettings(steps, eta) {
  const d = model.manifest.sampling.ddim;
  if (d.timestep_spacing !== 'trailing') throw new Error(`the page spaces DDIM's steps 'trailing' only, not ${d.timestep_spacing}`);
  if (d.prediction_type !== 'epsilon') throw new Error(`the page's DDIM takes noise predictions only, not ${d.prediction_type}`);
  const e = eta == null ? d.eta : Number(eta);
  if (!(e >= 0 && e <= 1)) throw new Error(`eta must be in [0, 1], got ${eta}`);
  const ts = ddimTimesteps(d.num_train_timesteps, steps == null ? d.steps : Number(steps));
  return { d, eta: e, ts, draws: 1 + (e > 0 ? ts.length : 0) };
}

// The reverse diffusion from noise[0] to z0 by DDIM, as the runner's ddim() computes it in float32 (every
// operation rounded to float32 with Math.fround); noise[1 + j] is step j's noise when eta > 0. Returns a tensor.
async function ddim(noise, steps = null, eta = null) {
  const f = Math.fround, settings = ddimSettings(steps, eta), { d, ts } = settings, e = f(settings.eta);
  if (noise.length < 1 + (e > 0 ? ts.length : 0)) throw new Error(`DDIM with eta > 0 over ${ts.length} steps needs ${1 + ts.length} noise arrays`);
  const ac = Float32Array.from(d.alphas_cumprod), final = f(d.final_alpha_cumprod);
  const clip = d.clip_sample_range == null ? null : f(d.clip_sample_range);
  const shape = noise[0].shape, n = shape[0], size = noise[0].data.length;
  const sigma = f(d.init_noise_sigma), z = new Float32Array(size);
  for (let i = 0; i < size; i++) z[i] = noise[0].data[i] * sigma;
  const ratio = Math.floor(d.num_train_timesteps / ts.length);
  for (let j = 0; j < ts.length; j++) {
    const t = ts[j], tt = new ort.Tensor('int64', new BigInt64Array(n).fill(BigInt(t)), [n]);
    const out = await model.unet.run({ z_t: new ort.Tensor('float32', z, shape), t: tt });
    const eps = Float32Array.from(out[model.unet.outputNames[0]].data);
    const prev = t - ratio, aT = ac[t], aPrev = prev >= 0 ? ac[prev] : final, bT = f(1 - aT);
    const sqB = f(Math.sqrt(bT)), sqA = f(Math.sqrt(aT));
    const variance = f(f(f(1 - aPrev) / bT) * f(1 - f(aT / aPrev)));
    const std = f(e * f(Math.sqrt(variance)));
    const sqPrev = f(Math.sqrt(aPrev)), dir = f(Math.sqrt(f(f(1 - aPrev) - f(std * std))));
    const step = e > 0 ? noise[1 + j].data : null;
    for (let i = 0; i < size; i++) {
      let x0 = f(f(z[i] - f(sqB * eps[i])) / sqA);
      if (clip !== null) x0 = Math.min(Math.max(x0, -clip), clip);
      const ep = d.use_clipped_model_output ? f(f(z[i] - f(sqA * x0)) / sqB) : eps[i];
      let v = f(f(sqPrev * x0) + f(dir * ep));
      if (step) v = f(v + f(std * step[i]));
      z[i] = v;
    }
  }
  return new ort.Tensor('float32', z, shape);
}

async function runDiffusion(noise, labels, steps = null, eta = null) {
  const z = await ddim(noise, steps, eta);
  return { z, images: await decodeTensor(z, labelTensor(labels, z.dims[0])) };
}

// ------------------------------------------------------------------------------------------ latents files
// A .npy file (numpy's format, versions 1 to 3; little-endian float32 or float64, C order) -> {data, shape}
export function parseNpy(buffer) {
  const b = new Uint8Array(buffer), magic = [0x93, 78, 85, 77, 80, 89];
  if (b.length < 10 || magic.some((v, i) => b[i] !== v)) throw new Error('not a .npy file (no \\x93NUMPY magic)');
  const major = b[6], view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (major < 1 || major > 3) throw new Error(`.npy version ${major} is not supported`);
  const len = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true), start = major === 1 ? 10 : 12;
  if (start + len > b.length) throw new Error('a truncated .npy file');
  const header = new TextDecoder().decode(b.subarray(start, start + len));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header), fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeText) throw new Error(`a .npy header without descr, fortran_order or shape: ${header}`);
  if (fortran[1] === 'True') throw new Error('a Fortran-ordered .npy file: save it in C order');
  if (descr[1] !== '<f4' && descr[1] !== '<f8') throw new Error(`latents must be float32 (or float64), got ${descr[1]}`);
  const shape = shapeText[1].split(',').map((x) => x.trim()).filter((x) => x !== '').map(Number);
  const size = shape.reduce((x, y) => x * y, 1), width = descr[1] === '<f4' ? 4 : 8, offset = start + len;
  if (b.length - offset !== size * width) throw new Error(`the .npy file holds ${b.length - offset} bytes of data, not ${size * width} for shape (${shape})`);
  const copy = b.slice(offset).buffer;             // aligned
  const data = width === 4 ? new Float32Array(copy) : Float32Array.from(new Float64Array(copy));
  return { data, shape };
}

// latents {data, shape} (n, *latent_shape) or latent_shape for one -> checked {data: Float32Array, shape}
function checkLatents(z) {
  const ls = model.manifest.latent_shape.map(Number);
  let shape = z.shape.map(Number);
  if (shape.length === ls.length && shape.every((v, i) => v === ls[i])) shape = [1, ...shape];
  if (shape.length !== ls.length + 1 || shape[0] < 1 || !ls.every((v, i) => v === shape[i + 1])) {
    throw new Error(`latents must have shape (n, ${ls.join(', ')}), got (${z.shape.join(', ')})`);
  }
  const data = Float32Array.from(z.data);
  if (data.length !== shape.reduce((x, y) => x * y, 1)) throw new Error('latents: the data does not fill the shape');
  if (!data.every(Number.isFinite)) throw new Error('latents are not all finite');
  if (shape[0] > 4096) throw new Error(`${shape[0]} latents: at most 4096 at once here`);
  return { data, shape };
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
function plain(out) {
  return { z: Array.from(out.z.data), images: Array.from(out.images.data), shape: out.images.dims, ms: out.ms };
}

// n samples for a seed: the noise from Rng(seed), as the runner's sample(n, seed) draws it -> {z, images, ms}
async function sample({ n = 64, seed = 0, temperature = null, label = null, steps = null, eta = null } = {}) {
  if (!Number.isInteger(Number(n)) || n < 1 || n > 4096) throw new Error(`n must be an integer from 1 to 4096, got ${n}`);
  const t0 = performance.now();
  let out;
  if (model.diffusion) {
    temperatureOf(temperature);
    labelTensor(label, n);
    const { draws } = ddimSettings(steps, eta);
    out = await runDiffusion(drawDdimNoise(model.manifest.latent_shape.map(Number), n, seed, draws), label, steps, eta);
  } else {
    out = await runPrior(drawNoise(model.manifest.graphs.prior.noise, n, seed), temperature, label);
  }
  return { ...out, ms: performance.now() - t0 };
}

// sample(), as plain arrays (what a test can read back)
async function sampleData(options = {}) { return plain(await sample(options)); }

// for the tests: noise as {name: {data: number[], shape}} (the runner's draw_noise), or for a diffusion model a
// list [{data, shape}, ...] (its draw_ddim_noise) -> plain arrays
async function sampleFromNoise(noise, temperature = null, labels = null) {
  const t0 = performance.now();
  let out;
  if (model.diffusion) {
    temperatureOf(temperature);
    out = await runDiffusion(noise.map((v) => ({ data: Float32Array.from(v.data), shape: v.shape })), labels);
  } else {
    const typed = {};
    for (const [k, v] of Object.entries(noise)) {
      const spec = model.manifest.graphs.prior.inputs.find((i) => i.name === k);
      const data = spec && spec.dtype === 'int64' ? BigInt64Array.from(v.data.map((x) => BigInt(x)))
        : Float32Array.from(v.data);
      typed[k] = { data, shape: v.shape };
    }
    out = await runPrior(typed, temperature, labels);
  }
  return plain({ ...out, ms: performance.now() - t0 });
}

// latents (an ArrayBuffer of a .npy file, as the runner's --save-latents writes it, or {data, shape}) [+ labels]
// -> the decoded images, plain arrays
async function decodeLatents(latents, labels = null) {
  const z = checkLatents(latents instanceof ArrayBuffer ? parseNpy(latents) : latents);
  const t0 = performance.now(), zt = new ort.Tensor('float32', z.data, z.shape);
  const images = await decodeTensor(zt, labelTensor(labels, z.shape[0]));
  return { z: zt, images, ms: performance.now() - t0 };
}

// seeds a and b, `steps` points between their noises: normal noise along cos/sin (keeps its variance), the
// rest (uniform, categorical) seed a's
function blend(x, y, steps, normal) {
  const size = x.data.length, data = new x.data.constructor(size * steps);
  for (let s = 0; s < steps; s++) {
    const th = (s / (steps - 1)) * Math.PI / 2, ca = Math.cos(th), sb = Math.sin(th);
    for (let i = 0; i < size; i++) data[s * size + i] = normal ? ca * x.data[i] + sb * y.data[i] : x.data[i];
  }
  return { data, shape: [steps, ...x.shape.slice(1)] };
}

async function interpolate({ a = 0, b = 1, steps = 10, temperature = null, label = null } = {}) {
  const t0 = performance.now();
  let out;
  if (model.diffusion) {
    const ls = model.manifest.latent_shape.map(Number), { draws } = ddimSettings(null, null);
    const na = drawDdimNoise(ls, 1, a, draws), nb = drawDdimNoise(ls, 1, b, draws);
    out = await runDiffusion(na.map((x, j) => blend(x, nb[j], steps, true)), label);
  } else {
    const specs = model.manifest.graphs.prior.noise, na = drawNoise(specs, 1, a), nb = drawNoise(specs, 1, b);
    const noise = {};
    for (const spec of specs) noise[spec.name] = blend(na[spec.name], nb[spec.name], steps, spec.distribution === 'normal');
    out = await runPrior(noise, temperature, label);
  }
  return { ...out, ms: performance.now() - t0 };
}

function info() {
  return { ortWeb: ort.env.versions && ort.env.versions.web, simd: WebAssembly.validate(SIMD_TEST),
    threads: ort.env.wasm.numThreads, crossOriginIsolated: globalThis.crossOriginIsolated === true,
    hardwareConcurrency: navigator.hardwareConcurrency, userAgent: navigator.userAgent,
    model: model.manifest && model.manifest.model.name, kind: model.manifest && model.manifest.sampling.kind,
    noise: 'nfzoo-counter32 v1 (the numpy runner\'s PortableRng)' };
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
  window.nfzoo.last = out;
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

// a latents file: a row per class splits its n latents into num_classes rows (n a multiple of it), class by class
async function onLatents() {
  const file = $('latents-file').files[0];
  if (!file) return;
  $('latents-time').textContent = '';
  const z = checkLatents(parseNpy(await file.arrayBuffer())), n = z.shape[0], choice = labelChoice();
  let label = choice.label, per = Math.min(n, Math.max(1, Number($('count').value)));
  if (label === 'rows') {
    const k = model.manifest.num_classes;
    if (n % k) throw new Error(`a row per class needs a multiple of ${k} latents, the file has ${n}`);
    per = n / k;
    label = Array.from({ length: n }, (_, i) => Math.floor(i / per));
  }
  const out = await decodeLatents(z, label);
  window.nfzoo.last = out;
  $('latents-grid').hidden = false;
  draw($('latents-grid'), out.images, per);
  $('latents-time').textContent = `${n} latents from ${file.name} decoded in ${out.ms.toFixed(0)} ms`;
}

function guard(fn) {
  return async () => {
    try {
      $('status').className = '';
      $('status').textContent = 'ready';
      await fn();
    } catch (e) {
      $('status').className = 'error';
      $('status').textContent = String(e.message || e);
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
  if (model.diffusion) {                 // DDIM: 20 U-Net steps a sample; a smaller first grid, no temperature
    $('temperature').disabled = true;
    $('rows').value = 2;
  }
  if (m.num_classes != null) {
    $('label-box').hidden = false;
    const opts = ['<option value="-1">a row per class</option>'];
    for (let k = 0; k < m.num_classes; k++) opts.push(`<option value="${k}">${k}</option>`);
    $('label').innerHTML = opts.join('');
  }
  const i = info(), d = model.diffusion ? m.sampling.ddim : null;
  $('threads').textContent = `${i.threads} thread${i.threads === 1 ? '' : 's'}`;
  $('about').textContent = `onnxruntime-web ${i.ortWeb} (wasm, ${i.threads} thread${i.threads === 1 ? '' : 's'}`
    + `${i.crossOriginIsolated ? ', cross-origin isolated' : ', not cross-origin isolated: one thread'}, SIMD ${i.simd ? 'on' : 'off'}); `
    + `${m.image_shape.join('x')} images${d ? `; DDIM, ${d.steps} steps, eta ${d.eta}` : ''}; the noise is nfzoo's `
    + 'portable generator, the same as the numpy runner\'s: a seed gives the same images there.';
  for (const id of ['sample', 'interpolate', 'latents-file']) $(id).disabled = false;
  $('sample').onclick = guard(onSample); $('interpolate').onclick = guard(onInterpolate);
  $('latents-file').onchange = guard(onLatents);
  $('status').textContent = 'ready';
  await guard(onSample)();
  document.body.dataset.ready = 'true';
})();

window.nfzoo = { ready, info, sample, sampleData, sampleFromNoise, decodeLatents, parseNpy, interpolate, drawNoise,
  drawDdimNoise, ddimTimesteps, chooseThreads, Rng, last: null };
