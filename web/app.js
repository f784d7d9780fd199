// The page: pick a class or prompt, a seed, steps and guidance; watch every step on the canvas.
// Open it as index.html?model=FOLDER, where FOLDER holds what `denoiser export --format onnx` wrote: one
// model, or a cascade (--upscale), whose stages run one after the other with the class or prompt chosen once.

import { gaussianNoise, loadModel } from "./sampler.js";

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

// Steps and guidance of the base are the main controls; each super-resolution stage gets its own pair.
function addStageControls(cascade) {
  const fields = cascade.stages.slice(1).map((stage, index) => {
    const k = index + 1;
    const size = stage.info.image_size;
    const fieldset = document.createElement("fieldset");
    fieldset.innerHTML =
      `<legend>Stage ${k}: upscale to ${size}×${size}</legend>` +
      `<label>Steps <input id="steps-${k}" type="number" min="1" max="200" step="1"></label>` +
      `<label>Guidance <input id="guidance-${k}" type="number" min="0" max="20" step="0.5"></label>`;
    return fieldset;
  });
  $("stage-controls").replaceChildren(...fields);
  cascade.stages.slice(1).forEach((stage, index) => {
    $(`steps-${index + 1}`).value = stage.info.sampling.steps;
    $(`guidance-${index + 1}`).value = stage.info.sampling.guidance;
  });
}

function showControls(settings) {
  $("condition").value = String(settings.choice);
  for (const name of ["seed", "steps", "guidance", "solver"]) $(name).value = settings[name];
  settings.stages.forEach((stage, index) => {
    $(`steps-${index + 1}`).value = stage.steps;
    $(`guidance-${index + 1}`).value = stage.guidance;
  });
}

function readControls(cascade) {
  return {
    choice: Number($("condition").value || 0),
    seed: Number($("seed").value),
    steps: Number($("steps").value),
    guidance: Number($("guidance").value),
    solver: $("solver").value,
    stages: cascade.stages.slice(1).map((_, index) => ({
      steps: Number($(`steps-${index + 1}`).value),
      guidance: Number($(`guidance-${index + 1}`).value),
    })),
  };
}

// Sample every stage, drawing each step's prediction; `noises` (starts, augmentations) default to the seed's.
async function generate(cascade, options, noises = null) {
  $("steps-strip").replaceChildren();
  $("generate").disabled = true;
  const settings = [{ steps: options.steps, guidance: options.guidance }, ...options.stages];
  const total = settings.reduce((sum, stage) => sum + stage.steps, 0);
  const cascaded = cascade.stages.length > 1;
  const started = performance.now();
  let done = 0;
  try {
    const results = await cascade.sample({
      ...(noises ?? cascade.seededNoises(options.seed, 1)),
      choices: [options.choice],
      settings,
      solver: options.solver,
      onStep: async (stage, step, level, x0) => {
        const info = cascade.stages[stage].info;
        draw($("canvas"), x0, info);
        addThumbnail(x0, info, cascaded ? `${stage}: s=${level.toFixed(2)}` : `s=${level.toFixed(2)}`);
        done += 1;
        const perStep = (performance.now() - started) / done;
        const where = `step ${step + 1}/${settings[stage].steps}${cascaded ? ` of stage ${stage}` : ""}`;
        $("status").textContent = `${where} · ${perStep.toFixed(0)} ms per step`;
        await new Promise((resolve) => requestAnimationFrame(resolve)); // let the canvas show this step
      },
    });
    draw($("canvas"), results.at(-1).images, cascade.stages.at(-1).info);
    const seconds = (performance.now() - started) / 1000;
    const steps = cascaded ? `${settings.map((stage) => stage.steps).join(" + ")} = ${total}` : `${total}`;
    $("status").textContent = `done: ${steps} steps in ${seconds.toFixed(2)} s`;
    return results;
  } finally {
    $("generate").disabled = false;
  }
}

function fillControls(cascade) {
  const info = cascade.stages[0].info;
  const choices = cascade.choices;
  $("condition").replaceChildren(
    ...choices.map((name, index) => new Option(name, String(index), false, index === 1)),
  );
  $("condition").disabled = choices.length === 0;
  $("steps").value = info.sampling.steps;
  $("guidance").value = info.sampling.guidance;
  $("solver").value = info.sampling.solver;
  addStageControls(cascade);
  const threads = self.crossOriginIsolated ? ort.env.wasm.numThreads || "several" : 1;
  const sizes = cascade.stages.map((stage) => `${stage.info.image_size}×${stage.info.image_size}`).join(" → ");
  $("model-name").textContent =
    `${modelUrl} · ${sizes} · ${cascade.info.condition.kind} · ${threads} thread(s)`;
}

async function main() {
  $("status").textContent = "loading the model…";
  const cascade = await loadModel(modelUrl);
  fillControls(cascade);
  $("status").textContent = "ready";
  $("generate").addEventListener("click", () => generate(cascade, readControls(cascade)));
  // For scripts and tests: generate from given noises (flat arrays, NHWC) and get the images back. One
  // model takes `noise`; a cascade takes `noises` (each stage's start) and `augmentationNoises` (null for
  // stage 0), and `stages` ([{steps, guidance}] of the super-resolution stages).
  return {
    info: cascade.info,
    generate: async (options) => {
      const settings = { ...readControls(cascade), ...options };
      showControls(settings);
      const starts = options.noises ?? (options.noise ? [options.noise] : null);
      let noises = null;
      if (starts) {
        $("seed").value = ""; // the image comes from the given noise, not from a seed
        const augmentations = options.augmentationNoises ?? [null];
        noises = {
          starts: starts.map((noise) => Float32Array.from(noise)),
          augmentations: augmentations.map((noise) => noise && Float32Array.from(noise)),
        };
      }
      const results = await generate(cascade, settings, noises);
      return {
        image: Array.from(results.at(-1).images),
        levels: results[0].levels,
        stages: results.map((result) => ({ image: Array.from(result.images), levels: result.levels })),
      };
    },
  };
}

window.denoiserApp = main().catch((error) => {
  $("status").textContent = `Error: ${error.message}`;
  $("status").classList.add("error");
  throw error;
});
