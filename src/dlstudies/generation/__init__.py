"""Sampling algorithms and what shows their samples, used by the tasks, the samples callback and
``python -m dlstudies.sample``: autoregressive token sampling (``generate``), greedy and beam-search
decoding for encoder-decoders (``decoding``), and pictures of image and point samples (``figures``)."""
