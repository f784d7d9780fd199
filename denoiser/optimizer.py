"""The optimizer of every run: Adam with a learning-rate schedule (warm-up, then decay) and an average of the weights.

Both classes are registered Keras objects, so a checkpoint's optimizer loads with `safe_mode=True`
and no trainer has to be imported to read one.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from denoiser.config import RunConfig, TrainConfig

PACKAGE = "denoiser"


@keras.saving.register_keras_serializable(package=PACKAGE)
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """A linear warm-up from 0 over `warmup_steps` steps, then constant or decaying to 0 at `total_steps`.

    Warm-up keeps Adam's first, poorly estimated steps from knocking a fresh network off course. With a
    known budget, decaying the rate to 0 at the run's last planned step (p: the share of the steps after
    the warm-up done so far) lets the last steps settle into a minimum instead of hopping around it:

        decay "none":   1                      (the seed's choice)
        decay "cosine": (1 + cos(pi * p)) / 2
        decay "linear": 1 - p

    A cool-down (`cooldown_steps` > 0, with decay "none" only) keeps the peak rate for most of the run and
    falls linearly to 0 over its last `cooldown_steps` steps: the settling of a decay, at the end only.
    """

    def __init__(
        self,
        learning_rate: float,
        warmup_steps: int,
        decay: str = "none",
        total_steps: int = 0,
        cooldown_steps: int = 0,
    ):
        if cooldown_steps and decay != "none":
            raise ValueError(f"A cool-down follows a constant rate, but decay {decay!r} decays it; use one of the two.")
        self.learning_rate = learning_rate
        self.warmup_steps = warmup_steps
        self.decay = decay
        self.total_steps = total_steps
        self.cooldown_steps = cooldown_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        rate = self.learning_rate * ops.minimum(1.0, (step + 1.0) / max(self.warmup_steps, 1))
        if self.decay == "none" and self.cooldown_steps:
            return rate * ops.clip((self.total_steps - step) / self.cooldown_steps, 0.0, 1.0)
        if self.decay == "none":
            return rate
        done = ops.clip((step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0)
        if self.decay == "cosine":
            return rate * 0.5 * (1.0 + ops.cos(math.pi * done))
        return rate * (1.0 - done)

    def get_config(self):
        return {
            "learning_rate": self.learning_rate,
            "warmup_steps": self.warmup_steps,
            "decay": self.decay,
            "total_steps": self.total_steps,
            "cooldown_steps": self.cooldown_steps,
        }


def learning_rate_schedule(train: TrainConfig, total_steps: int) -> WarmupSchedule:
    """The schedule of a run of `total_steps` steps: a warm-up of `train.warmup_fraction` of them if set
    (so a short run is not all warm-up), else of `train.warmup_steps`; then `train.lr_decay`, or a cool-down
    over the last `train.cooldown_fraction` of them."""
    warmup = train.warmup_steps if train.warmup_fraction is None else round(train.warmup_fraction * total_steps)
    cooldown = round(train.cooldown_fraction * total_steps)
    return WarmupSchedule(train.learning_rate, warmup, train.lr_decay, total_steps, cooldown)


@keras.saving.register_keras_serializable(package=PACKAGE)
class EMAAdam(keras.optimizers.Adam):
    """Adam that also keeps an exponential moving average (EMA) of the weights, with a warm-up, and counts
    real updates when it accumulates gradients.

    Averaged weights give cleaner samples than the last step's. Keras's own EMA uses a fixed decay,
    so after 1,000 steps at 0.999 a third of the average is still the random start; here the decay
    grows as min(decay, (1 + step) / (10 + step)) from a copy of the first step's weights, so early averages
    forget the random start quickly.

    Gradient accumulation (`gradient_accumulation_steps=k`, train.accumulate_steps): Keras calls the optimizer
    once per batch. `_iterations` counts those batches; the weights change on every k-th one only, from the mean
    of the k gradients, and `iterations` (`_iterations // k`) counts these real updates, which Adam's bias
    correction uses. Left alone, Keras would evaluate a learning-rate schedule at the batch count and move the
    average after every batch; here the schedule is evaluated at `iterations` and the average moves on the
    update batches only, so the warm-up, the decay and the EMA advance once per update, and k batches of B
    images train like one batch of k * B (tests/test_accumulation.py). The one difference is Keras's: the sparse
    gradient of a class embedding, whose repeated classes Adam's second moment counts slice by slice in one
    batch, is summed into a dense one when accumulated.

    The averages stay in the optimizer: the model keeps the training weights when `fit` ends (Keras would overwrite
    them with the averages, see `finalize_variable_values`), and `copy_ema_weights` puts the averages where wanted.
    """

    def _get_current_learning_rate(self):
        if isinstance(self._learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            return self._learning_rate(self.iterations)  # real updates, not batches
        return super()._get_current_learning_rate()

    def _update_model_variables_moving_average(self, trainable_variables):
        if not self.use_ema:
            return
        step = ops.cast(self.iterations, "float32")  # updates before this one
        # The averages start as zeros: the first step copies the weights, later ones average with a growing decay.
        momentum = ops.where(step == 0, 0.0, ops.minimum(self.ema_momentum, (1.0 + step) / (10.0 + step)))
        for variable, average in zip(trainable_variables, self._model_variables_moving_average):
            if average is not None:
                moved = momentum * average + (1.0 - momentum) * variable
                if self.gradient_accumulation_steps:  # between updates the weights stand still, and so does the average
                    moved = ops.where(self.updates_now(), moved, average)
                average.assign(moved)

    def finalize_variable_values(self, var_list):
        """Leave the training weights in the model at the end of `fit`, where Keras would copy the averages in.

        A resumed run calls `fit` twice (the rest of the interrupted epoch, then the others), and the second call
        must go on from the training weights, as an uninterrupted run does. `training.train` copies the averages
        into the model it returns once all its `fit` calls are done.
        """

    def updates_now(self):
        """Whether the batch being applied updates the weights: the k-th of its k (Keras counts `_iterations` up
        after applying it)."""
        return (self._iterations + 1) % self.gradient_accumulation_steps == 0


def make_optimizer(config: RunConfig, total_steps: int) -> keras.optimizers.Optimizer:
    """EMAAdam with the run's learning-rate schedule over its `total_steps` planned steps (weight updates), each
    from the gradients of `train.accumulate_steps` batches, and `train.adam_beta_2`."""
    train = config.train
    return EMAAdam(
        learning_rate=learning_rate_schedule(train, total_steps),
        beta_2=train.adam_beta_2,
        use_ema=train.ema_decay > 0,
        ema_momentum=train.ema_decay or 0.99,
        gradient_accumulation_steps=train.accumulate_steps if train.accumulate_steps > 1 else None,  # Keras: >= 2
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
