"""Small helpers shared by the rest of the package.

files.py     atomic file writes: a crash never leaves a half-written file
images.py    pixels between [-1, 1] floats and uint8; reading and fitting image files
plotting.py  sample grids, strips and GIFs of the sampling process
progress.py  progress: Keras's bar on a terminal, plain lines in a log file
terminal.py  whether the output is a terminal (or a notebook cell), where a bar can redraw its line
quiet.py     TensorFlow's start-up lines kept off stderr
download.py  Google Drive downloads through gdown, with checksums
keras_cache.py  the folder Keras keeps its downloads in (KERAS_HOME, else ~/.keras)
archives.py  the member sizes a .keras file (a zip) declares, checked before Keras inflates them
"""
