"""The folder Keras keeps its downloads in, for messages that tell a user where to put a missing file.

Keras reads it from KERAS_HOME (else ~/.keras, or /tmp/.keras where the home folder cannot be written) when it is
first imported (keras.src.backend.config) and exports no public name for it, so `keras_home` follows the same rule.
Data sets go to its datasets/, model weights such as InceptionV3's to models/.
"""

from __future__ import annotations

import os


def keras_home() -> str:
    """$KERAS_HOME if set, else ~/.keras (/tmp/.keras where the home folder cannot be written): Keras's rule."""
    if "KERAS_HOME" in os.environ:
        return os.path.expanduser(os.environ["KERAS_HOME"])
    home = os.path.expanduser("~")
    return os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
