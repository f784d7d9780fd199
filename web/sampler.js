// The sampling loop of denoiser/sampler.py, in JavaScript, around an exported ONNX network.
//
// The network (model.onnx) maps (noisy images, noise level, condition) to its guess of the clean
// image, x0_hat. Everything else is arithmetic done here, one step per network call:
//   guidance      x0_hat = g * conditional + (1 - g) * unconditional   (one call on a stacked batch), at the
//                 noise levels inside sampling.guidance_interval; elsewhere the conditional prediction alone
//   thresholding  per image, limit l = max(percentile of |x0_hat|, 1); x0_hat = clip(x0_hat, -l, l) / l
//   ddim          x_next = (s_next / s) * x + (1 - s_next / s) * x0_hat
//   dpmpp_2m      the same update with x0_hat extrapolated in lambda = log((1 - s) / s) from the
//                 previous step's prediction (second order; denoiser/solvers.py explains it)
//   deis          third-order Adams-Bashforth on eps_hat = (y - x0_hat) / sigma in sigma = s / (1 - s),
//                 y = x / (1 - s), over the last three steps (denoiser/solvers.py explains it)
// Images are flat Float32Arrays in NHWC order, values in [-1, 1]. `ort` is onnxruntime-web's global.
//
// A cascade (denoiser/cascade.py) is a base model and super-resolution stages, each exported in its own
// folder: `Cascade` samples the base from noise, then each stage with the previous stage's images as its
// low-resolution input, noised once at the stage's augmentation level: (1 - a) * low + a * noise.

// ----------------------------------------------------------------------------- noise level grids
// Both mirror denoiser/schedule.py, including its rounding of the levels to float32.

export function powerLevels(steps, maxLevel, power = 3) {
  const start = Math.pow(1 - maxLevel, power);
  const levels = [];
  for (let i = 0; i <= steps; i++) {
    const t = start + ((1 - start) * i) / steps;
    levels.push(Math.fround(1 - Math.pow(t, 1 / power)));
  }
  levels[steps] = 0;
  return levels;
}

export function logSnrLevels(steps, maxLevel, minLevel = 0.002) {
  minLevel = Math.min(minLevel, maxLevel / 10);
  const first = Math.log((1 - maxLevel) / maxLevel);
  const last = Math.log((1 - minLevel) / minLevel);
  const levels = [];
  for (let i = 0; i < steps; i++) {
    const lambda = steps === 1 ? first : first + ((last - first) * i) / (steps - 1);
    levels.push(Math.fround(1 / (1 + Math.exp(lambda))));
  }
  levels.push(0);
  return levels;
}

export function karrasLevels(steps, maxLevel, minLevel = 0.002, rho = 7) {
  minLevel = Math.min(minLevel, maxLevel / 10);
  const top = Math.pow(maxLevel / (1 - maxLevel), 1 / rho);
  const bottom = Math.pow(minLevel / (1 - minLevel), 1 / rho);
  const levels = [];
  for (let i = 0; i < steps; i++) {
    const sigma = Math.pow(steps === 1 ? top : top + ((bottom - top) * i) / (steps - 1), rho);
    levels.push(Math.fround(sigma / (1 + sigma)));
  }
  levels.push(0);
  return levels;
}

export const SOLVER_SPACING = { ddim: powerLevels, dpmpp_2m: logSnrLevels, deis: karrasLevels };

// ----------------------------------------------------------------------------- the update rules

function logSnr(level) {
  return Math.log1p(-level) - Math.log(level);
}

// Move x from `level` to `nextLevel` along the straight line through the prediction.
function ddimUpdate(x, x0, level, nextLevel) {
  const keep = nextLevel / level;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = keep * x[i] + (1 - keep) * x0[i];
  return out;
}

// The integrals over [start, end] of the Lagrange polynomials through `nodes`: three-point Gauss-Legendre, exact here.
function adamsBashforthWeights(nodes, start, end) {
  const middle = (start + end) / 2;
  const half = (end - start) / 2;
  const points = [-Math.sqrt(0.6), 0, Math.sqrt(0.6)].map((u) => middle + half * u);
  const pointWeights = [5 / 9, 8 / 9, 5 / 9].map((w) => half * w);
  return nodes.map((node, j) => {
    let total = 0;
    points.forEach((point, q) => {
      let basis = 1;
      nodes.forEach((other, m) => {
        if (m !== j) basis *= (point - other) / (node - other);
      });
      total += pointWeights[q] * basis;
    });
    return total;
  });
}

