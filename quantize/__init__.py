"""TFLite conversion and calibration (``fer_edge.quantize``): float32/float16/dynamic/int8/EdgeTPU."""
