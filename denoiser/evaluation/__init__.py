"""Judging samples: is the model any good?

classifier.py  the small classifier that judges class-conditional samples, trained once and cached
metrics.py     Frechet distance, KID, conditional accuracy, InceptionV3 features, CLIP score, nearest neighbours
evaluator.py   evaluating a checkpoint (`denoiser evaluate`) and the trainer's `evaluate_every` callback
"""
