"""LightningDataModules: character and word corpora, MNIST, Fashion-MNIST, MNIST-1D."""
