"""Face-recognition models: the contract (``base``), real pretrained ports and architectures."""
