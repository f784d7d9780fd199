"""Judging samples: is the model any good?

classifier.py  the small classifier that judges class-conditional samples, trained once and cached
metrics.py     Frechet distance, KID, conditional accuracy, InceptionV3 features, CLIP score, nearest neighbours
evaluator.py   `Evaluation`: a sampler's samples scored against a run's data (for report.py and the trainer)
report.py      `evaluate`: a checkpoint or run directory scored into a JSON file (`denoiser evaluate`)
"""