// deis: y = x / (1 - s) moves by the integral of eps_hat over [sigma, sigma_next], eps_hat being the
// polynomial through the last (up to three) consecutive steps' values.
function makeDeisSolver(levels) {
  const sigmas = levels.map((level) => level / (1 - level));
  let history = []; // [index, eps_hat] of the last steps, oldest first
  return function step(index, x, x0) {
    const y = new Float64Array(x.length);
    const epsHat = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      y[i] = x[i] / (1 - levels[index]);
      epsHat[i] = (y[i] - x0[i]) / sigmas[index];
    }
    history = history.filter(([i]) => i > index - 3 && i < index);
    if (history.length && history[history.length - 1][0] !== index - 1) history = [];
    history.push([index, epsHat]);
    const weights = adamsBashforthWeights(
      history.map(([i]) => sigmas[i]),
      sigmas[index],
      sigmas[index + 1],
    );
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      let yNext = y[i];
      history.forEach(([, values], j) => {
        yNext += weights[j] * values[i];
      });
      out[i] = (1 - levels[index + 1]) * yNext;
    }
    return out;
  };
}

export function makeSolver(name, levels) {
  if (!(name in SOLVER_SPACING)) throw new Error(`Unknown solver ${name}; choose ddim, dpmpp_2m or deis.`);
  if (name === "deis") return makeDeisSolver(levels);
  let previous = null; // the last step's prediction (dpmpp_2m only)
  return function step(index, x, x0) {
    let estimate = x0;
    const next = levels[index + 1];
    if (name === "dpmpp_2m" && previous !== null && next > 0) {
      const h = logSnr(next) - logSnr(levels[index]);
      const hPrevious = logSnr(levels[index]) - logSnr(levels[index - 1]);
      const reach = h / (2 * hPrevious);
      estimate = new Float32Array(x0.length);
      for (let i = 0; i < x0.length; i++) estimate[i] = x0[i] + (x0[i] - previous[i]) * reach;
    }
    previous = x0;
    return ddimUpdate(x, estimate, levels[index], next);
  };
}

// ----------------------------------------------------------------------------- guidance and thresholding

// The q-quantile of sorted values with linear interpolation (NumPy's and keras.ops.quantile's default).
function quantile(sorted, q) {
  const position = q * (sorted.length - 1);
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
}

export function dynamicThreshold(x0, count, percentile) {
  const out = new Float32Array(x0.length);
  const size = x0.length / count;
  for (let n = 0; n < count; n++) {
    const image = x0.subarray(n * size, (n + 1) * size);
    let limit = 1;
    if (percentile !== null) {
      const sorted = Float32Array.from(image, Math.abs).sort();
      limit = Math.max(quantile(sorted, percentile / 100), 1);
    }
    for (let i = 0; i < size; i++) out[n * size + i] = Math.min(Math.max(image[i], -limit), limit) / limit;
  }
  return out;
}

// ----------------------------------------------------------------------------- seeded noise

// Standard normal noise from a 32-bit seed (mulberry32 + Box-Muller). A seed gives the same image
// every time in the page; it is not NumPy's generator, so it differs from the Python sampler's seed.
export function gaussianNoise(length, seed) {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(length);
  for (let i = 0; i < length; i += 2) {
    const radius = Math.sqrt(-2 * Math.log(1 - uniform()));
    const angle = 2 * Math.PI * uniform();
    out[i] = radius * Math.cos(angle);
    if (i + 1 < length) out[i + 1] = radius * Math.sin(angle);
  }
  return out;
}

// Stage k of a cascade starts from the noise of seed + k, as in Python; its low-resolution input is
// noised from another stream of that seed (Python draws it from NumPy's generator at (seed + k, 1)).
export function augmentationSeed(seed) {
  return (Math.imul(seed >>> 0, 0x9e3779b1) ^ 0x85ebca6b) >>> 0;
}

// A super-resolution stage's low-res input, noised at its augmentation level (schedule.add_noise).
export function noiseLowResolution(images, noise, level) {
  const out = new Float32Array(images.length);
  for (let i = 0; i < images.length; i++) out[i] = (1 - level) * images[i] + level * noise[i];
  return out;
}

// ----------------------------------------------------------------------------- the exported model

