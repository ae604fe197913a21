"""Sample-quality metrics: how far a generative model's samples lie from the data they imitate,
below the tasks (no Lightning): ``points`` for 1-D and 2-D data, ``classifier_distance`` for images
in the features of a frozen classifier of our own."""
