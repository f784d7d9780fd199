"""What each `denoiser` command runs, one module per module of cli/ (train.py here runs cli/train.py's command).

These modules import the library code they run at their top, TensorFlow with it; a `Command` names its
runner as "denoiser.cli.runners.MODULE:FUNCTION", so a module here is imported only when its command runs
(see cli/command.py).
"""