export class Denoiser {
  // Load `denoiser.json`, the network and the prompt table from the export folder at `baseUrl`.
  static async load(baseUrl) {
    const base = new URL(baseUrl.endsWith("/") ? baseUrl : baseUrl + "/", window.location.href);
    const response = await fetch(new URL("denoiser.json", base));
    if (!response.ok) {
      throw new Error(`No denoiser.json at ${base}: export a model there with ` +
        "`denoiser export --checkpoint RUN --format onnx --out DIR`.");
    }
    const info = await response.json();
    if (info.stages) throw new Error(`${base} holds a cascade: load it with loadModel.`);
    const session = await ort.InferenceSession.create(new URL(info.model, base).href, {
      executionProviders: ["wasm"],
    });
    let table = null;
    if (info.condition.table) {
      const bytes = await (await fetch(new URL(info.condition.table, base))).arrayBuffer();
      table = new Float32Array(bytes);
    }
    return new Denoiser(info, session, table);
  }

  constructor(info, session, table) {
    this.info = info;
    this.session = session;
    this.table = table;
    this.imageLength = info.image_size * info.image_size * info.channels;
  }

  // The choices a user can condition on: index 0 is "no condition", then classes or prompts.
  get choices() {
    const condition = this.info.condition;
    if (condition.kind === "none") return [];
    const named = condition.kind === "class" ? condition.class_names : condition.prompts;
    return ["(no condition)", ...named];
  }

  // The condition input for a list of choice indices (0 = the empty condition).
  conditionTensor(choices) {
    const condition = this.info.condition;
    if (condition.kind === "class") return new ort.Tensor("int32", Int32Array.from(choices), [choices.length, 1]);
    const rowShape = condition.table_shape.slice(1);
    const rowLength = rowShape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(choices.length * rowLength); // zeros: the empty prompt
    choices.forEach((choice, n) => {
      if (choice > 0) data.set(this.table.subarray((choice - 1) * rowLength, choice * rowLength), n * rowLength);
    });
    return new ort.Tensor("float32", data, [choices.length, ...rowShape]);
  }

  // A super-resolution stage's extra inputs: its noised low-res images and their augmentation level.
  lowResolutionFeeds(lowResolution, count) {
    const size = this.info.super_resolution.low_resolution;
    const level = this.info.super_resolution.augmentation_level;
    return {
      low_resolution_images: new ort.Tensor("float32", lowResolution, [count, size, size, this.info.channels]),
      augmentation_level: new ort.Tensor("float32", new Float32Array(count).fill(level), [count, 1]),
    };
  }

  // One network call: x0_hat for `count` images at `level` (`lowResolution`: a super-resolution stage's input).
  async predict(x, count, level, choices, lowResolution = null) {
    const size = this.info.image_size;
    const [imageName, levelName] = this.info.inputs;
    const feeds = {
      [imageName]: new ort.Tensor("float32", x, [count, size, size, this.info.channels]),
      [levelName]: new ort.Tensor("float32", new Float32Array(count).fill(level), [count, 1]),
    };
    if (this.info.inputs.includes("condition")) feeds.condition = this.conditionTensor(choices);
    if (lowResolution) Object.assign(feeds, this.lowResolutionFeeds(lowResolution, count));
    const outputs = await this.session.run(feeds);
    return outputs[this.info.output].data;
  }

