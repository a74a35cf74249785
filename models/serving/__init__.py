"""Serving: text cleaning and masking, bundles, ONNX inference, keywords/aspects, taxonomy.

What the enrich stage imports: nothing here needs torch.
"""
