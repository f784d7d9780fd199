// The sampling loop of denoiser/sampler.py, in JavaScript, around an exported ONNX network.
//
// The network (model.onnx) maps (noisy images, noise level, condition) to its guess of the clean
// image, x0_hat. Everything else is arithmetic done here, one step per network call:
//   guidance      x0_hat = g * conditional + (1 - g) * unconditional   (one call on a stacked batch)
//   thresholding  per image, limit l = max(percentile of |x0_hat|, 1); x0_hat = clip(x0_hat, -l, l) / l
//   ddim          x_next = (s_next / s) * x + (1 - s_next / s) * x0_hat
//   dpmpp_2m      the same update with x0_hat extrapolated in lambda = log((1 - s) / s) from the
//                 previous step's prediction (second order; denoiser/solvers.py explains it)
// Images are flat Float32Arrays in NHWC order, values in [-1, 1]. `ort` is onnxruntime-web's global.

// ----------------------------------------------------------------------------- noise level grids
// Both mirror denoiser/schedule.py, including its rounding of the levels to float32.

export function powerLevels(steps, maxLevel = 0.95, power = 3) {
  const start = Math.pow(1 - maxLevel, power);
  const levels = [];
  for (let i = 0; i <= steps; i++) {
    const t = start + ((1 - start) * i) / steps;
    levels.push(Math.fround(1 - Math.pow(t, 1 / power)));
  }
  levels[steps] = 0;
  return levels;
}

export function logSnrLevels(steps, maxLevel = 0.95, minLevel = 0.002) {
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

export const SOLVER_SPACING = { ddim: powerLevels, dpmpp_2m: logSnrLevels };

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

export function makeSolver(name, levels) {
  if (!(name in SOLVER_SPACING)) throw new Error(`Unknown solver ${name}; choose ddim or dpmpp_2m.`);
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

  // One network call: x0_hat for `count` images at `level`.
  async predict(x, count, level, choices) {
    const size = this.info.image_size;
    const [imageName, levelName, conditionName] = this.info.inputs;
    const feeds = {
      [imageName]: new ort.Tensor("float32", x, [count, size, size, this.info.channels]),
      [levelName]: new ort.Tensor("float32", new Float32Array(count).fill(level), [count, 1]),
    };
    if (conditionName) feeds[conditionName] = this.conditionTensor(choices);
    const outputs = await this.session.run(feeds);
    return outputs[this.info.output].data;
  }

  // The guided, thresholded prediction for images x at one level (denoiser.Sampler.denoise).
  async denoise(x, count, level, choices, guidance, percentile) {
    if (this.info.condition.kind === "none" || guidance === 1) {
      return dynamicThreshold(await this.predict(x, count, level, choices), count, percentile);
    }
    const stacked = new Float32Array(2 * x.length);
    stacked.set(x);
    stacked.set(x, x.length);
    const both = await this.predict(stacked, 2 * count, level, [...choices, ...choices.map(() => 0)]);
    const guided = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) guided[i] = guidance * both[i] + (1 - guidance) * both[x.length + i];
    return dynamicThreshold(guided, count, percentile);
  }

  // Turn `noise` (count images) into images; `onStep(step, level, x0_hat)` is awaited after each step.
  async sample({ noise, choices, steps, guidance, solver = "ddim", onStep = null }) {
    const sampling = this.info.sampling;
    const count = noise.length / this.imageLength;
    choices = choices ?? new Array(count).fill(0);
    steps = steps ?? sampling.steps;
    guidance = guidance ?? sampling.guidance;
    const levels = SOLVER_SPACING[solver](steps, sampling.max_level);
    const step = makeSolver(solver, levels);
    let x = Float32Array.from(noise);
    for (let i = 0; i < steps; i++) {
      const x0 = await this.denoise(x, count, levels[i], choices, guidance, sampling.threshold_percentile);
      x = step(i, x, x0);
      if (onStep) await onStep(i, levels[i], x0);
    }
    return { images: x.map((v) => Math.min(Math.max(v, -1), 1)), levels };
  }
}
