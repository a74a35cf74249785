"""Training: the tokenizer, masked-LM pretraining, multi-task fine-tuning and the recipe behind
`shoppulse train`. Needs the `train` extra (torch); the bundle step is `shoppulse.export`'s.
"""
