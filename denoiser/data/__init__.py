"""Data in: every source becomes a `Dataset` of uint8 images and conditions, then a `tf.data` pipeline.

dataset.py      the `Dataset` container and its checks against a model
sources.py      data sets by name (Fashion-MNIST, MNIST, CIFAR, shapes) and the one a run config names
shapes.py       the built-in, procedurally drawn coloured shapes (offline)
folders.py      a folder of class folders (class ids from the names) or of images (unconditional)
captions.py     captioned images from a folder or table, with their embedding cache
image_files.py  image files found in a folder and fitted once into a memory-mapped uint8 cache
huggingface.py  captioned images from a Hugging Face dataset (hf:NAME, or a local copy)
download.py     a URL list of captioned images downloaded into a folder (through img2dataset)
encoders.py     text encoders (CLIP, sentence-transformers) named by one string, and the embedding cache
cache.py        resumable, memory-mapped `.npy` caches
pipeline.py     the `tf.data` pipeline that feeds `model.fit`
"""
