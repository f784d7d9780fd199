"""The optimizer of every run: Adam with a learning-rate warm-up and an average of the weights.

Both classes are registered Keras objects, so a checkpoint's optimizer loads with `safe_mode=True`
and no trainer has to be imported to read one.
"""

from __future__ import annotations

import keras
from keras import ops

from denoiser.config import RunConfig

PACKAGE = "denoiser"


@keras.saving.register_keras_serializable(package=PACKAGE)
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Constant learning rate after a linear warm-up from 0 over `warmup_steps` steps.

    Warm-up keeps Adam's first, poorly estimated steps from knocking a fresh network off course.
    """

    def __init__(self, learning_rate: float, warmup_steps: int):
        self.learning_rate = learning_rate
        self.warmup_steps = warmup_steps

    def __call__(self, step):
        progress = (ops.cast(step, "float32") + 1.0) / max(self.warmup_steps, 1)
        return self.learning_rate * ops.minimum(1.0, progress)

    def get_config(self):
        return {"learning_rate": self.learning_rate, "warmup_steps": self.warmup_steps}


@keras.saving.register_keras_serializable(package=PACKAGE)
class EMAAdam(keras.optimizers.Adam):
    """Adam that also keeps an exponential moving average (EMA) of the weights, with a warm-up.

    Averaged weights give cleaner samples than the last step's. Keras's own EMA uses a fixed decay,
    so after 1,000 steps at 0.999 a third of the average is still the random start; here the decay
    grows as min(decay, (1 + step) / (10 + step)) from a copy of the first step's weights, so early averages
    forget the random start quickly.
    """

    def _update_model_variables_moving_average(self, trainable_variables):
        if not self.use_ema:
            return
        step = ops.cast(self.iterations, "float32")
        # The averages start as zeros: the first step copies the weights, later ones average with a growing decay.
        momentum = ops.where(step == 0, 0.0, ops.minimum(self.ema_momentum, (1.0 + step) / (10.0 + step)))
        for variable, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                average.assign(momentum * average + (1.0 - momentum) * variable)


def make_optimizer(config: RunConfig) -> keras.optimizers.Optimizer:
    train = config.train
    return EMAAdam(
        learning_rate=WarmupSchedule(train.learning_rate, train.warmup_steps),
        use_ema=train.ema_decay > 0,
        ema_momentum=train.ema_decay or 0.99,
    )


def ema_variables(model: keras.Model) -> dict:
    """Map each trainable variable's path to its moving average, or {} if the optimizer keeps none."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # unwrap a loss-scale optimizer
    averages = getattr(optimizer, "_model_variables_moving_average", None) if optimizer is not None else None
    if not getattr(optimizer, "use_ema", False) or not averages:
        return {}
    return {
        variable.path: average for variable, average in zip(model.trainable_variables, averages) if average is not None
    }


def copy_ema_weights(model: keras.Model, into: keras.Model) -> None:
    """Set `into`'s weights to `model`'s, using the moving averages where the optimizer keeps them."""
    averages = ema_variables(model)
    for source, target in zip(model.weights, into.weights):
        target.assign(averages.get(source.path, source).value)
