"""Training on several machines: `train.distribute=multi_worker` (tf.distribute's MultiWorkerMirroredStrategy).

Every worker runs the same `denoiser train` command with its own TF_CONFIG (the cluster's addresses
and its own index): each builds the same model, reads the same data, and computes its share of every
global batch; the gradients are summed across workers after each step, so all workers hold the same
weights. Worker 0 (the chief) writes the run directory; the others run the same callbacks into a
scratch copy beside it, RUN.worker-N, which can be deleted afterwards.
"""

from __future__ import annotations

import os

import tensorflow as tf


class MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """MultiWorkerMirroredStrategy whose `reduce` takes what Keras 3's `fit` gives it (keras-team/keras#20585).

    `fit` reduces a whole batch `(x, y)` at once to learn its shapes, but the multi-worker strategy only
    reduces single values, as MirroredStrategy does not: reduce leaf by leaf. And `fit` averages each
    replica's scalar logs (the loss) "along axis 0", which a scalar lacks: average those across replicas.
    """

    def reduce(self, reduce_op, value, axis):
        def reduce_leaf(leaf):
            scalar = all(part.shape.rank == 0 for part in self.experimental_local_results(leaf))
            return super(MultiWorkerStrategy, self).reduce(reduce_op, leaf, None if scalar else axis)

        return tf.nest.map_structure(reduce_leaf, value)


def own_run_dir(run_dir, strategy) -> str:
    """The run directory this process writes: `run_dir`, or RUN.worker-N for a multi-worker run's worker N > 0."""
    extended = getattr(strategy, "extended", None)
    if extended is None or getattr(extended, "should_checkpoint", True):
        return os.fspath(run_dir)
    return f"{os.fspath(run_dir).rstrip(os.sep)}.worker-{strategy.cluster_resolver.task_id}"
