"""Sample-quality metrics: how far a generative model's samples lie from the data they imitate."""
