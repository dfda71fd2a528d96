"""The measurements behind `edge-agent eval`, `bench` and `eval-footage`: accuracy on labelled
face images, speed against a peer, counts against a footage ground truth.

Heavy on purpose (OpenCV, LiteRT, tqdm): the command modules import these only when they run.
"""
