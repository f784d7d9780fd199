// The page: pick a class or prompt, a seed, steps and guidance; watch every step on the canvas.
// Open it as index.html?model=FOLDER, where FOLDER holds what `denoiser export --format onnx` wrote.

import { Denoiser, gaussianNoise } from "./sampler.js";

const $ = (id) => document.getElementById(id);
const modelUrl = new URLSearchParams(window.location.search).get("model") || "models/default/";

// onnxruntime-web loads its WebAssembly from the npm package folder, served with this page. It uses
// several threads where the server makes the page cross-origin isolated (`denoiser web` does), else one.
ort.env.wasm.wasmPaths = new URL("node_modules/onnxruntime-web/dist/", window.location.href).href;

function toImageData(pixels, size, channels) {
  const image = new ImageData(size, size);
  for (let p = 0; p < size * size; p++) {
    for (let c = 0; c < 3; c++) {
      const value = pixels[p * channels + (channels === 1 ? 0 : c)];
      image.data[p * 4 + c] = Math.round((Math.min(Math.max(value, -1), 1) + 1) * 127.5);
    }
    image.data[p * 4 + 3] = 255;
  }
  return image;
}

function draw(canvas, pixels, info) {
  canvas.width = canvas.height = info.image_size;
  canvas.getContext("2d").putImageData(toImageData(pixels, info.image_size, info.channels), 0, 0);
}

function addThumbnail(pixels, info, caption) {
  const figure = document.createElement("figure");
  const canvas = document.createElement("canvas");
  draw(canvas, pixels, info);
  const label = document.createElement("figcaption");
  label.textContent = caption;
  figure.append(canvas, label);
  $("steps-strip").append(figure);
}

function showControls(settings) {
  $("condition").value = String(settings.choice);
  for (const name of ["seed", "steps", "guidance", "solver"]) $(name).value = settings[name];
}

function readControls() {
  return {
    choice: Number($("condition").value || 0),
    seed: Number($("seed").value),
    steps: Number($("steps").value),
    guidance: Number($("guidance").value),
    solver: $("solver").value,
  };
}

async function generate(denoiser, options, noise = null) {
  const info = denoiser.info;
  $("steps-strip").replaceChildren();
  $("generate").disabled = true;
  const started = performance.now();
  try {
    const result = await denoiser.sample({
      noise: noise ?? gaussianNoise(denoiser.imageLength, options.seed),
      choices: [options.choice],
      steps: options.steps,
      guidance: options.guidance,
      solver: options.solver,
      onStep: async (step, level, x0) => {
        draw($("canvas"), x0, info);
        addThumbnail(x0, info, `s=${level.toFixed(2)}`);
        const perStep = (performance.now() - started) / (step + 1);
        $("status").textContent = `step ${step + 1}/${options.steps} · ${perStep.toFixed(0)} ms per step`;
        await new Promise((resolve) => requestAnimationFrame(resolve)); // let the canvas show this step
      },
    });
    draw($("canvas"), result.images, info);
    const seconds = (performance.now() - started) / 1000;
    $("status").textContent = `done: ${options.steps} steps in ${seconds.toFixed(2)} s`;
    return result;
  } finally {
    $("generate").disabled = false;
  }
}

function fillControls(info, choices) {
  $("condition").replaceChildren(
    ...choices.map((name, index) => new Option(name, String(index), false, index === 1)),
  );
  $("condition").disabled = choices.length === 0;
  $("steps").value = info.sampling.steps;
  $("guidance").value = info.sampling.guidance;
  $("solver").value = info.sampling.solver;
  const threads = self.crossOriginIsolated ? ort.env.wasm.numThreads || "several" : 1;
  $("model-name").textContent =
    `${modelUrl} · ${info.image_size}×${info.image_size} · ${info.condition.kind} · ${threads} thread(s)`;
}

async function main() {
  $("status").textContent = "loading the model…";
  const denoiser = await Denoiser.load(modelUrl);
  fillControls(denoiser.info, denoiser.choices);
  $("status").textContent = "ready";
  $("generate").addEventListener("click", () => generate(denoiser, readControls()));
  // For scripts and tests: generate from given noise (a flat array, NHWC) and get the image back.
  return {
    info: denoiser.info,
    generate: async (options) => {
      const settings = { ...readControls(), ...options };
      showControls(settings);
      const noise = options.noise ? Float32Array.from(options.noise) : null;
      if (noise) $("seed").value = ""; // the image comes from the given noise, not from a seed
      const result = await generate(denoiser, settings, noise);
      return { image: Array.from(result.images), levels: result.levels };
    },
  };
}

window.denoiserApp = main().catch((error) => {
  $("status").textContent = `Error: ${error.message}`;
  $("status").classList.add("error");
  throw error;
});