  // The guided, thresholded prediction for images x at one level (denoiser.Sampler.denoise).
  async denoise(x, count, level, choices, guidance, percentile, lowResolution = null) {
    if (this.info.condition.kind === "none" || guidance === 1) {
      return dynamicThreshold(await this.predict(x, count, level, choices, lowResolution), count, percentile);
    }
    const stacked = new Float32Array(2 * x.length);
    stacked.set(x);
    stacked.set(x, x.length);
    let lowStacked = null; // the conditional and unconditional halves upscale the same images
    if (lowResolution) {
      lowStacked = new Float32Array(2 * lowResolution.length);
      lowStacked.set(lowResolution);
      lowStacked.set(lowResolution, lowResolution.length);
    }
    const both = await this.predict(stacked, 2 * count, level, [...choices, ...choices.map(() => 0)], lowStacked);
    const guided = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) guided[i] = guidance * both[i] + (1 - guidance) * both[x.length + i];
    return dynamicThreshold(guided, count, percentile);
  }

  // Turn `noise` (count images) into images; `onStep(step, level, x0_hat)` is awaited after each step.
  // A super-resolution stage also takes `lowResolution`: its low-res images, noised already (see Cascade).
  async sample({ noise, choices, steps, guidance, solver = "ddim", onStep = null, lowResolution = null }) {
    const sampling = this.info.sampling;
    const count = noise.length / this.imageLength;
    if (Boolean(this.info.super_resolution) !== Boolean(lowResolution)) {
      throw new Error(this.info.super_resolution
        ? "This is a super-resolution stage: sample it in its cascade (denoiser export --upscale)."
        : "This is a base model: it takes no low-resolution images.");
    }
    choices = choices ?? new Array(count).fill(0);
    steps = steps ?? sampling.steps;
    guidance = guidance ?? sampling.guidance;
    const levels = SOLVER_SPACING[solver](steps, sampling.max_level);
    const step = makeSolver(solver, levels);
    let x = Float32Array.from(noise);
    const [low, high] = sampling.guidance_interval ?? [0, 1]; // exports made before the interval guide every step
    for (let i = 0; i < steps; i++) {
      const percentile = sampling.threshold_percentile;
      const guided = low <= levels[i] && levels[i] <= high ? guidance : 1;
      const x0 = await this.denoise(x, count, levels[i], choices, guided, percentile, lowResolution);
      x = step(i, x, x0);
      if (onStep) await onStep(i, levels[i], x0);
    }
    return { images: x.map((v) => Math.min(Math.max(v, -1), 1)), levels };
  }
}

// ----------------------------------------------------------------------------- a cascade of exported stages

// The stages of a cascade export (or one model, a cascade of one stage), sampled one after the other.
export class Cascade {
  static async load(baseUrl, info) {
    const stages = await Promise.all(info.stages.map((stage) => Denoiser.load(new URL(stage.folder, baseUrl).href)));
    return new Cascade(info, stages);
  }

  constructor(info, stages) {
    this.info = info; // image_size, channels and the shared condition
    this.stages = stages;
  }

  // The choices of the first conditioned stage (index 0: no condition), shared by every stage.
  get choices() {
    const conditioned = this.stages.find((stage) => stage.info.condition.kind !== "none");
    return conditioned ? conditioned.choices : [];
  }

  // The seeded noises of `count` images: each stage's starting noise and (for super-resolution) augmentation noise.
  seededNoises(seed, count) {
    const starts = this.stages.map((stage, k) => gaussianNoise(count * stage.imageLength, seed + k));
    const augmentations = this.stages.map((stage, k) =>
      k === 0 ? null : gaussianNoise(count * this.stages[k - 1].imageLength, augmentationSeed(seed + k)));
    return { starts, augmentations };
  }

  // Sample every stage from its starting noise, each super-resolution stage upscaling the previous images.
  // settings[k]: stage k's {steps, guidance}; `onStep(stage, step, level, x0_hat)` is awaited after each step.
  async sample({ starts, augmentations, choices, settings, solver = "ddim", onStep = null }) {
    const results = [];
    for (const [k, stage] of this.stages.entries()) {
      const previous = k === 0 ? null : results[k - 1].images;
      const level = stage.info.super_resolution?.augmentation_level;
      const result = await stage.sample({
        noise: starts[k],
        choices: stage.info.condition.kind === "none" ? null : choices,
        steps: settings[k].steps,
        guidance: settings[k].guidance,
        solver,
        onStep: onStep && ((step, stepLevel, x0) => onStep(k, step, stepLevel, x0)),
        lowResolution: previous && noiseLowResolution(previous, augmentations[k], level),
      });
      results.push(result);
    }
    return results;
  }
}

// The model at `baseUrl` as a cascade: the stages a cascade export lists, or the one exported model.
export async function loadModel(baseUrl) {
  const base = new URL(baseUrl.endsWith("/") ? baseUrl : baseUrl + "/", window.location.href);
  const response = await fetch(new URL("denoiser.json", base));
  const info = response.ok ? await response.json() : {};
  if (info.stages) return Cascade.load(base, info);
  if (info.super_resolution) {
    throw new Error(`${base} holds a super-resolution stage, which upscales another stage's images: open the ` +
      "folder of its cascade instead (denoiser export --checkpoint BASE --upscale SR --out DIR).");
  }
  const model = await Denoiser.load(base.href);
  return new Cascade(model.info, [model]);
}
