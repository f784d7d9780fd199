"""Autoencoders: images squeezed into a small latent and drawn back out, the first part of latent diffusion.

An autoencoder is two networks trained together: the encoder turns a 256x256x3 picture into a 32x32x4 latent
(48 times fewer numbers), and the decoder turns the latent back into a picture as close to the original as it
can. What fits through that narrow middle is what the training images share: shapes, layout, colours, textures
in broad strokes. What does not fit is lost for good: the exact pixel-level detail, fine print, the precise
grain of noise. A good autoencoder loses mostly what the eye does not miss, so its reconstructions look like
the original even though they are not equal to it.

Latent diffusion (Rombach et al., and every Stable Diffusion since) trains the diffusion network on latents
instead of pixels: 48 times fewer values per image means a much cheaper network and far fewer FLOPs per step,
while the autoencoder, trained once, takes care of the detail. Sampling happens in latent space and the decoder
is called once at the end.

The encoder here is a variational one (a "KL" autoencoder): it gives a mean and a log-variance per latent value,
and training draws the latent from that Gaussian and adds a small KL term that pulls it towards N(0, 1). That
keeps the latents at a sensible scale and makes the decoder tolerant of small errors in them, which is exactly
what a diffusion model's samples have. `encode` returns the means.

config.py          `AutoencoderConfig`: widths, layers per block, latent channels, ... (the defaults are SD's VAE)
blocks.py          the registered layers: residual block, attention, the KL bottleneck (`LatentDistribution`)
model.py           `Autoencoder` (encode, decode, and a Keras model to `fit`) and its encoder and decoder networks
from_diffusers.py  diffusers' `AutoencoderKL` folders (Stable Diffusion's VAE) read into our Keras autoencoder
loading.py         `load_autoencoder`: a .keras file, a diffusers folder or a Hugging Face name
"""
