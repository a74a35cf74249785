"""Model code: text cleaning, tokenizer, training recipe, ONNX inference, jieba keywords, bundles.

Nothing imported at package level needs torch: serving uses ONNX Runtime only.
"""
