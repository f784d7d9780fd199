"""Defaults that a `denoiser` command shares with the library function it runs.

The function owns each default: its signature reads the constant here, and the command line shows and
uses the same constant. They live in this module, which imports nothing, because most of those functions'
modules import TensorFlow and the command line builds its parser without it (cli/command.py).
"""

# generation.generate and interpolate: `denoiser sample`, `denoiser interpolate`
NUM_PER_LABEL = 8
FRAMES = 8

# evaluation.report.evaluate and evaluation.evaluator.Evaluation.run: `denoiser evaluate`
EVALUATION_NUM = 500
NEAREST = 8

# editing.inpaint, outpaint and image_to_image: `denoiser inpaint`, `denoiser img2img`
RESAMPLE = 1
JUMP = 2
SIDE = "right"
STRENGTH = 0.5

# data.captions.caption_embeddings: `denoiser embed`
EMBED_BATCH_SIZE = 256

# data.download.download_captioned_images: `denoiser data download`
IMAGE_SIZE = 64
MIN_SIDE = 0
THREADS = 32
PROCESSES = 1
SHARD_SIZE = 1000
TIMEOUT = 10
RETRIES = 1

# utils.download.download_file: `denoiser download`
DOWNLOAD_TO = "."

# deploy.server.make_server: `denoiser web`
PORT = 8000
HOST = "127.0.0.1"

# data.shapes.save_example and save_preview: `denoiser shapes`
EXAMPLE_SIZE = 24
PREVIEW_SIZE = 32
