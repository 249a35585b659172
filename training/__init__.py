"""Off-device training (``fer_edge.training``): data loading, architectures, the train loop.

Data loading needs only NumPy and OpenCV; everything that imports TensorFlow/Keras does so inside
the modules that need it, so ``fer-edge evaluate`` on a ``.tflite`` model runs on a camera box.
"""
