"""Evaluation: accuracy and macro-F1 of a bundle on labelled reviews or the aspect set, the
perturbed variants (first 32 characters, noisy), and the classical baseline it is compared with.
"""
