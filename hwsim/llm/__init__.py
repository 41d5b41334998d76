"""Decoder-only language models: shapes, prefill/decode cost graphs, quantized integer inference, quality."""
