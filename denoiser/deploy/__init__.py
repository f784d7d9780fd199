"""Taking a trained model elsewhere.

onnx.py     export the one-step network to ONNX, with what the web page needs to sample
server.py   a static server for the web page and an export folder (`denoiser web`)
"""
