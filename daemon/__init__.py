"""The camera-box daemon (``fer_edge.daemon``): RTSP in, faces and emotions out over MQTT.

Nothing here imports TensorFlow: a box installs ``fer-edge[device]`` only.
"""
