"""fer-edge: facial emotion recognition for camera boxes.

The core package holds what every part shares (labels, face preprocessing, the TFLite runtime
wrapper, model metadata, the CLI). Training, quantisation and the daemon live in their own
subpackages so that a camera box never imports TensorFlow.
"""

__version__ = "0.1.0"
