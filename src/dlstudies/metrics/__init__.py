"""Measures of generated samples against real data, below the tasks (they use no Lightning):
``classifier_distance`` compares image sets in the features of a frozen classifier of our own."""
