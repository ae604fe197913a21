"""Train a model: ``python train.py [group=option ...] [-m]``; see README.md and conf/."""

from dlstudies.train import main

if __name__ == "__main__":
    main()
